"""The npm `web-push-testing` server: a second push service, written by others, for the Web Push tests.

Pinned in package.json / package-lock.json and installed by `make test-tools` (`npm ci`). The
fixture starts its server script with Node as a child process on a free port, bound to loopback
(listen_loopback.cjs: the script itself listens on every interface), waits until POST /status
answers, and stops it by its PID. Its API: /subscribe (with our application server key) gives a
`PushSubscription.toJSON()` and a clientHash; /expire-subscription/<hash> makes its endpoint answer
410; /get-notifications lists what it received and decrypted (it verifies the VAPID token's ES256
signature against the subscription's key, and decrypts aes128gcm).

Where Node or the package is missing the tests skip, saying why; with CI=true they fail instead.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = ROOT / "node_modules" / "web-push-testing" / "src" / "bin" / "server.js"
LOOPBACK = Path(__file__).with_name("listen_loopback.cjs")
START_TIMEOUT = 30.0


def missing() -> str | None:
    """Why the server cannot run here, or None."""
    if shutil.which("node") is None:
        return "Node is not installed (web-push-testing needs Node >= 20 and npm); CI installs it"
    if not SERVER_SCRIPT.exists():
        return "web-push-testing is not installed: run `make test-tools` (npm ci)"
    return None


def require() -> None:
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must not skip: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebPushTesting:
    def __init__(self):
        self.port = _free_port()
        self.origin = f"http://localhost:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="web-push-testing-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["node", "--require", str(LOOPBACK), str(SERVER_SCRIPT), str(self.port)],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"web-push-testing exited with {self.process.returncode}: {self.output()}")
            with contextlib.suppress(OSError):
                if self._post("/status", {})[0] == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"web-push-testing did not answer within {START_TIMEOUT} s: {self.output()}")
            time.sleep(0.1)  # polling for the port to open, bounded by the deadline

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def _post(self, path: str, body: dict) -> tuple[int, dict | None]:
        request = urllib.request.Request(  # noqa: S310
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                text = response.read()
                return response.status, json.loads(text) if text.strip().startswith(b"{") else None
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text.strip().startswith(b"{") else None

    def subscribe(self, application_server_key: str) -> dict:
        """A subscription as a browser would make it: {"endpoint","keys":{"p256dh","auth"},"clientHash"}."""
        # Its check wants the string "true" (what a form post carries), not JSON's true.
        options = {"userVisibleOnly": "true", "applicationServerKey": application_server_key}
        status, body = self._post("/subscribe", options)
        assert status == 200, body
        return body["data"]

    def expire(self, client_hash: str) -> None:
        status, body = self._post(f"/expire-subscription/{client_hash}", {})
        assert status == 200, body

    def messages(self, client_hash: str) -> list[str]:
        status, body = self._post("/get-notifications", {"clientHash": client_hash})
        assert status == 200, body
        return body["data"]["messages"]

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()
