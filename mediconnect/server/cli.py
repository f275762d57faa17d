"""`python -m mediconnect.server [daphne's flags] mediconnect.asgi:application`: daphne's command line, our server.

Every launcher (the Makefile's `run`, deploy/cluster.py, tests/live.py, bench/) starts the server
this way instead of the `daphne` script: the flags are daphne's, the server is
daphne_server.Server (daphne's `CommandLineInterface.server_class`).
"""

import sys

import daphne.server  # noqa: F401 (first: it installs Twisted's asyncio reactor)
from daphne.cli import CommandLineInterface

from mediconnect.server.daphne_server import Server


class CommandLine(CommandLineInterface):
    description = "MediConnect's HTTP/WebSocket server (daphne's, adapted: mediconnect/server/)"
    server_class = Server


def main() -> None:
    sys.exit(CommandLine.entrypoint())
