"""A clamd of the test's own: a signature database of the EICAR test string only, on a free port.

Nothing of the machine's ClamAV setup is used (its service, its database, its sockets): the fixture
writes a clamd.conf into a temporary directory, starts `clamd -c` as a child, waits (with a timeout)
until it answers PING, and stops it by its PID. Tests skip, saying why, where clamd is not installed;
CI installs it (.ci/run), so there nothing skips.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# The industry's harmless test file: every scanner reports it, and it is no virus.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
START_TIMEOUT = 60.0


def clamd_binary() -> str | None:
    return shutil.which("clamd") or next((p for p in ("/usr/sbin/clamd",) if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ping(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"zPING\0")
            return sock.recv(16).startswith(b"PONG")
    except OSError:
        return False


@dataclass
class Clamd:
    """A running clamd: `url` for CLAMD_URL; `stop()` and `start()` take it away and bring it back."""

    directory: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = clamd_binary()
        self.process = subprocess.Popen(
            [binary, "-c", str(self.directory / "clamd.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not ping(self.port):
            if self.process.poll() is not None:
                log = (self.directory / "clamd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"clamd exited with {self.process.returncode}:\n{log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"clamd did not answer PING within {START_TIMEOUT} s")
            time.sleep(0.05)  # polling a condition, with the deadline above

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def write_config(directory: Path, port: int, *, stream_max_bytes: int) -> None:
    database = directory / "db"
    database.mkdir()
    # A hash of the bare test file, as `sigtool --md5` writes it, and the test string anywhere in a
    # file (so that a PDF carrying it is found too).
    (database / "test.hdb").write_text(f"44d88612fea8a8f36de82e1278abb02f:{len(EICAR)}:Eicar-Test-File\n")
    (database / "test.ndb").write_text(f"Eicar-Test-String:0:*:{EICAR.hex()}\n")
    (directory / "clamd.conf").write_text(
        "\n".join(
            [
                f"DatabaseDirectory {database}",
                f"TCPSocket {port}",
                "TCPAddr 127.0.0.1",
                "Foreground yes",
                f"PidFile {directory / 'clamd.pid'}",
                f"LogFile {directory / 'clamd.log'}",
                f"TemporaryDirectory {directory}",
                f"StreamMaxLength {stream_max_bytes}",
                "Bytecode no",
                "",
            ]
        )
    )


@pytest.fixture(scope="session")
def clamd(tmp_path_factory):
    """A running clamd of this test session (skips where clamd is not installed)."""
    if clamd_binary() is None:
        pytest.skip("clamd is not installed (Debian: apt-get install clamav-daemon); CI installs it")
    directory = tmp_path_factory.mktemp("clamd")
    port = _free_port()
    # Larger than any upload: FILE_MAX_BYTES is 10 MiB by default.
    write_config(directory, port, stream_max_bytes=64 * 1024 * 1024)
    server = Clamd(directory=directory, port=port)
    server.start()
    yield server
    server.stop()
