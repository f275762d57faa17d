"""Services a test may break on purpose: its own redis-server and PostgreSQL cluster on free ports.

Each is started by the test run, stopped, hung (SIGSTOP) and brought back by the PID it started,
never by name: the machine's shared Redis and PostgreSQL are never touched. The PostgreSQL cluster is
made once per run (initdb into a temporary directory), migrated, and given the users the fault tests
log in as (`FaultUsers`); the tests read its stored event streams directly to compare them with
what their sockets received.
"""

import asyncio
import contextlib
import datetime
import glob
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import websockets

from tests.live import ROOT, free_port

PASSWORD = "Fault-pass-123"
CLOSE_SERVICE_RESTART = 1012  # a node's graceful stop (mediconnect/server/graceful.py)
DATABASE = "mediconnect"


def _find(binary: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{binary}"))
    return candidates[-1] if candidates else None


REDIS_SERVER = shutil.which("redis-server")
INITDB, PG_CTL = _find("initdb"), _find("pg_ctl")


def _wait(condition, *, timeout: float, what: str) -> None:
    """Poll `condition` until it holds, bounded by `timeout` (waiting for a process, not for the app)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class RedisServer:
    """A redis-server of the test's own, without persistence: a restart forgets every key, as a
    crashed Redis without a disk would."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mc-redis-")
        self.process: subprocess.Popen | None = None
        self.hung = False
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    def start(self) -> None:
        """Start it on its port (the same one after a stop: clients reconnect to where it was)."""
        log = open(Path(self.dir) / "redis.log", "ab")  # noqa: SIM115 (the process keeps writing to it)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", self.dir, "--protected-mode", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.hung = False
        _wait(lambda: self.process.poll() is not None or self._ping(), timeout=10, what="redis-server")
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(Path(self.dir) / 'redis.log').read_text()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop it as a crash would: SIGKILL by its PID, keys gone."""
        if self.running:
            if self.hung:
                self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
        self.hung = False

    def hang(self) -> None:
        """Freeze it (SIGSTOP): connections stay open and nothing answers."""
        self.process.send_signal(signal.SIGSTOP)
        self.hung = True

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.hung = False

    def ensure_up(self) -> None:
        """Back to a healthy server, whatever the last test left."""
        if self.hung:
            self.resume()
        if not self.running:
            self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresCluster:
    """A PostgreSQL cluster of the test run's own (initdb into a temporary directory, trust auth on
    127.0.0.1 only), stopped and started by the postmaster's PID through pg_ctl."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mc-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        # initdb and postgres refuse to run as root: then they run as the postgres account.
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self._run(INITDB, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.start()
        self.create_database(DATABASE)

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.run_as, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}{result.stderr}")

    def url(self, database: str = DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int((self.data / "postmaster.pid").read_text().split()[0])
        return None

    def start(self) -> None:
        # fsync off: a test cluster has nothing to keep across a power cut, and it starts faster.
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        self._run(PG_CTL, "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the postmaster (pg_ctl signals the PID in postmaster.pid): `fast` ends every open
        session, `immediate` is a crash (no shutdown checkpoint, recovery on the next start)."""
        if self.pid is not None:
            self._run(PG_CTL, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        return self.pid is not None

    def ensure_up(self) -> None:
        if not self.running:
            self.start()

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def connect(self, database: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# What the fault tests log in as, made in one step with one password hash (PBKDF2 per user would
# cost a quarter of a second each). The servers keep the production hashers for logins.
_SETUP = """
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from accounts.models import Doctor, Role, User

call_command("migrate", verbosity=0, interactive=False)
password = make_password({password!r})
User.objects.create_superuser("fault-admin@test.com", {password!r}, name="Fault Admin")
User.objects.bulk_create(
    [User(email=f"fault-doctor{{i}}@test.com", name=f"Dr. Fault {{i}}", role=Role.DOCTOR, password=password)
     for i in range({doctors})]
    + [User(email=f"fault-patient{{i}}@test.com", name=f"Patient {{i}}", role=Role.PATIENT, password=password)
       for i in range({patients})]
)
for user in User.objects.filter(role=Role.DOCTOR):
    Doctor.objects.create(user=user, specialty="General")
"""


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    doctor_id: int | None = None


class FaultUsers:
    """Accounts in the fault cluster: each test takes patients no other test used (a fresh stream)."""

    def __init__(self, cluster: PostgresCluster, *, doctors: int = 4, patients: int = 80):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
            "DATABASE_URL": cluster.url(),
            "SECRET_KEY": "fault-setup-only",
            "DEBUG": "false",
        }
        env.pop("REDIS_URL", None)
        code = _SETUP.format(password=PASSWORD, doctors=doctors, patients=patients)
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"migrating the fault cluster failed: {result.stdout}{result.stderr}")
        with cluster.connect() as conn:
            rows = conn.execute(
                "SELECT u.id, u.email, d.id FROM accounts_user u LEFT JOIN accounts_doctor d ON d.user_id = u.id"
            ).fetchall()
        by_email = {email: Account(id=uid, email=email, doctor_id=did) for uid, email, did in rows}
        self.admin = by_email["fault-admin@test.com"]
        self.doctors = [by_email[f"fault-doctor{i}@test.com"] for i in range(doctors)]
        self._patients = iter([by_email[f"fault-patient{i}@test.com"] for i in range(patients)])

    def patient(self) -> Account:
        return next(self._patients)


_slots = itertools.count()


def next_slot() -> tuple[str, str]:
    """A (date, time) no earlier booking in this run holds: a day from the day after tomorrow on."""
    n = next(_slots)
    day = datetime.date.today() + datetime.timedelta(days=2 + n // 600)  # tomorrow in any time zone
    minute = n % 600
    return day.isoformat(), f"{7 + minute // 60:02d}:{minute % 60:02d}"


def stored_events(cluster: PostgresCluster, user_id: int, after: int = 0) -> list[tuple[int, str, dict]]:
    """The user's stored event stream after `after`: the truth a socket must match."""
    with cluster.connect() as conn:
        return conn.execute(
            "SELECT seq, type, data FROM notifications_event WHERE user_id = %s AND seq > %s ORDER BY seq",
            (user_id, after),
        ).fetchall()


class Client:
    """A socket client that behaves as the portals do: one socket, and after any close or failed
    connect it reconnects with `?last_event_id=` of the last event it got (at once after 1012, a
    node's restart; after a short pause otherwise). `frames` holds every frame
    it received, across connections, in order; `ids` the ids of its per-user events."""

    def __init__(self, server, token: str, *, after: int | None = None):
        self.server, self.token = server, token
        self.frames: list[dict] = []
        self.closes: list = []  # how each connection ended (a close code, or the connect error)
        self.connections = 0
        # Seconds from each close to the next `ready`: what the portal shows as "reconnecting".
        self.away: list[float] = []
        self._closed_at: float | None = None
        # Where its stream starts: `after` (a resume from there), else the head when it first opened.
        self.start_id: int | None = after
        self.last_id: int | None = after
        self.socket = None
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    @property
    def ids(self) -> list[int]:
        return [f["id"] for f in self.frames if "id" in f]

    def of_type(self, kind: str) -> list[dict]:
        return [f for f in self.frames if f["type"] == kind]

    async def start(self) -> "Client":
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())
        await self.wait_for(lambda c: c.connections >= 1 and c.of_type("ready"), what="ready")
        return self

    def _url(self) -> str:
        url = f"{self.server.ws_url}?token={self.token}"
        if self.last_id is not None:
            url += f"&last_event_id={self.last_id}"
        return url

    async def _run(self) -> None:
        while True:
            try:
                async with websockets.connect(self._url(), open_timeout=10, max_size=None) as ws:
                    self.socket = ws
                    self.connections += 1
                    async for text in ws:
                        frame = json.loads(text)
                        self.frames.append(frame)
                        if frame["type"] == "ready" and self._closed_at is not None:
                            self.away.append(asyncio.get_running_loop().time() - self._closed_at)
                            self._closed_at = None
                        if frame["type"] == "ready" and self.last_id is None:
                            self.start_id = self.last_id = frame["data"]["last_event_id"] or 0
                        if "id" in frame:
                            self.last_id = frame["id"]
                        self._changed.set()
                self.closes.append(ws.close_code)
            except websockets.exceptions.ConnectionClosed as exc:  # a close other than 1000/1001
                self.closes.append(exc.rcvd.code if exc.rcvd else type(exc).__name__)
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                self.closes.append(type(exc).__name__)
            self.socket = None
            if self._closed_at is None:
                self._closed_at = asyncio.get_running_loop().time()
            self._changed.set()
            if self.closes[-1] != CLOSE_SERVICE_RESTART:  # after 1012 the portals reconnect at once
                await asyncio.sleep(0.2)  # a client's pause before it reconnects

    async def send(self, message: dict) -> None:
        await self.socket.send(json.dumps(message))

    async def wait_for(self, predicate, *, within: float = 20, what: str = "") -> None:
        """Until `predicate(self)` holds (checked on every frame and every close), or fail."""
        deadline = asyncio.get_running_loop().time() + within
        while not predicate(self):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}: frames {self.frames[-5:]}, closes {self.closes}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)

    async def wait_for_appointment(self, appointment_id: int, **kwargs) -> None:
        await self.wait_for(
            lambda c: any(f["data"].get("id") == appointment_id for f in c.of_type("appointment_updated")),
            what=f"appointment {appointment_id}",
            **kwargs,
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def retried_while_unavailable(call, *, within: float = 30.0, pause: float = 0.5):
    """`call()` again while it answers 503, as a client honouring `Retry-After` does (more eagerly),
    for at most `within` seconds: the first requests after a database returns may still meet the
    pool's reconnect backoff. Returns the first other answer, or the last 503."""
    deadline = time.monotonic() + within
    while True:
        answer = call()
        status = answer[0] if isinstance(answer, tuple) else answer.status
        if status != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(pause)
