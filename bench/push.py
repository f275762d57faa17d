"""Web Push: how fast one worker sends, and how soon "call next" reaches the patient (run by hand).

    .venv/bin/python bench/push.py [--only throughput|call] [--messages 1000] [--runs 5]
                                   [--patients 1000] [--calls 200] [--intervals 1,0.2]

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432, a user that may
create databases): a scratch database `mcpush_<pid>` is made, migrated and dropped. No Redis: the
daphne of (ii) has one process and the in-memory layer; pushes go through the database and the worker.

(i) throughput: `--messages` notifications, one per patient, each with one subscription at a sink
(a process of its own on the other core: it reads each request and answers 201, nothing more);
the time of one `pushes_send_due()` (the worker's task: claim, read, encrypt with RFC 8291 aes128gcm,
sign VAPID, POST with WEBPUSH_CONCURRENCY threads, record) in this process, pinned to core 0. In the
same run, the floor: the same number of plain POSTs of the same size to the same sink with the same
threads and keep-alive sessions, no encryption, no VAPID, no database. And the encryption alone
(pywebpush's encode, one thread). Medians over `--runs`; a sample of what the sink got is decrypted.

(ii) call next → push: `--patients` patients with a CONFIRMED appointment of today with one doctor,
each subscribed at a receiver in this process that verifies VAPID and decrypts each message
(tests/support/push_receiver.py); a live daphne and a real `manage.py run_worker` (polling every
`--intervals` seconds: 1 is its default, as `make run` starts it). The doctor POSTs
/api/queues/{id}/next/ `--calls` times (after one uncounted call that waits for the worker to be up),
one after another, each once the previous call's QUEUE_CALLED had arrived; the delay is from just
before the POST to the decrypted QUEUE_CALLED of the patient whose number it reached. p50/p99 per
interval.

Writes docs/bench/push/push.json and prints the figures.
"""

import argparse
import asyncio
import atexit
import base64
import datetime
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "bench" / "push"
LOGS = ROOT / "bench" / "results" / "logs"  # the worker's output (not committed)
PASSWORD = "bench-Passw0rd!"


# The sink: a process of its own ------------------------------------------------------------------


def serve_sink(port: int) -> None:
    """Answer every POST 201 at once (HTTP/1.1 keep-alive), count them, keep the last one's headers and
    body; GET /stats gives {"count", "headers", "body"}. Pinned to the last core."""
    with_cores = os.sched_getaffinity(0)
    if len(with_cores) > 1:
        os.sched_setaffinity(0, {max(with_cores)})
    state = {"count": 0, "headers": {}, "body": b""}

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET" and path == "/stats":
                    payload = json.dumps(
                        {
                            "count": state["count"],
                            "headers": state["headers"],
                            "body": base64.b64encode(state["body"]).decode(),
                            "path": state.get("path", ""),
                        }
                    ).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(payload)).encode()
                        + b"\r\n\r\n"
                        + payload
                    )
                else:
                    state.update(count=state["count"] + 1, headers=headers, body=body, path=path)
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Sink:
    def __init__(self):
        from tests.live import free_port

        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, __file__, "--sink", str(self.port)], cwd=ROOT)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.stats()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling for the port to open, bounded by the deadline

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.origin}/stats", timeout=5) as response:  # noqa: S310 (our own sink)
            return json.loads(response.read())

    def stop(self) -> None:
        from tests.live import stop_process

        stop_process(self.process)


# Setup ---------------------------------------------------------------------------------------------


def prepare(args) -> str:
    """A scratch PostgreSQL database, migrated; Django set up on it with the test settings (a VAPID key
    of the run's own, in the environment for the processes started later)."""
    import psycopg

    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
    name = f"mcpush_{os.getpid()}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop():
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    atexit.register(drop)
    os.environ["DATABASE_URL"] = f"{base}/{name}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings_test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return name


def make_patients(n: int, tag: str):
    from accounts.models import Role, User

    users = [
        User(email=f"bench-{tag}-{i}@example.com", name=f"Patient {i}", role=Role.PATIENT, language="en")
        for i in range(n)
    ]
    for user in users:
        user.set_unusable_password()
    return User.objects.bulk_create(users)


def subscribe_all(users, endpoint_for) -> dict:
    """One subscription per user with a fresh browser key pair; returns {endpoint: (private key, auth)}."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from notifications.models import PushSubscription
    from notifications.webpush import b64url_encode

    keys, rows = {}, []
    for i, user in enumerate(users):
        private = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        point = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        endpoint = endpoint_for(i)
        keys[endpoint] = (private, auth)
        rows.append(
            PushSubscription(user=user, endpoint=endpoint, p256dh=b64url_encode(point), auth=b64url_encode(auth))
        )
    PushSubscription.objects.bulk_create(rows)
    return keys


# (i) throughput ------------------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pin(core: int) -> None:
    cores = os.sched_getaffinity(0)
    if len(cores) > 1:
        os.sched_setaffinity(0, {core})


def throughput(args) -> dict:
    import http_ece
    from django.conf import settings
    from django.db import connection
    from django_tasks_db.models import DBTaskResult
    from pywebpush import WebPusher

    from notifications.models import Delivery, Notification, NotificationType, PushMessage
    from notifications.services import notifications_create
    from notifications.webpush import push_payload, pushes_send_due

    sink = Sink()
    try:
        settings.PUSH_ENDPOINT_ALLOW = [f"{sink.origin}/"]
        users = make_patients(args.messages, "tp")
        keys = subscribe_all(users, lambda i: f"{sink.origin}/p/{i}")
        runs = []
        pin(0)
        for run in range(args.runs):
            notifications = [
                Notification(
                    user=user,
                    type=NotificationType.APPOINTMENT_REMINDER,
                    title="Appointment Reminder",
                    message=f"Your appointment with Dr. Bench is at 10:{run:02d} tomorrow.",
                    related_id=1000 + i,
                    related_type="Appointment",
                )
                for i, user in enumerate(users)
            ]
            created = notifications_create(notifications=notifications)
            before = sink.stats()["count"]
            started = time.perf_counter()
            sent = pushes_send_due()
            app_seconds = time.perf_counter() - started
            stats = sink.stats()
            assert sent == args.messages and stats["count"] - before == args.messages, (sent, stats["count"])
            # A sample, decrypted as the browser would: the last one the sink got.
            private, auth = keys[sink.origin + stats["path"]]
            plain = json.loads(http_ece.decrypt(base64.b64decode(stats["body"]), private_key=private, auth_secret=auth))
            assert plain["type"] == "APPOINTMENT_REMINDER", plain
            body_size = len(base64.b64decode(stats["body"]))

            # The floor: the same number of plain POSTs of that size, same threads, kept-alive sessions.
            def plain_post(i, body=b"x" * body_size, local=threading.local()):  # noqa: B008 (one per run)
                import requests

                if getattr(local, "session", None) is None:
                    local.session = requests.Session()
                    local.session.trust_env = False
                response = local.session.post(f"{sink.origin}/p/{i}", data=body, timeout=10)
                return response.status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=settings.WEBPUSH_CONCURRENCY) as pool:
                statuses = list(pool.map(plain_post, range(args.messages)))
            floor_seconds = time.perf_counter() - started
            assert statuses.count(201) == args.messages

            # The encryption alone (payload built, aes128gcm with a fresh ECDH key each), one thread.
            subscriptions = list(
                PushMessage.objects.filter(notification__in=created).select_related(
                    "subscription", "notification__user"
                )
            )
            started = time.perf_counter()
            for message in subscriptions:
                sub = message.subscription
                WebPusher({"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}).encode(
                    push_payload(message.notification), "aes128gcm"
                )
            encrypt_seconds = time.perf_counter() - started
            runs.append(
                {
                    "app_per_second": args.messages / app_seconds,
                    "floor_per_second": args.messages / floor_seconds,
                    "encrypt_only_per_second": args.messages / encrypt_seconds,
                    "body_bytes": body_size,
                }
            )
            print(
                f"  run {run + 1}: app {runs[-1]['app_per_second']:.0f}/s, plain POSTs "
                f"{runs[-1]['floor_per_second']:.0f}/s, encryption alone {runs[-1]['encrypt_only_per_second']:.0f}/s",
                flush=True,
            )
            # What else the notifications made: their email deliveries (reminders go out offline) and the
            # wake-ups queued. Left behind, they would keep the worker of (ii) busy for minutes.
            PushMessage.objects.all().delete()
            Delivery.objects.all().delete()
            DBTaskResult.objects.all().delete()
            connection.close()
        pin_all()
    finally:
        sink.stop()
    medians = {
        key: statistics.median(r[key] for r in runs)
        for key in ("app_per_second", "floor_per_second", "encrypt_only_per_second")
    }
    return {
        "messages": args.messages,
        "runs": runs,
        "medians": medians,
        "app_over_floor": medians["app_per_second"] / medians["floor_per_second"],
        "concurrency": settings.WEBPUSH_CONCURRENCY,
    }


def pin_all() -> None:
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


# (ii) call next → decrypted QUEUE_CALLED -------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def call_next(args) -> dict:
    from django.conf import settings
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from accounts.models import Doctor, Role, User
    from appointments.models import Appointment
    from notifications.models import PushSubscription
    from notifications.webpush import application_server_key
    from tests.live import Daphne, stop_process, test_database_url
    from tests.support.push_receiver import PushReceiver

    receiver = PushReceiver(subject=settings.VAPID_SUBJECT, server_key=application_server_key()).start()
    results = {}
    try:
        allow = f"{receiver.origin}/"
        settings.PUSH_ENDPOINT_ALLOW = [allow]
        for interval in args.intervals:
            tag = f"call{str(interval).replace('.', '')}"
            doctor_user = User.objects.create_user(
                f"bench-doc-{tag}@example.com", PASSWORD, name="Dr. Bench", role=Role.DOCTOR
            )
            doctor = Doctor.objects.create(user=doctor_user, specialty="Medicine")
            patients = make_patients(args.patients, tag)
            today = timezone.localdate()
            Appointment.objects.bulk_create(
                [
                    Appointment(
                        patient=patient,
                        doctor=doctor,
                        date=today,
                        time=datetime.time(i // 60 % 24, i % 60),
                        queue_number=i + 1,
                        status="CONFIRMED",
                        reason="Bench: must never be pushed",
                    )
                    for i, patient in enumerate(patients)
                ]
            )
            browsers = [receiver.subscribe() for _ in patients]
            PushSubscription.objects.bulk_create(
                [
                    PushSubscription(
                        user=patient,
                        endpoint=b.endpoint,
                        p256dh=b.p256dh,
                        auth=base64.urlsafe_b64encode(b.auth).decode(),
                    )
                    for patient, b in zip(patients, browsers, strict=True)
                ]
            )
            by_number = {i + 1: b.endpoint for i, b in enumerate(browsers)}
            DBTaskResult.objects.all().delete()  # a fresh queue for the worker
            server = Daphne(PUSH_ENDPOINT_ALLOW=allow)
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
                "SECRET_KEY": settings.SECRET_KEY,
                "DATABASE_URL": test_database_url(),
                "PUSH_ENDPOINT_ALLOW": allow,
                "PYTHONUNBUFFERED": "1",
            }
            LOGS.mkdir(parents=True, exist_ok=True)
            worker_log = (LOGS / f"push-worker-{tag}.log").open("w")
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "run_worker", "--no-startup-delay", "--interval", str(interval)],
                cwd=ROOT,
                env=env,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
            try:
                token = server.token(doctor_user.email, PASSWORD)
                delays, responses, leaked = [], [], 0
                # The first call is not counted: it waits for the worker to have started.
                for call in range(args.calls + 1):
                    started = time.perf_counter()
                    status, body = server.request("POST", f"/api/queues/{doctor.pk}/next/", {}, token=token)
                    responses.append(time.perf_counter() - started)
                    assert status == 200, body
                    endpoint = by_number[body["current_queue"]]

                    def called(r, endpoint=endpoint):
                        return [m for m in r.delivered(endpoint) if m.payload["type"] == "QUEUE_CALLED"]

                    [message] = receiver.wait_for(called, timeout=60 if call == 0 else 30)
                    if call == 0:
                        continue
                    delays.append(message.at - started)
                    leaked += "Bench:" in json.dumps(message.payload)
                ms = [d * 1000 for d in delays]
                results[str(interval)] = {
                    "worker_interval_seconds": interval,
                    "calls": len(ms),
                    "p50_ms": statistics.median(ms),
                    "p99_ms": percentile(ms, 0.99),
                    "max_ms": max(ms),
                    "post_p50_ms": statistics.median(responses) * 1000,
                    "reason_in_payload": leaked,
                }
                print(
                    f"  worker --interval {interval}: call next → decrypted QUEUE_CALLED p50 "
                    f"{results[str(interval)]['p50_ms']:.0f} ms, p99 {results[str(interval)]['p99_ms']:.0f} ms "
                    f"({len(ms)} calls, POST p50 {results[str(interval)]['post_p50_ms']:.0f} ms)",
                    flush=True,
                )
            finally:
                stop_process(worker, timeout=15)
                server.stop()
    finally:
        receiver.stop()
    return {"patients": args.patients, "by_interval": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["throughput", "call"])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--intervals", default="1,0.2", help="the worker's --interval values, in turn")
    args = parser.parse_args()
    if args.sink:
        serve_sink(args.sink)
        return
    args.intervals = [float(v) for v in args.intervals.split(",") if v]
    prepare(args)
    report = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "loadavg_at_start": os.getloadavg()},
        "command": " ".join(["bench/push.py", *sys.argv[1:]]),
    }
    if args.only in (None, "throughput"):
        print(f"(i) {args.messages} pushes per run, {args.runs} runs", flush=True)
        report["throughput"] = throughput(args)
    if args.only in (None, "call"):
        print(f"(ii) call next with {args.patients} subscribed patients in the queue", flush=True)
        report["call_next"] = call_next(args)
    OUT.mkdir(parents=True, exist_ok=True)
    name = "push.json" if args.only is None else f"push-{args.only}.json"
    (OUT / name).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k in ("throughput", "call_next")}, indent=2, default=str))


if __name__ == "__main__":
    main()
