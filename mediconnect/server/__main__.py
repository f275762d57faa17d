from mediconnect.server.cli import main

main()
