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


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("body", [b"--x--", b"\r\n", b"x", b"--x--\r\n", b""])
def test_a_multipart_booking_without_parts_is_a_json_400_from_the_app(server, patient, body):
    """Twisted used to parse the form body for daphne and answer one it could not parse with a bare 400 of
    its own (no JSON, no log line); the body is Django's to read, and the API's to refuse."""
    import http.client
    import json

    from accounts.tests.factories import PASSWORD

    access = server.token(patient.email, PASSWORD)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/api/appointments/",
            body=body,
            headers={"Content-Type": "multipart/form-data; boundary=x", "Authorization": f"Bearer {access}"},
        )
        answer = connection.getresponse()
        text = answer.read().decode()
    finally:
        connection.close()
    assert answer.status == 400, text
    assert answer.getheader("Content-Type") == "application/json", text
    error = json.loads(text)
    assert error == {
        "doctor": ["This field is required."],
        "date": ["This field is required."],
        "time": ["This field is required."],
    }
    assert '"POST /api/appointments/" 400' in server.output()  # answered by the app, in its log
