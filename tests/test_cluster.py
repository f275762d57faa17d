"""A cluster as `make run-cluster` runs it: two daphne nodes behind nginx (deploy/), one PostgreSQL, one Redis.

The nodes are real daphne processes on free ports (tests/live.py), nginx is configured from
deploy/nginx/ by deploy/cluster.py, and the socket clients behave as the portals do
(tests/faults.py `Client`: reconnect after every close, at once after 1012, and resume with
`last_event_id`). What each client received is compared with the stored event stream of its user.
"""

import asyncio
import contextlib
import datetime
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import websockets
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from deploy import cluster as cluster_launcher
from documents.tests import samples
from tests.faults import CLOSE_SERVICE_RESTART, Client, next_slot
from tests.live import NGINX, ROOT, Daphne, Endpoint, Nginx, free_port
from tests.live import test_database_url as database_url  # (so that pytest does not collect it)
from tests.support.coturn import TurnClient, binding_answers, free_port_range, require_turnserver, rest_credentials
from tests.support.coturn import free_port as coturn_free_port

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.live,
    pytest.mark.skipif(NGINX is None, reason="needs nginx (apt-get install nginx)"),
    pytest.mark.skipif(not settings.REDIS_URL, reason="the nodes share groups and presence through Redis (REDIS_URL)"),
]

GAUGE = re.compile(r"^mediconnect_ws_connections (\S+)$", re.MULTILINE)
POSTS = re.compile(r'^mediconnect_http_requests_total\{method="POST",[^}]*\} (\S+)$', re.MULTILINE)
FILE_LIMIT = 1_000_000  # the cluster's FILE_MAX_BYTES


@dataclass
class Cluster:
    """Two nodes behind nginx. `start_node(port)` starts a node as the others (a restart on its port)."""

    env: dict
    static_root: Path
    files_root: Path | None = None
    nodes: list[Daphne] = field(default_factory=list)
    nginx: Nginx | None = None

    def start_node(self, port: int | None = None) -> Daphne:
        return Daphne(port=port, **self.env)

    def sockets_per_node(self) -> list[int]:
        return sockets_on(self.nodes)


def sockets_on(nodes) -> list[int]:
    """Each node's open sockets, from its own /metrics (scraped on its port, not through nginx)."""
    counts = []
    for node in nodes:
        answer = node.fetch("GET", "/metrics")
        assert answer.status == 200, answer.text[:200]
        counts.append(int(float(GAUGE.search(answer.text).group(1))))
    return counts


def collect_static(root: Path) -> None:
    """`collectstatic` as `make run-cluster` runs it: hashed names, into `root` (nginx serves it)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
        "STATICFILES_MANIFEST": "true",
        "STATIC_ROOT": str(root),
        "SECRET_KEY": settings.SECRET_KEY,
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker):
    static_root = Path(tempfile.mkdtemp(prefix="mc-static-"))
    static_root.chmod(0o755)  # nginx's workers run as nobody when the tests run as root
    collect_static(static_root)
    files_root = Path(tempfile.mkdtemp(prefix="mc-files-"))
    instance = Cluster(
        env={
            # nginx on the loopback forwards every request; its X-Forwarded-For names the client.
            "TRUSTED_PROXIES": "127.0.0.1",
            # This module's own presence and groups on the shared Redis.
            "CHANNEL_LAYER_PREFIX": f"cluster{uuid.uuid4().hex[:8]}",
            "STATICFILES_MANIFEST": "true",
            "STATIC_ROOT": str(static_root),
            # Documents as the launcher serves them: nginx sends the bytes (X-Accel-Redirect) and
            # refuses a body past the limit (small here, so that a refused body is cheap to send).
            "FILES_ROOT": str(files_root),
            "FILE_MAX_BYTES": str(FILE_LIMIT),
            **cluster_launcher.files_env({"FILES_ROOT": str(files_root)}),
        },
        static_root=static_root,
        files_root=files_root,
    )
    try:
        instance.nodes = [instance.start_node(), instance.start_node()]
        instance.nginx = Nginx(
            [node.port for node in instance.nodes],
            static_root=static_root,
            files_root=files_root,
            file_max_bytes=FILE_LIMIT,
        )
        yield instance
    finally:
        if instance.nginx is not None:
            instance.nginx.stop()
        for node in instance.nodes:
            node.stop()
        shutil.rmtree(static_root, ignore_errors=True)
        shutil.rmtree(files_root, ignore_errors=True)


# --- people, bookings and what was stored ----------------------------------------------------------

_emails = itertools.count()


@dataclass(frozen=True)
class People:
    doctor_id: int
    doctor_token: str
    admin_token: str
    patients: list[tuple[int, str]]  # (user id, access token)


@database_sync_to_async
def make_people(patients: int) -> People:
    """A doctor, an admin and `patients` patients, with access tokens signed with the nodes' key
    (no password hashing: the nodes are asked nothing but the token)."""
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import Doctor, Role, User

    def user(role, **extra):
        u = User(email=f"cluster{next(_emails)}-{uuid.uuid4().hex[:6]}@test.com", name="Cluster", role=role, **extra)
        u.set_unusable_password()
        return u

    doctor, admin = user(Role.DOCTOR), user(Role.ADMIN, is_staff=True)
    users = User.objects.bulk_create([doctor, admin, *[user(Role.PATIENT) for _ in range(patients)]])
    profile = Doctor.objects.create(user=users[0], specialty="General")
    token = lambda u: str(AccessToken.for_user(u))  # noqa: E731
    return People(profile.pk, token(users[0]), token(users[1]), [(u.pk, token(u)) for u in users[2:]])


@database_sync_to_async
def stored_ids(user_ids) -> dict[int, list[int]]:
    from notifications.models import Event

    stored: dict[int, list[int]] = {uid: [] for uid in user_ids}
    for uid, seq in Event.objects.filter(user_id__in=user_ids).order_by("user_id", "seq").values_list("user", "seq"):
        stored[uid].append(seq)
    return stored


RETRIES: list = []  # what made `book` try again (reported, not asserted)


def book(endpoint, people: People, patient_id: int) -> int:
    """The doctor books for the patient through nginx, as a careful client does: a request that met
    a node going away (502, 503, a reset) is sent again with the same Idempotency-Key, so it books once."""
    day, at = next_slot()
    key = uuid.uuid4().hex
    body = {"doctor": people.doctor_id, "patient": patient_id, "date": day, "time": at}
    for _attempt in range(50):
        try:
            answer = endpoint.fetch(
                "POST", "/api/appointments/", body, people.doctor_token, timeout=10, headers={"Idempotency-Key": key}
            )
        except OSError:
            answer = None
        if answer is not None and answer.status == 201:
            return answer.json()["id"]
        assert answer is None or answer.status in (502, 503, 504), (answer.status, answer.text[:300])
        RETRIES.append(answer.status if answer else "reset")
        time.sleep(0.1)  # a client's pause before it tries again
    raise AssertionError(f"booking for {patient_id} never went through")


async def open_clients(endpoint, people: People, per_patient: int) -> list[tuple[int, Client]]:
    clients = [(uid, Client(endpoint, token)) for uid, token in people.patients for _ in range(per_patient)]
    for start in range(0, len(clients), 50):  # as a busy clinic's morning, not all in one instant
        await asyncio.gather(*(client.start() for _, client in clients[start : start + 50]))
    return clients


async def everything_delivered(clients: list[tuple[int, Client]], *, within: float = 20) -> None:
    """Every client ends with exactly its user's stored events after where it started: each once, in order."""
    stored = await stored_ids({uid for uid, _ in clients})
    for uid, client in clients:
        expected = [seq for seq in stored[uid] if seq > client.start_id]
        count = len(expected)
        await client.wait_for(lambda c, n=count: len(c.ids) >= n, within=within, what=f"user {uid}'s events")
        assert client.ids == expected, (uid, client.ids, expected, client.closes)


async def until(condition, *, within: float, what: str) -> None:
    """Poll `condition` (a blocking check, run in a thread) until it holds, bounded by `within`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await asyncio.to_thread(condition):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def stop_clients(clients) -> None:
    await asyncio.gather(*(client.stop() for _, client in clients))


# --- the tests ------------------------------------------------------------------------------------


async def test_sockets_through_nginx_land_on_both_nodes_every_one_gets_its_bookings_and_presence_counts_all(
    cluster,
):
    people = await make_people(10)
    clients = await open_clients(cluster.nginx, people, per_patient=2)
    try:
        # Round robin with no stickiness: both nodes hold some of the 20 sockets.
        await until(lambda: sum(cluster.sockets_per_node()) == 20, within=10, what="20 sockets counted")
        per_node = await asyncio.to_thread(cluster.sockets_per_node)
        assert all(count > 0 for count in per_node), per_node

        for uid, _token in people.patients:
            await asyncio.to_thread(book, cluster.nginx, people, uid)
        await everything_delivered(clients)
        assert all(client.of_type("appointment_updated") for _, client in clients)

        status, body = await asyncio.to_thread(cluster.nginx.request, "GET", "/api/presence/", None, people.admin_token)
        assert (status, body) == (200, {"connected_users": 10})
    finally:
        await stop_clients(clients)


async def test_nginx_serves_the_hashed_static_files_compressed_and_cached_and_keeps_metrics_per_node(cluster):
    page = await asyncio.to_thread(cluster.nginx.fetch, "GET", "/login/")
    assert page.status == 200
    stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page.text).group(1)
    answer = await asyncio.to_thread(cluster.nginx.fetch, "GET", stylesheet, headers={"Accept-Encoding": "gzip"})
    assert answer.status == 200
    assert answer.headers.get("Content-Encoding") == "gzip"
    assert "immutable" in answer.headers.get("Cache-Control", "")
    assert not any(stylesheet in node.output() for node in cluster.nodes)  # nginx served it, not a node
    # The page's socket, from the page's own origin through nginx: Host and scheme reach the node.
    people = await make_people(1)
    url = f"{cluster.nginx.ws_url}?token={people.patients[0][1]}"
    async with websockets.connect(url, origin=cluster.nginx.url, open_timeout=10) as ws:
        assert '"ready"' in await asyncio.wait_for(ws.recv(), timeout=10)
    with pytest.raises(websockets.exceptions.InvalidStatus):  # an https page may not use this http site
        await websockets.connect(url, origin=cluster.nginx.url.replace("http:", "https:"), open_timeout=10)
    assert (await asyncio.to_thread(cluster.nginx.fetch, "GET", "/metrics")).status == 404


async def test_a_node_killed_outright_its_clients_resume_through_nginx_on_the_other_and_miss_nothing(cluster):
    people = await make_people(10)
    clients = await open_clients(cluster.nginx, people, per_patient=2)
    try:
        await until(lambda: sum(cluster.sockets_per_node()) == 20, within=10, what="20 sockets counted")
        victim = cluster.nodes[0]
        on_victim = (await asyncio.to_thread(cluster.sockets_per_node))[0]
        assert on_victim > 0
        await asyncio.to_thread(victim.kill)
        victim.stop()  # its log is closed; the process is gone

        # Booked while the victim's clients find their way to the other node.
        for uid, _token in people.patients:
            await asyncio.to_thread(book, cluster.nginx, people, uid)
        await everything_delivered(clients)
        moved = [client for _, client in clients if client.connections >= 2]
        assert len(moved) == on_victim
        assert all(client.socket is not None for _, client in clients)
        assert (await asyncio.to_thread(cluster.nodes[1].fetch, "GET", "/metrics")).status == 200
    finally:
        await stop_clients(clients)
        cluster.nodes[0] = await asyncio.to_thread(cluster.start_node, cluster.nodes[0].port)


async def test_a_rolling_restart_under_200_sockets_and_a_stream_of_bookings_loses_nothing(cluster):
    people = await make_people(50)
    clients = await open_clients(cluster.nginx, people, per_patient=4)
    booked: list[int] = []
    rolling_done = asyncio.Event()

    async def stream_of_bookings():
        for n in itertools.count():
            if rolling_done.is_set() and n >= 10:
                return
            uid = people.patients[n % len(people.patients)][0]
            booked.append(await asyncio.to_thread(book, cluster.nginx, people, uid))

    try:
        await until(lambda: sum(cluster.sockets_per_node()) == 200, within=20, what="200 sockets counted")
        bookings = asyncio.ensure_future(stream_of_bookings())
        for i, node in enumerate(list(cluster.nodes)):
            node.process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(node.process.wait, 15) == 0
            node.stop()
            cluster.nodes[i] = await asyncio.to_thread(cluster.start_node, node.port)
        rolling_done.set()
        await asyncio.wait_for(bookings, timeout=30)
        print(f"{len(booked)} bookings; tried again after: {RETRIES}")
        away = sorted(t for _, client in clients for t in client.away)
        print(f"reconnecting after a restart: median {away[len(away) // 2]:.2f} s, max {away[-1]:.2f} s")

        await everything_delivered(clients, within=30)
        assert len(set(booked)) == len(booked) >= 10
        # Every client was moved by a restart (1012) at least once and is connected now.
        assert all(CLOSE_SERVICE_RESTART in client.closes for _, client in clients)
        assert all(client.socket is not None for _, client in clients)
        await until(lambda: sum(cluster.sockets_per_node()) == 200, within=20, what="200 sockets counted")
    finally:
        rolling_done.set()
        await stop_clients(clients)


def upload(endpoint, token: str, data: bytes, name: str = "Blood test.pdf") -> tuple[int, str, str]:
    """POST /api/files/ (multipart) through `endpoint`: status, content type, body."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    body = encode_multipart(BOUNDARY, {"kind": "LAB_REPORT", "file": SimpleUploadedFile(name, data)})
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/files/",
            body,
            {"Content-Type": MULTIPART_CONTENT, "Authorization": f"Bearer {token}"},
        )
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type", ""), answer.read().decode(errors="replace")
    finally:
        connection.close()


def get_bytes(endpoint, path: str) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def posts_answered(nodes) -> float:
    """The POSTs the nodes' Django answered, all routes and statuses (each node's /metrics)."""
    return sum(float(n) for node in nodes for n in POSTS.findall(node.fetch("GET", "/metrics").text))


def test_a_document_goes_up_through_nginx_and_comes_down_from_files_root_sent_by_nginx(cluster):
    people = async_to_sync(make_people)(1)
    token = people.patients[0][1]
    data = samples.pdf()

    status, _type, body = upload(cluster.nginx, token, data)
    assert status == 201, body
    file = json.loads(body)
    assert file["status"] == "AVAILABLE"
    link = cluster.nginx.request("POST", f"/api/files/{file['id']}/link/", None, token)[1]["url"]

    status, headers, content = get_bytes(cluster.nginx, link)
    assert status == 200
    assert content == data
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert "Blood test.pdf" in headers["Content-Disposition"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "private, no-store"

    # A node answers the link with the file's place and no bytes: nginx sent them.
    status, headers, content = get_bytes(cluster.nodes[0], link)
    assert (status, content) == (200, b"")
    internal = headers["X-Accel-Redirect"]
    assert internal.startswith("/protected-files/files/")
    assert "Blood" not in internal  # a random name
    assert (cluster.files_root / internal.removeprefix("/protected-files/")).read_bytes() == data
    # The internal location answers nginx's own redirects only.
    status, _headers, content = get_bytes(cluster.nginx, internal)
    assert status == 404 and data not in content


def test_an_upload_past_the_limit_is_refused_by_nginx_with_the_contracts_413_before_a_node_sees_it(cluster):
    people = async_to_sync(make_people)(1)
    token = people.patients[0][1]
    before = posts_answered(cluster.nodes)

    status, content_type, body = upload(cluster.nginx, token, b"%PDF-1.7\n" + b"0" * (FILE_LIMIT + 100_000))

    assert status == 413
    assert content_type.startswith("application/json")
    assert json.loads(body) == {"file": [f"The file is larger than {FILE_LIMIT} bytes."]}
    assert posts_answered(cluster.nodes) == before  # no node answered it: nginx did
    # One within the limit still goes through, and is counted by the node that took it.
    assert upload(cluster.nginx, token, samples.pdf())[0] == 201
    assert posts_answered(cluster.nodes) == before + 1


def test_the_launcher_bounds_nginx_by_the_nodes_own_limit():
    from documents.uploads import FORM_ALLOWANCE

    assert cluster_launcher.FORM_ALLOWANCE == FORM_ALLOWANCE
    assert cluster_launcher.FILE_MAX_BYTES == settings.FILE_MAX_BYTES


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


async def test_tls_ends_at_nginx_a_wss_socket_reaches_a_node_which_knows_the_page_was_https(cluster, certificate):
    cert, _key = certificate
    ports = [node.port for node in cluster.nodes]
    tls = await asyncio.to_thread(Nginx, ports, static_root=cluster.static_root, tls=certificate)
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        people = await make_people(1)
        url = f"{tls.ws_url}?token={people.patients[0][1]}"
        async with websockets.connect(url, ssl=trust, origin=tls.url, open_timeout=10) as ws:
            assert '"ready"' in await asyncio.wait_for(ws.recv(), timeout=10)
        # X-Forwarded-Proto told the node the page was https: an http page of the same host is refused.
        with pytest.raises(websockets.exceptions.InvalidStatus):
            await websockets.connect(url, ssl=trust, origin=tls.url.replace("https:", "http:"), open_timeout=10)
    finally:
        tls.stop()


# --- `make run-cluster` itself: the launcher supervises its processes ------------------------------

MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="needs make")


class Address(Endpoint):
    """A server at 127.0.0.1:`port` (a node of the launcher's, or its nginx)."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws/"


def free_ports_in_a_row(count: int) -> int:
    """The first of `count` consecutive free ports (the launcher's nodes take BASE_PORT, BASE_PORT+1, …)."""
    for _attempt in range(50):
        first = free_port()
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + count):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} free ports in a row")


class Launcher:
    """`make run-cluster` run by make itself, its prerequisites (pip, migrate, collectstatic, the demo
    seed: the test database is migrated already) taken as done, on free ports, against the test
    database and Redis; a runtime directory of its own. Its output is kept, line by line."""

    def __init__(self, *, nodes: int = 2, **extra_env):
        self.port, self.base_port = free_port(), free_ports_in_a_row(nodes)
        self.runtime = Path(tempfile.mkdtemp(prefix="mc-launcher-"))
        static_root = self.runtime / "static"
        static_root.mkdir()
        static_root.chmod(0o755)
        self.runtime.chmod(0o755)  # nginx's workers run as nobody when the tests run as root
        self.nginx = Address(self.port)
        self.nodes = [Address(self.base_port + i) for i in range(nodes)]
        env = {
            **os.environ,
            "ENV_FILE": "",  # no developer's .env
            "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,  # wins over the Makefile's key file
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CHANNEL_LAYER_PREFIX": f"launcher{uuid.uuid4().hex[:8]}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "STATIC_ROOT": str(static_root),
            "STATICFILES_MANIFEST": "false",
            "CLUSTER_RUNTIME": str(self.runtime),
            **{k: str(v) for k, v in extra_env.items()},
        }
        prerequisites = [arg for target in ("cluster-check", "nginx", "migrate") for arg in ("-o", target)]
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [MAKE, "--no-print-directory", *prerequisites, "run-cluster", f"PY={sys.executable}"]
            + [f"NODES={nodes}", f"BASE_PORT={self.base_port}", "HOST=127.0.0.1", f"PORT={self.port}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # make and the launcher: the group a terminal's Ctrl-C reaches
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, *, within: float) -> re.Match:
        """The first line of the launcher's output that matches `pattern`, waiting up to `within` s."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + within
        with self._changed:
            while True:
                for line in self.lines:
                    if found := regex.search(line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"no line like {pattern!r} in the launcher's output:\n{self.output()}")
                self._changed.wait(min(left, 1))

    def pid(self, name: str) -> int:
        return int((self.runtime / f"{name}.pid").read_text())

    def sockets_per_node(self) -> list[int]:
        return sockets_on(self.nodes)

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it (to make and the launcher); waits for make to return."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=40)

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.interrupt()
        finally:
            # A launcher that did not stop leaves its pid files (a clean stop removes them): kill those.
            for pid_file in self.runtime.glob("*.pid"):
                with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                    os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            shutil.rmtree(self.runtime, ignore_errors=True)


def gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie whose new parent has not reaped it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def launcher(django_db_setup):
    started: list[Launcher] = []

    def start(**env) -> Launcher:
        instance = Launcher(**env)
        started.append(instance)
        instance.wait_for_line(r"^MediConnect on http://127\.0\.0\.1:\d+/", within=60)
        return instance

    yield start
    for instance in started:
        instance.close()


@needs_make
async def test_make_run_cluster_restarts_a_killed_node_whose_clients_resume_on_the_other_and_it_takes_new_ones(
    launcher,
):
    cluster = await asyncio.to_thread(launcher)
    people = await make_people(10)
    clients = await open_clients(cluster.nginx, people, per_patient=2)
    more: list[tuple[int, Client]] = []
    try:
        await until(lambda: sum(cluster.sockets_per_node()) == 20, within=10, what="20 sockets counted")
        on_victim = (await asyncio.to_thread(cluster.sockets_per_node))[0]
        assert on_victim > 0
        victim = cluster.pid("node1")
        others = {name: cluster.pid(name) for name in ("node2", "worker1", "nginx")}
        os.kill(victim, signal.SIGKILL)

        # Booked while node1 is down or coming back: node2 serves, its clients find their way there.
        for uid, _token in people.patients:
            await asyncio.to_thread(book, cluster.nginx, people, uid)
        await everything_delivered(clients)
        moved = [client for _, client in clients if client.connections >= 2]
        assert len(moved) == on_victim

        await asyncio.to_thread(cluster.wait_for_line, rf"node1 \(pid {victim}\) exited with signal SIGKILL", within=5)
        back = await asyncio.to_thread(cluster.wait_for_line, r"node1 is back: .* \(pid (\d+)\)", within=30)
        assert int(back.group(1)) == cluster.pid("node1") != victim
        # Nothing else was stopped or restarted.
        assert {name: cluster.pid(name) for name in others} == others
        assert "stopping the cluster" not in cluster.output()

        # New sockets through nginx land on node1 again (round robin: within a few).
        before = (await asyncio.to_thread(cluster.sockets_per_node))[0]
        while (await asyncio.to_thread(cluster.sockets_per_node))[0] == before:
            assert len(more) < 10, await asyncio.to_thread(cluster.sockets_per_node)
            uid, token = people.patients[len(more)]
            more.append((uid, await Client(cluster.nginx, token).start()))
            await until(lambda: sum(cluster.sockets_per_node()) == 20 + len(more), within=10, what="sockets counted")
        for uid, _token in people.patients:
            await asyncio.to_thread(book, cluster.nginx, people, uid)
        await everything_delivered(clients + more)
    finally:
        await stop_clients(clients + more)

    # Only Ctrl-C stops it: every process of the cluster, nginx included.
    pids = [cluster.pid(name) for name in ("node1", "node2", "worker1", "nginx")]
    await asyncio.to_thread(cluster.interrupt)
    assert "stopping the cluster" in cluster.output()
    assert all(gone(pid) for pid in pids), pids


@needs_make
def test_make_run_cluster_starts_behind_tls_its_health_checks_answered_over_plain_http(launcher):
    cluster = launcher(LOCAL_HTTP="false")
    # The launcher's probe got its 200 from each node (it printed the line the fixture waited for);
    # nginx's and a balancer's plain check too, while pages still go to https://.
    for endpoint in (cluster.nginx, *cluster.nodes):
        assert plain_get(endpoint.port, "/healthz") == (200, None)
    assert plain_get(cluster.nginx.port, "/login/") == (301, f"https://127.0.0.1:{cluster.port}/login/")


def plain_get(port: int, path: str) -> tuple[int, str | None]:
    """GET over plain HTTP, not following a redirect: (status, Location)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Location")
    finally:
        connection.close()


def healthy(port: int) -> bool:
    """Whether /healthz on `port` answers 200 (False while nothing listens there)."""
    try:
        return plain_get(port, "/healthz")[0] == 200
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid …: the command may hold spaces and parentheses, so split after the last ")".
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@needs_make
async def test_make_run_cluster_restarts_nginx_killed_outright_without_its_old_workers(launcher):
    cluster = await asyncio.to_thread(launcher)
    master = cluster.pid("nginx")
    workers = children_of(master)
    assert workers
    nodes = [cluster.pid("node1"), cluster.pid("node2")]
    os.kill(master, signal.SIGKILL)

    restarted = await asyncio.to_thread(cluster.wait_for_line, r"^nginx restarted: pid (\d+)", within=10)
    await until(lambda: healthy(cluster.port), within=10, what="nginx answering again")
    # The killed master's workers, which would have kept the port from the new one, are gone.
    assert all(gone(pid) for pid in workers)
    assert cluster.pid("nginx") == int(restarted.group(1))
    assert [cluster.pid("node1"), cluster.pid("node2")] == nodes


def test_a_process_that_keeps_exiting_waits_0_5_s_doubling_to_10_s_and_0_5_s_again_once_it_ran_a_while(
    tmp_path, capsys
):
    from deploy.cluster import STABLE_SECONDS, Supervised

    child = Supervised("crasher", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ), runtime=tmp_path)
    child.start()
    delays, pids = [], []
    for _restart in range(7):
        pids.append(int(child.pid_file.read_text()))
        child.process.popen.wait(timeout=30)
        now = time.monotonic()
        child.check(now)  # the supervisor notices the exit
        delays.append(child.restart_at - now)
        child.check(child.restart_at)  # and starts it again once its delay has passed
    assert delays == pytest.approx([0.5, 1, 2, 4, 8, 10, 10])
    assert len(set(pids)) == 7

    child.process.popen.wait(timeout=30)
    child.process.started -= STABLE_SECONDS  # this run lasted long enough: the delay starts over
    now = time.monotonic()
    child.check(now)
    assert child.restart_at - now == pytest.approx(0.5)
    child.stop(signal.SIGTERM)
    child.wait(timeout=10)
    assert not child.pid_file.exists()

    log = [line for line in capsys.readouterr().out.splitlines() if line.startswith("crasher")]
    first_exit = rf"crasher \(pid {pids[0]}\) exited with status 3 after [\d.]+ s: restarting it in 0.5 s"
    assert re.fullmatch(first_exit, log[0]), log[0]
    assert log[1] == f"crasher restarted: pid {pids[1]}"
    restarts = [line.rsplit(" ", 2)[1] for line in log if "restarting it in" in line]
    assert restarts == ["0.5", "1", "2", "4", "8", "10", "10", "0.5"]


# --- CLUSTER_TURN=1: a coturn beside the nodes -------------------------------------------------------


def video_visit_now():
    """A CONFIRMED video visit starting this minute (clinic time), and its patient: its call is open."""
    from accounts.tests.factories import DoctorFactory, UserFactory
    from appointments.models import Mode
    from appointments.services import appointment_book

    patient, now = UserFactory(), timezone.localtime()
    appointment = appointment_book(
        actor=patient,
        doctor=DoctorFactory(),
        date=now.date(),
        time=datetime.time(now.hour, now.minute),
        reason="",
        mode=Mode.VIDEO,
    )
    return appointment, patient


def environment_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(pair.decode(errors="replace").split("=", 1) for pair in pairs if b"=" in pair)


@needs_make
def test_make_run_cluster_with_cluster_turn_runs_a_coturn_whose_credentials_the_call_api_hands_out(launcher, tmp_path):
    require_turnserver()
    secret_file = tmp_path / "turn_secret"  # as .turn_secret: made once, mode 600
    port, (first, last) = coturn_free_port(), free_port_range(8)
    cluster = launcher(
        CLUSTER_TURN="1",
        TURN_PORT=port,
        TURN_MIN_PORT=first,
        TURN_MAX_PORT=last,
        TURN_SECRET="",
        TURN_SECRET_FILE=secret_file,
    )
    cluster.wait_for_line(rf"^coturn: turn:127\.0\.0\.1:{port}\?transport=udp", within=5)
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32 and secret_file.stat().st_mode & 0o777 == 0o600
    assert (cluster.runtime / "turnserver.conf").stat().st_mode & 0o777 == 0o600

    node = environment_of(cluster.pid("node1"))
    assert node["TURN_SECRET"] == secret
    assert node["TURN_URLS"].split(",") == [
        f"turn:127.0.0.1:{port}?transport=udp",
        f"turn:127.0.0.1:{port}?transport=tcp",
    ]
    assert node["STUN_URLS"] == f"stun:127.0.0.1:{port}"

    def allocate(with_secret: str):
        username, credential = rest_credentials(secret=with_secret, expiry=int(time.time()) + 600, user="7")
        with TurnClient("127.0.0.1", port) as client:
            answer = client.allocate(username, credential)
            return answer.error_code if not answer.ok else client.relayed

    relayed = allocate(secret)
    assert isinstance(relayed, tuple) and first <= relayed[1] <= last, relayed
    assert allocate("not-" + secret) == 401

    # What a participant of a video visit gets through nginx, coturn accepts.
    appointment, patient = video_visit_now()
    status, body = cluster.nginx.request(
        "GET", f"/api/appointments/{appointment.pk}/call/", token=str(AccessToken.for_user(patient))
    )
    assert status == 200, body
    (turn,) = [entry for entry in body["ice_servers"] if "username" in entry]
    assert turn["urls"] == node["TURN_URLS"].split(",") and turn["username"].endswith(f":{patient.pk}")
    with TurnClient("127.0.0.1", port) as client:
        answer = client.allocate(turn["username"], turn["credential"])
        assert answer.ok, (answer.error_code, answer.reason)

    # Supervised like the others: killed, it is started again with the same secret.
    victim = cluster.pid("coturn")
    os.kill(victim, signal.SIGKILL)
    cluster.wait_for_line(rf"coturn \(pid {victim}\) exited with signal SIGKILL", within=5)
    cluster.wait_for_line(r"^coturn restarted: pid \d+", within=10)
    deadline = time.monotonic() + 15
    while not binding_answers("127.0.0.1", port):
        assert time.monotonic() < deadline, cluster.output()[-3000:]
    assert isinstance(allocate(secret), tuple)


def test_cluster_turn_needs_an_address_browsers_reach_and_a_free_port(tmp_path):
    env = {"TURN_SECRET": "s", "TURN_PORT": str(coturn_free_port())}
    with pytest.raises(SystemExit, match="TURN_HOST"):
        cluster_launcher.turn_from_env(env, host="0.0.0.0")  # noqa: S104
    turn = cluster_launcher.turn_from_env({**env, "TURN_HOST": "127.0.0.1"}, host="0.0.0.0")  # noqa: S104
    assert turn.loopback and turn.urls()["STUN_URLS"] == f"stun:127.0.0.1:{turn.port}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:  # as Debian's coturn service would
        taken.bind(("127.0.0.1", turn.port))
        with pytest.raises(SystemExit, match=f"TURN_PORT {turn.port}"):
            cluster_launcher.check_turn_port_free(turn)

    # Only a loopback coturn relays to loopback peers.
    assert "allow-loopback-peers" in cluster_launcher.write_turn_config(tmp_path, turn).read_text()
    public = cluster_launcher.turn_from_env({**env, "TURN_HOST": "192.0.2.10"}, host="127.0.0.1")
    assert "allow-loopback-peers" not in cluster_launcher.write_turn_config(tmp_path, public).read_text()
