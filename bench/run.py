"""MediConnect at clinic scale: one command per figure, the app against a floor measured in the same run.

    .venv/bin/python bench/run.py latency|fanout|sockets|throughput|all [options]

Each scenario runs at every socket count (--sockets), --runs times, against the app (daphne as
`make run` starts it, DEBUG off, PostgreSQL, Redis layer --layer) and the floor (bench/floor.py),
each on a fresh copy of a migrated scratch database. The server gets core --server-cpu, this
process (the load) core --load-cpu. Results: docs/bench/<scenario>-<layer>.json and .png; the
medians and the app/floor ratios are printed too. See bench/README.md.
"""

import argparse
import asyncio
import datetime
import json
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import seed  # noqa: E402
from scenarios import FIGURES, SCENARIOS, Target  # noqa: E402
from servers import (  # noqa: E402
    LOGS,
    ROOT,
    Cluster,
    PrivateRedis,
    Scratch,
    Server,
    delete_redis_keys,
    exit_on_signals,
    free_port,
    makefile_daphne_command,
    new_redis_prefix,
    raise_open_files,
)


def numbers(text: str, kind=int) -> list:
    return [kind(x) for x in text.split(",") if x.strip()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", nargs="?", default="all", choices=[*SCENARIOS, "all"])
    parser.add_argument(
        "--sockets", type=numbers, default=[100, 1000, 5000, 10000], help="socket counts, e.g. 100,1000"
    )
    parser.add_argument("--runs", type=int, default=3, help="repeats of each measure; medians are reported")
    parser.add_argument("--layer", choices=["core", "pubsub"], default="core", help="the app's channels_redis layer")
    parser.add_argument("--targets", default="app,floor", help="which servers to measure (default both)")
    parser.add_argument("--hold", type=float, default=20, help="sockets: seconds to hold the sockets open")
    parser.add_argument("--bookings", type=int, default=100, help="latency: bookings timed per run")
    parser.add_argument("--updates", type=int, default=50, help="fanout: queue updates per run")
    parser.add_argument("--open-rate", type=float, default=500, help="sockets (and joins) started per second")
    parser.add_argument("--in-flight", type=int, default=50, help="handshakes at once, but in `sockets`")
    parser.add_argument("--retries", type=int, default=2, help="retries of refused sockets, but in `sockets`")
    parser.add_argument("--open-timeout", type=float, default=60, help="seconds a socket may take to be ready")
    parser.add_argument("--settle", type=float, default=2, help="seconds to wait after opening sockets")
    parser.add_argument("--frame-timeout", type=float, default=10, help="latency: seconds to wait for a frame")
    parser.add_argument("--update-interval", type=float, default=0.11, help="fanout: least seconds between updates")
    parser.add_argument("--update-timeout", type=float, default=30, help="fanout: most seconds to wait per update")
    parser.add_argument("--stall", type=float, default=2, help="fanout: give up on an update after this quiet time")
    parser.add_argument("--drain", type=float, default=10, help="fanout: most seconds to wait for late frames")
    parser.add_argument("--concurrency", type=numbers, default=[1, 2, 4, 8, 16, 32], help="throughput: client steps")
    parser.add_argument("--step-seconds", type=float, default=5, help="throughput: seconds per step")
    parser.add_argument("--p99-limit-ms", type=float, default=100, help="throughput: the p99 a rate must hold")
    parser.add_argument("--max-seconds", type=float, default=900, help="most seconds for one measure")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432", help="server, no db name")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=0, help="the app as N daphne nodes behind nginx (0: alone)")
    parser.add_argument("--node-cpus", type=numbers, default=None, help="the nodes' cores, in turn (default: server's)")
    parser.add_argument("--private-redis", action="store_true", help="a redis-server of our own (on --load-cpu)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--no-plots", action="store_true")
    return parser.parse_args(argv)


def start_cluster(env: dict, opts) -> Cluster:
    """--nodes daphne processes as `make run-cluster` starts them, behind nginx on the server's core."""
    nodes = []
    cpus = opts.node_cpus or [opts.server_cpu]
    env = {**env, "TRUSTED_PROXIES": "127.0.0.1"}  # nginx forwards every request
    try:
        for i in range(opts.nodes):
            port, cpu = free_port(), cpus[i % len(cpus)]
            url = f"ws://127.0.0.1:{port}/ws/"
            nodes.append(Server(f"app-node{i + 1}", makefile_daphne_command(port), env, port, url, cpu=cpu))
        runtime = LOGS.parent / f"nginx-{os.getpid()}-{secrets.token_hex(3)}"
        return Cluster(nodes, runtime, nginx_cpu=opts.server_cpu, env=env)
    except BaseException:
        for node in nodes:
            node.stop()
        raise


def start_server(target: str, database_url: str, base_env: dict, opts) -> tuple[Target, str | None]:
    if target == "app" and opts.nodes:
        prefix = new_redis_prefix(opts.redis_url)
        cluster = start_cluster({**base_env, "DATABASE_URL": database_url, "CHANNEL_LAYER_PREFIX": prefix}, opts)
        cluster.redis, cluster.database_url = (opts.redis_url, prefix), database_url
        return Target("app", cluster, cluster.ws_url, cluster.http_port), prefix
    if target == "app":
        port = free_port()
        prefix = new_redis_prefix(opts.redis_url)
        env = {**base_env, "DATABASE_URL": database_url, "CHANNEL_LAYER_PREFIX": prefix}
        server = Server(
            "app", makefile_daphne_command(port), env, port, f"ws://127.0.0.1:{port}/ws/", cpu=opts.server_cpu
        )
        return Target("app", server, server.ws_url, port), prefix
    ws_port, http_port = free_port(), free_port()
    while http_port == ws_port:
        http_port = free_port()
    command = [sys.executable, "bench/floor.py", "--ws-port", str(ws_port), "--http-port", str(http_port)]
    command += ["--database-url", database_url]
    server = Server("floor", command, base_env, http_port, f"ws://127.0.0.1:{ws_port}/ws/", cpu=opts.server_cpu)
    return Target("floor", server, server.ws_url, http_port), None


def measure_once(scenario: str, target: str, n: int, scratch: Scratch, base_env: dict, opts) -> dict:
    """One fresh database, one server, one measure; always cleaned up."""
    started = time.monotonic()
    name = scratch.clone()
    server = prefix = None
    figures: dict = {}
    try:
        seed.use_database(name)
        doctors = max(opts.concurrency) if scenario == "throughput" else 1
        seeded = seed.seed(patients=n, doctors=doctors, queue=scenario == "fanout")
        seed.release()
        chosen, prefix = start_server(target, scratch.url(name), base_env, opts)
        server = chosen.server

        async def bounded():
            return await asyncio.wait_for(SCENARIOS[scenario](chosen, seeded, n, opts), opts.max_seconds)

        try:
            figures = asyncio.run(bounded())
        except TimeoutError:
            figures = {"error": f"the measure took more than {opts.max_seconds}s"}
        except Exception as exc:  # a broken measure is reported, and the others still run
            figures = {"error": repr(exc)}
        figures["server_alive_at_end"] = server.alive()
        if server.alive():
            figures["server_rss_end_kib"] = server.rss_kib()
    finally:
        if server is not None:
            server.stop()
            figures["server_log"] = server.log_summary()
        seed.release()
        scratch.drop(name)
        if prefix:
            delete_redis_keys(opts.redis_url, prefix)
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def brief(figures: dict, keys: list[str]) -> str:
    parts = []
    for key in [*keys, "refused", "closed_by_server", "error"]:
        value = figures.get(key)
        if value in (None, {}, []):
            continue
        parts.append(f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def main(argv=None) -> None:
    opts = parse_args(argv)
    exit_on_signals()
    os.sched_setaffinity(0, {opts.load_cpu})
    limit = raise_open_files()
    if opts.private_redis:
        opts.redis_url = PrivateRedis(cpu=opts.load_cpu).url
    if limit < max(opts.sockets) + 1000:
        print(f"warning: open-file limit {limit} is below {max(opts.sockets)} sockets", file=sys.stderr)
    scenarios = list(SCENARIOS) if opts.scenario == "all" else [opts.scenario]
    targets = [t for t in opts.targets.split(",") if t]

    base_env = {
        **{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "LOCAL_HTTP": "true",  # plain HTTP on loopback, as `make run`
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ACCESS_TOKEN_MINUTES": "720",
        "REDIS_URL": opts.redis_url,
        "CHANNEL_LAYER": opts.layer,
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
    }
    scratch = Scratch(opts.database_url)
    print(f"migrating the template database {scratch.template} …", flush=True)
    scratch.create_template(base_env)
    seed.setup_django({**base_env, "DATABASE_URL": scratch.url(scratch.template)})

    params = {
        k: v for k, v in vars(opts).items() if k not in ("out", "database_url", "redis_url", "no_plots", "scenario")
    }
    params["daphne_command"] = makefile_daphne_command(8000)[1:]
    for scenario in scenarios:
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        machine = report.machine()
        runs: dict = {t: {n: [] for n in opts.sockets} for t in targets}
        for run in range(opts.runs):  # targets interleaved within each run, so drift hits both alike
            for n in opts.sockets:
                for target in targets:
                    figures = measure_once(scenario, target, n, scratch, base_env, opts)
                    runs[target][n].append(figures)
                    print(
                        f"{scenario} run {run + 1} {target:5s} N={n}: {brief(figures, FIGURES[scenario])}", flush=True
                    )
                    suffix = f"-nodes{opts.nodes}" if opts.nodes else ""
                    path = report.write(opts.out, scenario, opts.layer, params, runs, started, machine, suffix=suffix)
        print(json.dumps(report.summarize(scenario, runs), indent=1, default=str), flush=True)
        print(f"wrote {path}", flush=True)
        if not opts.no_plots:
            print(f"wrote {report.plot(path)}", flush=True)


if __name__ == "__main__":
    main()
