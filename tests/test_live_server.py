"""The live daphne and `make run` listen the way a deployment does: a listen backlog large enough
for a burst of new sockets, on the HOST and PORT asked for."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tests.live import LISTEN_BACKLOG


@pytest.mark.live
@pytest.mark.skipif(shutil.which("ss") is None, reason="needs `ss` (iproute2) to read the listen backlog")
def test_daphne_listens_with_the_larger_backlog(server):
    port = server.url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    # For a listening socket ss's Send-Q is the backlog it listens with (the kernel caps it at somaxconn).
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert [line.split()[2] for line in out.splitlines()] == [str(min(LISTEN_BACKLOG, somaxconn))]


@pytest.mark.parametrize(
    ("host", "interface"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("::1", r"\:\:1"), ("[::1]", r"\:\:1")],
)
def test_make_run_passes_host_and_port_to_the_endpoint(host, interface):
    # Not the flags of the `make test` this may run under.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    out = subprocess.run(
        ["make", "-n", "run", f"HOST={host}", "PORT=9123"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert f"-e 'tcp:port=9123:interface={interface}:backlog={LISTEN_BACKLOG}'" in out.stdout
