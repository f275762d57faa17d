"""Start real daphne processes on free ports against the test database (and Redis, when configured)."""

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
# The Makefile's BACKLOG: daphne's listen queue, instead of Twisted's 50.
LISTEN_BACKLOG = 1024
# daphne with our server class, as `make run` starts it (mediconnect/server/cli.py).
DAPHNE = [sys.executable, "-m", "mediconnect.server"]
# Debian's nginx (the cluster tests put it in front of several daphne processes).
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)

# Debian's Chromium, as the browser tests and the screenshot script launch it: headless, and quiet
# on a machine whose only network is the loopback.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The marks of a test that drives Chromium against real daphne processes (a live, transactional test).
BROWSER_TEST = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
]


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM by its PID, then SIGKILL if it is still there after `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daphne_limits() -> list[str]:
    """The frame limit the contract sets, enforced by daphne itself (as `make run` starts it)."""
    size = str(settings.WS_MAX_MESSAGE_BYTES)
    return ["--websocket-max-message-size", size, "--websocket-max-frame-size", size]


def daphne_endpoint(port: int) -> str:
    """The Twisted endpoint `make run` listens on (-b/-p cannot set the backlog), on the loopback."""
    return f"tcp:port={port}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}"


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    text: str
    headers: dict = dataclasses.field(default_factory=dict)

    def json(self):
        return json.loads(self.text)


class Endpoint:
    """JSON requests to a server at `url` (a daphne process, or nginx in front of several)."""

    url: str

    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None):
        """A JSON request; returns (status, parsed body)."""
        return self.request_with_timeout(method, path, body, token, timeout=10)

    def request_with_timeout(self, method: str, path: str, body=None, token=None, *, timeout: float, headers=None):
        answer = self.fetch(method, path, body, token, timeout=timeout, headers=headers)
        return answer.status, json.loads(answer.text or "null")

    def fetch(self, method: str, path: str, body=None, token=None, *, timeout: float = 10, headers=None) -> "Answer":
        """A request whose answer may not be JSON (an error page): status, content type, text, headers."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
                text = r.read().decode(errors="replace")
                return Answer(r.status, r.headers.get("Content-Type", ""), text, dict(r.headers))
        except urllib.error.HTTPError as e:
            return Answer(e.code, e.headers.get("Content-Type", ""), e.read().decode(errors="replace"), dict(e.headers))

    def book(self, token: str, doctor_id: int, at: str, *, patient_id: int | None = None, **extra):
        """POST /api/appointments/ for today at `at` (HH:MM); (status, body). A doctor's token names the patient."""
        body = {"doctor": doctor_id, "date": time.strftime("%Y-%m-%d"), "time": at, **extra}
        if patient_id is not None:
            body["patient"] = patient_id
        return self.request("POST", "/api/appointments/", body, token=token)

    def token(self, email: str, password: str) -> str:
        status, body = self.request("POST", "/api/auth/token/", {"email": email, "password": password})
        assert status == 200, body
        return body["access"]


class Daphne(Endpoint):
    """One daphne process serving the project; `url`/`ws_url` point at it; output goes to `log_path`."""

    def __init__(self, *, port: int | None = None, **extra_env):
        # A fixed `port` lets a test restart "the same" server after killing it.
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/"
        self.log = tempfile.NamedTemporaryFile(prefix="daphne-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(self.log.name)
        env = {
            **os.environ,
            # As a deployment runs: production settings with DEBUG off, this run's key, and the
            # plain-HTTP switch `make run` uses (there is no TLS in front of a test server).
            "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            "LOCAL_HTTP": "true",
            "DATABASE_URL": test_database_url(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            # The live tests book many slots of one doctor's day for one patient; the per-patient
            # limit is tested in-process (appointments/tests/test_booking_limit.py).
            "BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY": "1000",
        }
        config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
        if settings.REDIS_URL:
            env["REDIS_URL"] = settings.REDIS_URL
            env["CHANNEL_LAYER_PREFIX"] = config.get("prefix", "mediconnect")
        else:
            env.pop("REDIS_URL", None)
        env.update({k: str(v) for k, v in extra_env.items()})
        self.process = subprocess.Popen(
            [*DAPHNE, *daphne_limits(), "-e", daphne_endpoint(self.port), "mediconnect.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: {self.output()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
            time.sleep(0.1)  # polling for the port to open, bounded by the deadline
        raise RuntimeError(f"daphne did not become healthy: {self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Kill the process outright, as a crash would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


class Nginx(Endpoint):
    """nginx in front of daphne processes, configured as `make run-cluster` configures it
    (deploy/cluster.py renders deploy/nginx/ into a directory of its own); started on a free port."""

    def __init__(
        self,
        node_ports: list[int],
        *,
        static_root: Path,
        tls: tuple[Path, Path] | None = None,
        files_root: Path | None = None,
        file_max_bytes: int | None = None,
    ):
        from deploy import cluster

        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}/ws/"
        self.dir = Path(tempfile.mkdtemp(prefix="mc-nginx-"))
        cert, key = (str(tls[0]), str(tls[1])) if tls else (None, None)
        config = cluster.write_nginx_config(
            self.dir,
            node_ports=node_ports,
            listen=f"127.0.0.1:{self.port}" + (" ssl" if tls else ""),
            static_root=static_root,
            files_root=files_root,
            file_max_bytes=file_max_bytes,
            tls_cert=cert,
            tls_key=key,
        )
        cluster.check_nginx_config(NGINX, config)
        self.process = subprocess.Popen(
            cluster.nginx_command(NGINX, config), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            # Through TLS, nginx's answer is a sign of the nodes' health too; the plain port is polled.
            cluster.wait_healthy(f"{self.url}/healthz", self.process, timeout=30, verify=not tls)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"nginx did not start: {exc}: {self.output()}") from exc

    def output(self) -> str:
        log = self.dir / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def worker_process(**extra_env):
    """`manage.py run_worker` as a process of its own against the test database (and this run's Redis
    prefix), polling every 0.2 s; `extra_env` adds settings (a clamd's `CLAMD_URL`). Stopped after."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": test_database_url(),
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
        env["CHANNEL_LAYER_PREFIX"] = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    else:
        env.pop("REDIS_URL", None)
    with tempfile.NamedTemporaryFile(prefix="worker-", suffix=".log") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--no-startup-delay", "--interval", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            stop_process(process, timeout=15)


def post_file(server, token: str, data: bytes, name: str = "report.pdf") -> tuple[int, dict]:
    """POST /api/files/ to a live server as a mobile client would (multipart, a lab report): (status, body)."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    body = encode_multipart(BOUNDARY, {"kind": "LAB_REPORT", "file": SimpleUploadedFile(name, data)})
    request = urllib.request.Request(f"{server.url}/api/files/", data=body, method="POST")  # noqa: S310
    request.add_header("Content-Type", MULTIPART_CONTENT)
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
