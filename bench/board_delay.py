"""How long a doctor's queue change takes to reach the waiting-room boards (run by hand).

    .venv/bin/python bench/board_delay.py [--boards 50] [--changes 50]

Builds a scratch SQLite database with the demo data, serves it with one daphne process (Redis
channel layer if REDIS_URL is set, else in-memory), opens `--boards` sockets on the demo board,
and has the doctor set the queue number `--changes` times over REST, one at a time. The delay is
measured from just before the POST is sent to the arrival of that number's `queue_updated` on
each board socket; the figures are over every (change, board) pair.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def prepare() -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='mediconnect-board-')}/board.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediconnect.settings_test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115


def post_json(url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our own test server)
        return json.loads(response.read())


async def measure(server, boards: int, changes: int) -> list[float]:
    from websockets.asyncio.client import connect

    from accounts.models import Doctor

    doctor_id = await asyncio.to_thread(lambda: Doctor.objects.get(user__email="doctor@test.com").pk)
    token = post_json(f"{server.url}/api/auth/token/", {"email": "doctor@test.com", "password": "password123"})[
        "access"
    ]
    sockets = [await connect(f"{server.ws_url}?board=demo-board") for _ in range(boards)]
    for ws in sockets:
        assert json.loads(await ws.recv())["type"] == "ready"
        for _ in range(2):  # the two demo doctors' queues
            await ws.recv()
    delays = []
    for n in range(1, changes + 1):
        number = 100 + n
        started = time.perf_counter()
        await asyncio.to_thread(post_json, f"{server.url}/api/queues/{doctor_id}/", {"current_queue": number}, token)

        async def arrival(ws, number=number, started=started):
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["type"] == "queue_updated" and frame["data"]["current_queue"] == number:
                    return time.perf_counter() - started

        delays.extend(await asyncio.gather(*(arrival(ws) for ws in sockets)))
    for ws in sockets:
        await ws.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--boards", type=int, default=50)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    prepare()
    from tests.live import Daphne

    server = Daphne()
    try:
        delays = asyncio.run(measure(server, args.boards, args.changes))
    finally:
        server.stop()
    ms = sorted(d * 1000 for d in delays)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(
        f"{args.boards} board sockets x {args.changes} queue changes over REST ({len(ms)} deliveries): "
        f"median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms "
        "(from the POST being sent to the frame on the board, the POST's own time included)"
    )


if __name__ == "__main__":
    main()
