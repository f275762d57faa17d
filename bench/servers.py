"""What the bench stands up and always takes down: scratch databases, servers, Redis keys.

The app is started exactly as `make run` starts daphne (the command is read from the Makefile's
`run` recipe with `make -n`), pinned to its own core, with a deployment's settings. The floor
(`bench/floor.py`) is started the same way. Every server is stopped (its process group), every
scratch database dropped and every Redis key of the run's prefix deleted, also on errors and
Ctrl-C (atexit).
"""

import atexit
import collections
import contextlib
import os
import re
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "bench" / "results" / "logs"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Server log lines worth reporting: errors, tracebacks' last lines, and daphne killing stuck instances.
PROBLEM = re.compile(r"ERROR|WARNING|CRITICAL|Exception|Error:|took too long|[Kk]illed|Traceback")

_live_servers: list["Server"] = []
_live_databases: list[tuple[str, str]] = []  # (admin url, name)
_redis_prefixes: list[tuple[str, str]] = []  # (redis url, prefix)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_open_files() -> int:
    """Lift this process's open-file limit to the hard limit; returns it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def makefile_daphne_command(port: int) -> list[str]:
    """daphne's command line from the Makefile's `run` recipe (its flags as they are today)."""
    out = subprocess.run(
        ["make", "-s", "-n", "-o", "migrate", "run", "HOST=127.0.0.1", f"PORT={port}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for line in out.replace("\\\n", " ").splitlines():
        # The recipe may run other commands before daphne (the task worker, `&`; a trap, `;`).
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token.strip(";&|"):
                command.append(token)
                continue
            words, command = command, []
            while words and "=" in words[0] and not words[0].startswith("-"):
                words.pop(0)  # the recipe's environment (its local key file, LOCAL_HTTP): the bench sets its own
            if words[1:3] == ["-m", "mediconnect.server"]:  # daphne with our server class
                words[0] = str(ROOT / words[0])  # not resolved: a venv's python is a link out of the venv
                return words
    raise RuntimeError(f"no daphne command in `make -n run`:\n{out}")


def cpu_ms(pid: int) -> float:
    """utime + stime of the whole process (all threads), in ms."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The process's direct children (nginx's workers under its master)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Server:
    """A server process in its own session, on `cpu`, with a raised open-file limit; output to a log."""

    def __init__(self, name: str, command: list[str], env: dict, http_port: int, ws_url: str, *, cpu: int):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name, self.http_port, self.ws_url = name, http_port, ws_url
        self.log_path = LOGS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.log"
        self.command = ["taskset", "-c", str(cpu), *command]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=raise_open_files,  # `ulimit -n` for the server  # noqa: PLW1509
            )
        _live_servers.append(self)
        self.pid = self.process.pid  # taskset execs the server: same pid
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError), opener.open(url, timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.2)  # polling for the port, bounded by the deadline
        self.stop()
        raise RuntimeError(f"{self.name} did not become healthy in {timeout}s:\n{self.log_tail()}")

    def cpu_ms(self) -> float:
        return cpu_ms(self.pid)

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_summary(self, keep: int = 8) -> dict:
        """How many problem lines the server logged, and the commonest kinds (numbers masked)."""
        kinds: collections.Counter = collections.Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            if PROBLEM.search(line):
                kinds[re.sub(r"\d+", "N", line.strip())[:240]] += 1
        return {
            "log": str(self.log_path.relative_to(ROOT)),
            "problem_lines": sum(kinds.values()),
            "commonest": [{"count": c, "line": line} for line, c in kinds.most_common(keep)],
        }

    def stop(self) -> None:
        if self in _live_servers:
            _live_servers.remove(self)
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class Scratch:
    """A migrated template database, and fresh copies of it, one per server started."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.admin_url = f"{self.base_url}/postgres"
        self.template = f"mcbench_{os.getpid()}"
        self._count = 0

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def create_template(self, env: dict) -> None:
        self._admin(f'CREATE DATABASE "{self.template}"')
        _live_databases.append((self.admin_url, self.template))
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env={**env, "DATABASE_URL": self.url(self.template)},
            check=True,
            timeout=600,
        )

    def clone(self) -> str:
        self._count += 1
        name = f"{self.template}_{self._count}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        _live_databases.append((self.admin_url, name))
        return name

    def drop(self, name: str) -> None:
        drop_database(self.admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with contextlib.suppress(ValueError):
        _live_databases.remove((admin_url, name))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_redis_prefix(redis_url: str) -> str:
    prefix = f"mcbench{os.getpid()}x{uuid.uuid4().hex[:8]}"
    _redis_prefixes.append((redis_url, prefix))
    return prefix


def delete_redis_keys(redis_url: str, prefix: str) -> int:
    with contextlib.suppress(ValueError):
        _redis_prefixes.remove((redis_url, prefix))
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    deleted = 0
    try:
        batch = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.delete(*batch)
                batch.clear()
        if batch:
            deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted


@atexit.register
def cleanup() -> None:
    for server in list(_live_servers):
        with contextlib.suppress(Exception):
            server.stop()
    for admin_url, name in list(reversed(_live_databases)):
        with contextlib.suppress(Exception):
            drop_database(admin_url, name)
    for redis_url, prefix in list(_redis_prefixes):
        with contextlib.suppress(Exception):
            delete_redis_keys(redis_url, prefix)


def exit_on_signals() -> None:
    """SIGTERM/SIGHUP end the bench like Ctrl-C does, so `finally` blocks and atexit run."""

    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


class Cluster:
    """`nodes` app servers behind nginx as `make run-cluster` runs them (deploy/cluster.py renders its
    configuration); used by the scenarios like one `Server`: CPU and RSS are the sums over the nodes
    and nginx (master and workers), and `sockets_per_node` reads each node's /metrics gauge."""

    def __init__(self, nodes: list[Server], nginx_config: Path, *, nginx_cpu: int, env: dict):
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from deploy import cluster

        self.nodes = nodes
        self.http_port = free_port()
        self.ws_url = f"ws://127.0.0.1:{self.http_port}/ws/"
        config = cluster.write_nginx_config(
            nginx_config,
            node_ports=[node.http_port for node in nodes],
            listen=f"127.0.0.1:{self.http_port}",
            static_root=ROOT / "staticfiles",
        )
        command = cluster.nginx_command(cluster.find_nginx(), config)
        self.nginx = Server("nginx", command, env, self.http_port, self.ws_url, cpu=nginx_cpu)
        self.name = f"app x{len(nodes)} behind nginx"

    @property
    def processes(self) -> list[int]:
        return [*(node.pid for node in self.nodes), self.nginx.pid, *children(self.nginx.pid)]

    def cpu_ms(self) -> float:
        return sum(cpu_ms(pid) for pid in self.processes)

    def node_cpu_ms(self) -> list[float]:
        return [node.cpu_ms() for node in self.nodes]

    def rss_kib(self) -> int:
        return sum(rss_kib(pid) for pid in self.processes)

    def alive(self) -> bool:
        return all(server.alive() for server in [*self.nodes, self.nginx])

    def sockets_per_node(self) -> list[int]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        counts = []
        for node in self.nodes:
            with opener.open(f"http://127.0.0.1:{node.http_port}/metrics", timeout=10) as answer:
                text = answer.read().decode()
            counts.append(int(float(re.search(r"^mediconnect_ws_connections (\S+)$", text, re.MULTILINE).group(1))))
        return counts

    redis: tuple[str, str] | None = None  # (url, key prefix) of the nodes' layer and presence

    def redis_usage(self) -> dict:
        """The keys of the nodes' prefix in Redis and the bytes they take (MEMORY USAGE of each)."""
        url, prefix = self.redis
        client = redis.Redis.from_url(url, socket_timeout=10)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.memory_usage(key, samples=0)
            return {"keys": len(keys), "bytes": sum(size or 0 for size in pipe.execute())}
        finally:
            client.close()

    def counters(self) -> dict:
        """CPU ms of the nodes and of nginx, and Redis's CPU ms and commands served (the whole Redis
        server's: meaningful with --private-redis only)."""
        url, _prefix = self.redis
        client = redis.Redis.from_url(url, socket_timeout=10)
        try:
            cpu, stats = client.info("cpu"), client.info("commandstats")
        finally:
            client.close()
        return {
            **self._database_counters(),
            "nodes_cpu_ms": sum(self.node_cpu_ms()),
            "nginx_cpu_ms": sum(cpu_ms(pid) for pid in [self.nginx.pid, *children(self.nginx.pid)]),
            "redis_cpu_ms": (cpu["used_cpu_user"] + cpu["used_cpu_sys"]) * 1000,
            "redis_commands": sum(v["calls"] for v in stats.values()),
        }

    database_url: str | None = None  # the scratch database the nodes use (theirs alone)

    def _database_counters(self) -> dict:
        """The nodes' database: transactions and rows written (pg_stat_database, which lags by up to
        half a second: PostgreSQL flushes its statistics that often), and the CPU of the server
        processes serving the nodes' connections (the pools' connections live through the measure)."""
        if not self.database_url:
            return {}
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT pg_stat_force_next_flush()")
            xacts, rows = conn.execute(
                "SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted "
                "FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
            pids = [
                pid
                for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
        backend_ms = 0.0
        for pid in pids:
            with contextlib.suppress(OSError):
                backend_ms += cpu_ms(pid)
        return {"pg_transactions": xacts, "pg_rows_written": rows, "pg_backends_cpu_ms": backend_ms}

    def log_summary(self) -> dict:
        return {server.name: server.log_summary() for server in [*self.nodes, self.nginx]}

    def stop(self) -> None:
        for server in [self.nginx, *self.nodes]:
            server.stop()


class PrivateRedis:
    """A redis-server of the bench's own on a free port and core, without persistence: its CPU and
    command counts are the app's alone (the machine's Redis is shared)."""

    def __init__(self, *, cpu: int):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        command = ["taskset", "-c", str(cpu), "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--maxclients", "20000"]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_open_files,  # noqa: PLW1509
        )
        atexit.register(self.stop)
        client = redis.Redis.from_url(self.url, socket_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.1)  # polling for the port, bounded by the deadline
        client.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
