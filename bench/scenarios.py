"""The four measured scenarios, each against one started server (the app or the floor).

Each `measure_*` gets a `Target` (where the server listens, and its process for CPU and RSS),
the users seeded for it, the socket count and the options; it returns one run's figures. Every
wait has a timeout; the caller bounds the whole scenario too.
"""

import asyncio
import datetime
import itertools
import json
import re
import statistics
import time
from dataclasses import dataclass

from client import HttpClient, SocketPool
from servers import Cluster, Server

CURRENT_QUEUE = re.compile(r'"current_queue":\s*(\d+)')


@dataclass
class Target:
    name: str  # "app" or "floor"
    server: Server | Cluster
    ws_url: str
    http_port: int


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def slot(k: int) -> tuple[str, str]:
    """The k-th distinct (date, time) from tomorrow on: one a minute."""
    day = datetime.date.today() + datetime.timedelta(days=1 + k // 1440)
    return day.isoformat(), f"{(k % 1440) // 60:02d}:{k % 60:02d}"


async def open_pool(target: Target, patients, opts, on_frame=None) -> SocketPool:
    pool = SocketPool(target.ws_url, on_frame)
    # Not a storm (that is `sockets`): a bounded number of handshakes at once, and retries, so the
    # measure runs with N sockets open whenever the server can hold them at all.
    await pool.open_all(
        patients, rate=opts.open_rate, ready_within=opts.open_timeout, in_flight=opts.in_flight, retries=opts.retries
    )
    await asyncio.sleep(opts.settle)  # let the server finish the connects' after-work
    return pool


def pool_figures(pool: SocketPool, requested: int) -> dict:
    return {
        "sockets_requested": requested,
        "sockets_ready": sum(1 for s in pool.socks if s.reader is not None),
        "sockets_open_at_end": len(pool.open_socks),
        "refused": dict(pool.refused),
        "refused_samples": pool.refused_samples,
        "closed_by_server": dict(pool.closed_by_server),
    }


async def measure_latency(target: Target, seeded: dict, n: int, opts) -> dict:
    """N idle sockets; B bookings one at a time; booking request → the patient's socket has it."""
    arrivals: dict[tuple[int, int], float] = {}
    waiters: dict[int, asyncio.Future] = {}

    def on_frame(sock, text, t):
        if '"appointment_updated"' in text:
            key = (sock.user_id, json.loads(text)["data"]["id"])
            arrivals.setdefault(key, t)
            waiter = waiters.get(sock.user_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    pool = await open_pool(target, seeded["patients"], opts, on_frame)
    http = HttpClient("127.0.0.1", target.http_port)
    doctor_user, doctor_id, doctor_token = seeded["doctors"][0]
    delivered, responded = [], []
    lost = http_errors = 0
    counters = getattr(target.server, "counters", None)  # nodes, nginx and Redis apart (a cluster)
    try:
        cpu0 = target.server.cpu_ms()
        parts0 = counters() if counters else None
        for i in range(opts.bookings):
            candidates = pool.open_socks
            if not candidates:
                break
            sock = candidates[i % len(candidates)]
            date, at = slot(i)
            body = {"doctor": doctor_id, "patient": sock.user_id, "date": date, "time": at}
            t0 = time.perf_counter()
            try:
                status, payload = await http.request("POST", "/api/appointments/", body, doctor_token)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                http_errors += 1
                http.close()
                continue
            responded.append((time.perf_counter() - t0) * 1000)
            if status != 201:
                http_errors += 1
                continue
            key = (sock.user_id, json.loads(payload)["id"])
            deadline = t0 + opts.frame_timeout
            while key not in arrivals and time.perf_counter() < deadline:
                waiters[sock.user_id] = asyncio.get_running_loop().create_future()
                try:
                    await asyncio.wait_for(waiters[sock.user_id], deadline - time.perf_counter())
                except TimeoutError:
                    break
            if key in arrivals:
                delivered.append((arrivals[key] - t0) * 1000)
            else:
                lost += 1
        cpu = target.server.cpu_ms() - cpu0
        parts = {k: v - parts0[k] for k, v in counters().items()} if counters else {}
    finally:
        http.close()
        figures = pool_figures(pool, n)
        pool.abort_all()
    done = len(delivered) + lost
    return {
        **figures,
        "bookings": len(responded),
        "p50_ms": percentile(delivered, 0.5),
        "p99_ms": percentile(delivered, 0.99),
        "response_p50_ms": percentile(responded, 0.5),
        "frames_lost": lost,
        "http_errors": http_errors,
        "cpu_ms_per_booking": cpu / done if done else None,
        # A cluster's parts: nodes_cpu_ms_per_booking, nginx_cpu_ms_…, redis_cpu_ms_…, redis_commands_….
        **{f"{k}_per_booking": v / done for k, v in (parts.items() if done else [])},
    }


async def measure_fanout(target: Target, seeded: dict, n: int, opts) -> dict:
    """N sockets join one doctor's queue; U updates from the doctor's socket; send → last receiver."""
    updates = opts.updates
    seen = {}  # sock index → bytearray of update numbers received
    count = [0] * (updates + 1)
    last = [0.0] * (updates + 1)
    joined = late = sent = 0
    progress = asyncio.Event()

    def on_frame(sock, text, t):
        nonlocal joined, late
        if '"queue_updated"' not in text:
            return
        number = int(CURRENT_QUEUE.search(text).group(1))
        marks = seen.get(sock.index)
        if marks is None:  # the snapshot answering join_queue
            if sent:  # joined after the updates began: not owed any, so not counted
                seen[sock.index] = bytearray()
                late += 1
                return
            seen[sock.index] = bytearray(updates + 1)
            joined += 1
            progress.set()
            return
        if 1 <= number <= updates and marks and not marks[number]:
            marks[number] = 1
            count[number] += 1
            last[number] = t
            progress.set()

    doctor_errors: list[str] = []

    def on_doctor_frame(sock, text, t):
        if '"error"' in text:
            doctor_errors.append(text[:200])

    async def wait_for(done, stall: float, limit: float, stamp) -> None:
        """Until done(), or nothing new for `stall` s after stamp(), or `limit` s in all."""
        start = time.perf_counter()
        while not done():
            now = time.perf_counter()
            quiet = now - max(start, stamp())
            if quiet >= stall or now - start >= limit:
                return
            progress.clear()
            try:
                await asyncio.wait_for(progress.wait(), min(stall - quiet, limit - (now - start)))
            except TimeoutError:
                pass

    doctor_user, doctor_id, doctor_token = seeded["doctors"][0]
    pool = await open_pool(target, seeded["patients"], opts, on_frame)
    doctor = SocketPool(target.ws_url, on_doctor_frame)
    latencies, incomplete = [], 0
    cpu = None
    try:
        await doctor.open_all([(doctor_user, doctor_token)], rate=1, ready_within=opts.open_timeout)
        if not doctor.open_socks:
            raise RuntimeError(f"the doctor's socket did not open: {dict(doctor.refused)}")
        join = json.dumps({"type": "join_queue", "data": {"doctor_id": doctor_id}})
        await pool.send_each(lambda sock: join, rate=opts.open_rate)
        ready = len(pool.open_socks)
        # Every join was sent: wait for all their snapshots (bounded), however slowly they come.
        await wait_for(lambda: joined >= ready, opts.open_timeout, opts.open_timeout, lambda: 0.0)
        await asyncio.sleep(opts.settle)
        receivers = joined
        # Frames owed per update: to the joined sockets still open when it is sent (a socket the
        # server closed is counted under closed_by_server, not as lost frames).
        owed = [0] * (updates + 1)
        cpu0 = target.server.cpu_ms()
        next_send = time.perf_counter()
        for number in range(1, updates + 1):
            # The app allows a socket 10 frames a second; both servers get the same pace.
            await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
            frame = {"type": "update_queue", "data": {"doctor_id": doctor_id, "current_queue": number}}
            owed[number] = sum(1 for s in pool.socks if s.open and seen.get(s.index))
            sent = number
            t0 = time.perf_counter()
            next_send = t0 + opts.update_interval
            try:
                await asyncio.wait_for(doctor.socks[0].ws.send(json.dumps(frame)), 5)
            except Exception as exc:
                doctor_errors.append(f"send failed: {exc!r}")
                break
            await wait_for(
                lambda n=number: count[n] >= owed[n], opts.stall, opts.update_timeout, lambda n=number: last[n]
            )
            if count[number] >= owed[number]:
                latencies.append((last[number] - t0) * 1000)
            else:
                incomplete += 1
        cpu = target.server.cpu_ms() - cpu0
        await wait_for(lambda: sum(count) >= sum(owed), opts.stall, opts.drain, lambda: max(last))
        received = sum(count)
    finally:
        figures = pool_figures(pool, n)
        pool.abort_all()
        doctor.abort_all()
    expected = sum(owed)
    return {
        **figures,
        "receivers": receivers,
        "late_joins": late,
        "updates": updates,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "incomplete_updates": incomplete,
        "frames_expected": expected,
        "frames_lost": expected - received,
        "lost_fraction": (expected - received) / expected if expected else None,
        "doctor_errors": len(doctor_errors),
        "doctor_error_samples": doctor_errors[:3],
        "doctor_socket_closed": dict(doctor.closed_by_server),
        "cpu_ms_per_update": cpu / updates if cpu is not None else None,
    }


async def measure_sockets(target: Target, seeded: dict, n: int, opts) -> dict:
    """A storm of N idle sockets at --open-rate, held for --hold s: who stays, who is refused or closed."""
    server = target.server
    await asyncio.sleep(opts.settle)
    rss0, cpu0 = server.rss_kib(), server.cpu_ms()
    counters = getattr(server, "counters", None)  # a cluster: nodes, nginx, PostgreSQL, Redis apart
    connect0 = await asyncio.to_thread(counters) if counters else None
    pool = SocketPool(target.ws_url)
    try:
        await pool.open_all(seeded["patients"], rate=opts.open_rate, ready_within=opts.open_timeout)
        cpu_open = server.cpu_ms() - cpu0
        opened = sum(1 for s in pool.socks if s.reader is not None)
        connect = {}
        if counters and opened:
            connect1 = await asyncio.to_thread(counters)
            connect = {f"connect_{k}_per_socket": (v - connect0[k]) / opened for k, v in connect1.items()}
        # Until every attempt had its answer (ready or refused); and until the last one was ready.
        time_to_open = pool.last_settled - pool.first_attempt
        time_to_last_ready = (pool.last_ready - pool.first_attempt) if pool.last_ready else None
        hold_start = time.perf_counter()
        await asyncio.sleep(opts.settle)
        open_then = len(pool.open_socks)
        rss1 = server.rss_kib()
        # What idle sockets cost a cluster while held (heartbeats, pings): nodes, nginx, PostgreSQL, Redis.
        idle0, idle_t0 = (await asyncio.to_thread(counters) if counters else None), time.perf_counter()
        held_cpu0 = server.cpu_ms()
        await asyncio.sleep(max(0.0, opts.hold - (time.perf_counter() - hold_start)))
        # The server's own CPU while the sockets sit idle (pings, presence heartbeats, timers).
        held_cpu = (server.cpu_ms() - held_cpu0) / (time.perf_counter() - idle_t0)
        if counters and open_then:
            idle1, seconds = await asyncio.to_thread(counters), time.perf_counter() - idle_t0
            scale = 1000 / open_then / seconds
            idle = {f"idle_{k}_per_1000_sockets_per_s": (v - idle0[k]) * scale for k, v in idle1.items()}
        else:
            idle = {}
        rss_end = server.rss_kib()
        figures = {**pool_figures(pool, n), **connect, **idle}
        if hasattr(server, "sockets_per_node"):  # the app as nodes behind nginx: where the sockets are
            figures["sockets_per_node"] = await asyncio.to_thread(server.sockets_per_node)
            figures["node_rss_kib"] = [node.rss_kib() for node in server.nodes]
            usage = await asyncio.to_thread(server.redis_usage)  # groups, presence: what Redis holds
            figures["redis_keys"] = usage["keys"]
            figures["redis_kib_per_socket"] = usage["bytes"] / 1024 / open_then if open_then else None
    finally:
        pool.abort_all()
    return {
        **figures,
        "opened": opened,
        "held": figures["sockets_open_at_end"],
        "refused_total": sum(pool.refused.values()),
        "closed_by_server_total": sum(pool.closed_by_server.values()),
        "time_to_open_s": time_to_open,
        "time_to_last_ready_s": time_to_last_ready,
        "rss_delta_kib": rss1 - rss0,
        "hold_s": opts.hold,
        "rss_before_kib": rss0,
        "rss_open_kib": rss1,
        "rss_end_kib": rss_end,
        "kib_per_socket": (rss1 - rss0) / open_then if open_then else None,
        "cpu_ms_per_connect": cpu_open / opened if opened else None,
        "idle_cpu_ms_per_s": held_cpu,
    }


async def measure_throughput(target: Target, seeded: dict, n: int, opts) -> dict:
    """Bookings a second at p99 ≤ the limit, stepping up concurrent keep-alive clients, with N sockets open."""
    pushed = [0]

    def on_frame(sock, text, t):
        pushed[0] += 1

    pool = await open_pool(target, seeded["patients"], opts, on_frame)
    patients = itertools.cycle([s.user_id for s in pool.open_socks] or [p for p, _ in seeded["patients"]])
    slots = [0] * len(seeded["doctors"])
    steps = []
    try:
        for concurrency in opts.concurrency:
            if concurrency > len(seeded["doctors"]):
                break
            latencies: list[float] = []
            errors = [0]
            stop_at = time.perf_counter() + opts.step_seconds

            async def worker(w: int, latencies=latencies, errors=errors, stop_at=stop_at):
                _user, doctor_id, token = seeded["doctors"][w]
                http = HttpClient("127.0.0.1", target.http_port)
                try:
                    while time.perf_counter() < stop_at:
                        date, at = slot(slots[w])
                        slots[w] += 1
                        body = {"doctor": doctor_id, "patient": next(patients), "date": date, "time": at}
                        t0 = time.perf_counter()
                        try:
                            status, _ = await http.request("POST", "/api/appointments/", body, token)
                        except (OSError, TimeoutError, asyncio.IncompleteReadError):
                            status = 0
                            http.close()
                        if status == 201:
                            latencies.append((time.perf_counter() - t0) * 1000)
                        else:
                            errors[0] += 1
                finally:
                    http.close()

            counters = getattr(target.server, "counters", None)
            parts0 = counters() if counters else None
            cpu0, t0 = target.server.cpu_ms(), time.perf_counter()
            await asyncio.gather(*(worker(w) for w in range(concurrency)))
            elapsed, cpu = time.perf_counter() - t0, target.server.cpu_ms() - cpu0
            parts = {k: v - parts0[k] for k, v in counters().items()} if counters else {}
            p99 = percentile(latencies, 0.99)
            steps.append(
                {
                    "concurrency": concurrency,
                    "bookings": len(latencies),
                    "errors": errors[0],
                    "rate_per_s": len(latencies) / elapsed,
                    "p50_ms": percentile(latencies, 0.5),
                    "p99_ms": p99,
                    "cpu_ms_per_booking": cpu / len(latencies) if latencies else None,
                    **{f"{k}_per_booking": v / len(latencies) for k, v in (parts.items() if latencies else [])},
                }
            )
            if p99 is None or p99 > opts.p99_limit_ms or errors[0] > len(latencies):
                break
    finally:
        figures = pool_figures(pool, n)
        pool.abort_all()
    held = [s for s in steps if s["p99_ms"] is not None and s["p99_ms"] <= opts.p99_limit_ms]
    best = max(held, key=lambda s: s["rate_per_s"]) if held else None
    peak = max(steps, key=lambda s: s["rate_per_s"]) if steps else None  # whatever its p99
    return {
        **figures,
        "peak_rate_per_s": peak["rate_per_s"] if peak else None,
        "peak_p99_ms": peak["p99_ms"] if peak else None,
        "best_rate_per_s": best["rate_per_s"] if best else 0.0,
        "best_concurrency": best["concurrency"] if best else None,
        "best_p99_ms": best["p99_ms"] if best else None,
        "cpu_ms_per_booking": best["cpu_ms_per_booking"] if best else None,
        "frames_pushed_to_patients": pushed[0],
        "steps": steps,
    }


SCENARIOS = {
    "latency": measure_latency,
    "fanout": measure_fanout,
    "sockets": measure_sockets,
    "throughput": measure_throughput,
}

# The figures each scenario plots and compares (app / floor).
# With --nodes, a booking's CPU split among the nodes, nginx, PostgreSQL's backends and Redis.
CLUSTER_PARTS = [
    "nodes_cpu_ms_per_booking",
    "nginx_cpu_ms_per_booking",
    "pg_backends_cpu_ms_per_booking",
    "redis_cpu_ms_per_booking",
    "redis_commands_per_booking",
]
FIGURES = {
    "latency": ["p50_ms", "p99_ms", "cpu_ms_per_booking", "frames_lost", "response_p50_ms", *CLUSTER_PARTS],
    "fanout": ["p50_ms", "p99_ms", "cpu_ms_per_update", "frames_lost", "incomplete_updates"],
    "sockets": [
        "held",
        "refused_total",
        "closed_by_server_total",
        "time_to_open_s",
        "kib_per_socket",
        "cpu_ms_per_connect",
        "redis_kib_per_socket",
        "idle_nodes_cpu_ms_per_1000_sockets_per_s",
        "idle_redis_cpu_ms_per_1000_sockets_per_s",
        "idle_redis_commands_per_1000_sockets_per_s",
    ],
    "throughput": ["best_rate_per_s", "best_p99_ms", "cpu_ms_per_booking", "peak_rate_per_s", "peak_p99_ms"],
}


def median_or_none(values):
    values = [v for v in values if isinstance(v, int | float)]
    return statistics.median(values) if values else None
