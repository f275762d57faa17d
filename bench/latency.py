"""Delivery latency: from a booking request to the patient's socket receiving it, per channel layer.

Starts daphne (one process) against a scratch database for each layer, books
N appointments over HTTP as a doctor for a patient whose socket is open, and
times each booking from the request to the `appointment_updated` frame. The
baseline, measured in the same run, is the HTTP response time of the same
booking requests: the push arrives that much later than the response.

    .venv/bin/python bench/latency.py --bookings 200 --runs 3 [--redis redis://127.0.0.1:6379/0]

Prints one line per run and a summary of medians over the runs (JSON with --json).
"""

import argparse
import asyncio
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings_test")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_pair(tag: str):
    from accounts.models import Doctor, Role, User

    password = "bench-Pass-123"
    doctor_user = User.objects.create_user(f"doc-{tag}@bench.test", password, name=f"Dr {tag}", role=Role.DOCTOR)
    doctor = Doctor.objects.create(user=doctor_user, specialty="Bench")
    patient = User.objects.create_user(f"pat-{tag}@bench.test", password, name=f"Patient {tag}")
    return doctor, patient, password


def percentile(values, q):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def measure(server, doctor, patient, password, bookings: int) -> dict:
    import websockets

    doctor_token = await asyncio.to_thread(server.token, doctor.user.email, password)
    patient_token = await asyncio.to_thread(server.token, patient.email, password)
    start_day = datetime.date.today() + datetime.timedelta(days=2)
    delivered, responded = [], []
    async with websockets.connect(f"{server.ws_url}?token={patient_token}", open_timeout=10) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for i in range(bookings):
            day = start_day + datetime.timedelta(days=i // 96)
            slot = (datetime.datetime.min + datetime.timedelta(minutes=15 * (i % 96))).strftime("%H:%M")
            body = {"doctor": doctor.pk, "patient": patient.pk, "date": day.isoformat(), "time": slot}
            t0 = time.perf_counter()
            status, created = await asyncio.to_thread(server.request, "POST", "/api/appointments/", body, doctor_token)
            t_response = time.perf_counter()
            assert status == 201, created
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if frame["type"] == "appointment_updated" and frame["data"]["id"] == created["id"]:
                    break
            t_socket = time.perf_counter()
            delivered.append((t_socket - t0) * 1000)
            responded.append((t_response - t0) * 1000)
    return {
        "delivery_median_ms": statistics.median(delivered),
        "delivery_p99_ms": percentile(delivered, 0.99),
        "response_median_ms": statistics.median(responded),
        "after_response_median_ms": statistics.median(d - r for d, r in zip(delivered, responded, strict=True)),
    }


def make_watchers(doctor, count: int):
    """`count` patients with an appointment with `doctor` today, so each may join the queue."""
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from appointments.models import Appointment

    tokens = []
    for i in range(count):
        patient = User.objects.create_user(f"w{i}-{uuid.uuid4().hex[:6]}@bench.test", None, name=f"Watcher {i}")
        Appointment.objects.create(
            patient=patient,
            doctor=doctor,
            date=timezone.localdate(),
            queue_number=i + 1,
            time=(datetime.datetime.min + datetime.timedelta(minutes=i)).time(),
        )
        tokens.append(str(AccessToken.for_user(patient)))
    return tokens


async def measure_fanout(server, doctor, password, tokens, updates: int) -> dict:
    """Time from a queue update request until every watching socket has it."""
    import websockets

    doctor_token = await asyncio.to_thread(server.token, doctor.user.email, password)
    sockets = [await websockets.connect(f"{server.ws_url}?token={t}", open_timeout=10) for t in tokens]
    try:
        for ws in sockets:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(json.dumps({"type": "join_queue", "data": {"doctor_id": doctor.pk}}))
            assert json.loads(await ws.recv())["type"] == "queue_updated"

        async def until(ws, number):
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if frame["type"] == "queue_updated" and frame["data"]["current_queue"] == number:
                    return time.perf_counter()

        all_received = []
        for n in range(1, updates + 1):
            waiting = [asyncio.create_task(until(ws, n)) for ws in sockets]
            t0 = time.perf_counter()
            status, _ = await asyncio.to_thread(
                server.request, "POST", f"/api/queues/{doctor.pk}/", {"current_queue": n}, doctor_token
            )
            assert status == 200
            last = max(await asyncio.gather(*waiting))
            all_received.append((last - t0) * 1000)
    finally:
        for ws in sockets:
            await ws.close()
    return {
        "fanout_all_median_ms": statistics.median(all_received),
        "fanout_all_p99_ms": percentile(all_received, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--layers", default="memory,core,pubsub")
    parser.add_argument("--database-url", default="", help="default: a scratch SQLite file")
    parser.add_argument("--watchers", type=int, default=50, help="sockets in one queue for the fan-out measure")
    parser.add_argument("--updates", type=int, default=30, help="queue updates timed per run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="mediconnect-bench-"))
    setup_django(args.database_url or f"sqlite:///{scratch / 'bench.sqlite3'}")
    from tests.live import Daphne

    layers = {
        "memory": {},
        "core": {"REDIS_URL": args.redis, "CHANNEL_LAYER": "core"},
        "pubsub": {"REDIS_URL": args.redis, "CHANNEL_LAYER": "pubsub"},
    }
    results: dict[str, list[dict]] = {name: [] for name in args.layers.split(",")}
    for run in range(args.runs):
        for name in results:  # layers interleaved within each run, so drift hits them alike
            env = {**layers[name], "CHANNEL_LAYER_PREFIX": f"bench{uuid.uuid4().hex[:8]}", "LOG_LEVEL": "WARNING"}
            server = Daphne(**env)
            try:
                doctor, patient, password = make_pair(f"{name}-{run}-{uuid.uuid4().hex[:6]}")
                result = asyncio.run(measure(server, doctor, patient, password, args.bookings))
                if args.watchers:
                    tokens = make_watchers(doctor, args.watchers)
                    result.update(asyncio.run(measure_fanout(server, doctor, password, tokens, args.updates)))
            finally:
                server.stop()
            results[name].append(result)
            if not args.json:
                print(f"run {run + 1} {name:7s} " + " ".join(f"{k}={v:.1f}" for k, v in result.items()), flush=True)

    summary = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in results.items()
    }
    baseline = summary.get("memory")
    for values in summary.values():
        values["bookings_per_run"] = args.bookings
        values["runs"] = args.runs
        if baseline:
            values["delivery_ratio_vs_memory"] = values["delivery_median_ms"] / baseline["delivery_median_ms"]
        values["delivery_ratio_vs_response"] = values["delivery_median_ms"] / values["response_median_ms"]
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\nmedians over runs:")
        for name, values in summary.items():
            print(
                f"  {name:7s} "
                + " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
            )


if __name__ == "__main__":
    main()
