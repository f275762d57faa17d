r"""`make run-cluster`: NODES daphne processes behind a user-level nginx, started and stopped together.

    python deploy/cluster.py [--nodes 2] [--port 8000] [--base-port 8001]   # run (after migrate etc.)
    python deploy/cluster.py check                                          # DATABASE_URL, REDIS_URL set?
    python deploy/cluster.py site --nodes 4 --server-name clinic.example --tls-cert fullchain.pem \
        --tls-key privkey.pem --files-root /var/lib/mediconnect/files \
        > /etc/nginx/sites-available/mediconnect                         # a server's nginx site

Every node is daphne as `make run` starts it (the Makefile hands over its flags), on 127.0.0.1 and
its own port from --base-port on, sharing the PostgreSQL of DATABASE_URL and the Redis of
REDIS_URL. nginx listens on --host:--port, balances over the nodes round robin and serves the
collected static files (deploy/nginx/). Its configuration, pid, temporary files and log live in
the runtime directory (--runtime, `.cluster/`), so no system file is read or written but Debian's
mime.types. Extra commands (the task worker, …) listed in WORKERS below or in the WORKERS
environment variable (`;` between commands) run beside the nodes. With CLUSTER_TURN=1 a coturn
runs beside them too (the video visits' TURN and STUN server; `turn_config` below), and the nodes
hand out its credentials.

Once the cluster is up, the launcher supervises it: a node, a worker or nginx that exits by itself
is started again, after 0.5 s doubling to 10 s for a process that keeps failing (the delay starts
over once it has run 30 s), and the others serve meanwhile; each exit and return is logged. Each
process's pid is in the runtime directory (`node1.pid`, …; `coturn.pid`). Only Ctrl-C (or SIGTERM) stops
everything: the nodes first (they close their sockets with 1012 so the clients move on), then
nginx and the workers. A node that does not come up at the start stops the launcher with an error.
"""

import argparse
import contextlib
import dataclasses
import grp
import ipaddress
import os
import pwd
import resource
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "deploy" / "nginx"
DEFAULT_RUNTIME = ROOT / ".cluster"
LISTEN_BACKLOG = 1024

# Long-running commands started beside the nodes, with their environment, from the project's
# directory, and stopped with them (SIGTERM): the task worker (reminders, offline email and SMS).
# Workers claim their rows in the database, so any number may run (WORKERS adds more).
WORKERS: list[list[str]] = [[sys.executable, "manage.py", "run_worker"]]

# A process that exits by itself is started again after FIRST_DELAY seconds, twice as long after each
# exit in a row up to MAX_DELAY (a crash loop neither spins nor gives up); one that ran STABLE_SECONDS
# before it exited starts over at FIRST_DELAY.
FIRST_DELAY = 0.5
MAX_DELAY = 10.0
STABLE_SECONDS = 30.0

# Clinical documents (docs/documents.md). The node's own bound on an upload's body is FILE_MAX_BYTES
# plus documents.uploads.FORM_ALLOWANCE (this script runs without Django: a test keeps them equal);
# nginx refuses a longer body with the same 413. Downloads leave through X-Accel-Redirect to an
# internal location over FILES_ROOT (the settings' defaults, when the environment names none).
FILE_MAX_BYTES = 10 * 1024 * 1024
FORM_ALLOWANCE = 64 * 1024
FILES_X_ACCEL_PREFIX = "/protected-files/"
DEFAULT_FILES_ROOT = ROOT / "private-media"


class Template(string.Template):
    """`@{name}` fields, so that nginx's own `$variables` pass through untouched."""

    delimiter = "@"


def render(name: str, **values) -> str:
    return Template((TEMPLATES / name).read_text()).substitute(**values)


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def _mime_types() -> str:
    debian = Path("/etc/nginx/mime.types")
    if debian.exists():
        return f"    include {debian};"
    # nginx from elsewhere: the types this site serves.
    types = {
        "text/html": "html",
        "text/css": "css",
        "text/javascript": "js mjs",
        "application/json": "json map",
        "image/svg+xml": "svg",
        "image/png": "png",
        "image/x-icon": "ico",
        "font/woff2": "woff2",
        "text/plain": "txt",
    }
    lines = "\n".join(f"        {kind} {exts};" for kind, exts in types.items())
    return f"    types {{\n{lines}\n    }}"


def _open_files() -> int:
    """The connections (and open files) of each nginx worker: as many as this process may open, at
    most 65,536 (32,768 sockets a worker). Raise `ulimit -n` (the hard limit) for more."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 65536 if hard == resource.RLIM_INFINITY else max(1024, min(hard, 65536))


def _worker_user() -> str:
    """Run as root, nginx hands its workers to another account: `nobody`, with its own group (nginx's
    default group name `nobody` does not exist on Debian). Run as a user, this does not apply."""
    if os.geteuid() != 0:
        return ""
    nobody = pwd.getpwnam("nobody")
    return f"user nobody {grp.getgrgid(nobody.pw_gid).gr_name};"


# TLS ends at nginx (wss:// and https:// for the browser, plain HTTP over the loopback to the nodes,
# which learn the scheme from X-Forwarded-Proto): Mozilla's "intermediate" choice of protocols.
TLS = """    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers off;
    ssl_session_cache shared:mediconnect_tls:10m;
    ssl_session_timeout 1d;
    ssl_session_tickets off;
"""
# Plain HTTP only redirects to HTTPS (Django's HSTS header then keeps browsers on https://).
REDIRECT = """server {{
    listen 80;
    listen [::]:80;
    server_name {server_name};
    server_tokens off;
    return 301 https://$host$request_uri;
}}
"""


def files_root_from_env(env=os.environ) -> Path:
    return Path(env.get("FILES_ROOT") or DEFAULT_FILES_ROOT).resolve()


def file_max_bytes_from_env() -> int:
    return int(os.environ.get("FILE_MAX_BYTES") or FILE_MAX_BYTES)


def site_config(
    *,
    node_ports: list[int],
    listen: str,
    static_root: Path,
    files_root: Path | None = None,
    file_max_bytes: int | None = None,
    server_name: str = "_",
    tls_cert: str | None = None,
    tls_key: str | None = None,
    redirect_http: bool = False,
) -> str:
    """The site: the nodes' upstream and the server. With a certificate and key, it listens with TLS
    on `listen` (e.g. `443 ssl`), and with `redirect_http` answers plain HTTP on port 80 with a redirect.
    `files_root` and `file_max_bytes` default to FILES_ROOT and FILE_MAX_BYTES of the environment."""
    files_root = Path(files_root).resolve() if files_root else files_root_from_env()
    file_max_bytes = file_max_bytes or file_max_bytes_from_env()
    servers = "\n".join(f"    server 127.0.0.1:{port} max_fails=0;" for port in node_ports)
    tls = TLS.format(cert=tls_cert, key=tls_key) if tls_cert and tls_key else ""
    return render(
        "mediconnect.conf.template",
        servers=servers,
        listen=listen,
        server_name=server_name,
        static_root=str(Path(static_root).resolve()),
        files_root=str(files_root),
        file_max_bytes=str(file_max_bytes),
        upload_body_max=str(file_max_bytes + FORM_ALLOWANCE),
        tls=tls,
        redirect=REDIRECT.format(server_name=server_name) if tls and redirect_http else "",
    )


def write_nginx_config(
    runtime: Path,
    *,
    node_ports: list[int],
    listen: str,
    static_root: Path,
    files_root: Path | None = None,
    file_max_bytes: int | None = None,
    workers: int | str = 1,
    access_log: bool = False,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> Path:
    """The user-level nginx's main file and its site under `runtime` (with TLS when given a
    certificate and key: `listen` then says `ssl`); returns the main file."""
    runtime = Path(runtime).resolve()
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (runtime / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    (runtime / "logs").mkdir(exist_ok=True)  # nginx opens its compiled-in log path under -p before the config's
    if os.geteuid() == 0:  # the workers (nobody) must reach the static files and their temporary files
        runtime.chmod(0o755)
    (runtime / "mediconnect.conf").write_text(
        site_config(
            node_ports=node_ports,
            listen=listen,
            static_root=static_root,
            files_root=files_root,
            file_max_bytes=file_max_bytes,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
    )
    main = runtime / "nginx.conf"
    main.write_text(
        render(
            "nginx.conf.template",
            user=_worker_user(),
            workers=str(workers),
            open_files=str(_open_files()),
            runtime=str(runtime),
            error_log=str(runtime / "error.log"),
            log_level="warn",
            mime_types=_mime_types(),
            access_log=str(runtime / "access.log") if access_log else "off",
        )
    )
    return main


def share_files_with_nginx(files_root: Path) -> dict[str, str]:
    """Run as root, nginx's workers are `nobody` and must read what the nodes (root) store: FILES_ROOT
    goes to nobody's group, setgid so that what is made in it later does too, and the nodes are told
    to make files group-readable (the environment to add is returned). Run as a user, nginx's workers
    are that user and the owner-only modes stand."""
    if os.geteuid() != 0:
        return {}
    group = pwd.getpwnam("nobody").pw_gid
    files_root.mkdir(parents=True, exist_ok=True)
    for path in [files_root, *files_root.rglob("*")]:  # what an earlier run stored, too
        os.chown(path, -1, group)
        path.chmod(0o2750 if path.is_dir() else 0o640)
    return {"FILES_GROUP_READABLE": "true"}


def files_env(env: dict) -> dict[str, str]:
    """The nodes' settings for nginx's part in the documents: X-Accel-Redirect to the internal location
    over FILES_ROOT. With S3 (FILES_STORAGE=s3) the bytes are not on this machine: the nodes stream them."""
    if env.get("FILES_STORAGE", "filesystem") == "s3":
        return {}
    return {"FILES_X_ACCEL_PREFIX": FILES_X_ACCEL_PREFIX, **share_files_with_nginx(files_root_from_env(env))}


def nginx_command(nginx: str, config: Path) -> list[str]:
    """nginx in the foreground with `config`, its prefix the config's directory."""
    prefix = config.parent
    return [nginx, "-p", f"{prefix}/", "-c", str(config), "-e", str(prefix / "error.log"), "-g", "daemon off;"]


def check_nginx_config(nginx: str, config: Path) -> None:
    result = subprocess.run([*nginx_command(nginx, config)[:-2], "-t", "-q"], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"nginx refuses the generated configuration {config}:\n{result.stderr}")


def daphne_command(port: int, daphne_args: list[str]) -> list[str]:
    """daphne with our server class (mediconnect/server/cli.py), as `make run` starts it."""
    endpoint = f"tcp:port={port}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}"
    return [sys.executable, "-m", "mediconnect.server", *daphne_args, "-e", endpoint, "mediconnect.asgi:application"]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A health check reads the answer it gets: a redirect is an answer, not a place to go."""

    def redirect_request(self, *_args, **_kwargs):
        return None


def wait_healthy(url: str, process: subprocess.Popen, *, timeout: float = 60, verify: bool = True) -> None:
    """Until `url` answers 200 (polling the port as it opens), or fail when the process exits or
    answers with a redirect (it would not change its mind). `verify=False` accepts any certificate
    (a test's own)."""
    handlers: list = [urllib.request.ProxyHandler({}), _NoRedirects()]
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {exit_status(process.returncode)} before {url} answered")
        try:
            with opener.open(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                raise RuntimeError(f"{url} answered {exc.code} to {exc.headers.get('Location')}") from None
        except OSError:
            pass  # not listening yet, or not ready: asked again below
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def exit_status(code: int) -> str:
    if code >= 0:
        return f"status {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


# --- coturn (CLUSTER_TURN=1) ----------------------------------------------------------------------

# The video visits' TURN/STUN server beside the nodes: Debian's coturn as a process of the launcher's
# own, its configuration, pid, database and log in the runtime directory (no /etc/turnserver.conf,
# not Debian's service). Its secret is TURN_SECRET, or one generated once into TURN_SECRET_FILE
# (default .turn_secret, gitignored, mode 600) as `make run` keeps its signing key, so credentials
# handed out before a restart still work. It listens on TURN_HOST (default HOST) at TURN_PORT
# (3478) and relays on UDP ports TURN_MIN_PORT..TURN_MAX_PORT (49152..49251); the nodes get
# TURN_URLS, STUN_URLS and TURN_SECRET pointing at it. deploy/coturn.conf is a server's own.
DEFAULT_TURN_SECRET_FILE = ROOT / ".turn_secret"
TURN_PORT, TURN_MIN_PORT, TURN_MAX_PORT = 3478, 49152, 49251


def find_turnserver() -> str | None:
    found = shutil.which("turnserver")
    if found:
        return found
    return "/usr/bin/turnserver" if os.access("/usr/bin/turnserver", os.X_OK) else None


def turn_secret(env: dict) -> str:
    """TURN_SECRET from the environment, else the one in TURN_SECRET_FILE (made there once)."""
    if env.get("TURN_SECRET"):
        return env["TURN_SECRET"]
    path = Path(env.get("TURN_SECRET_FILE") or DEFAULT_TURN_SECRET_FILE)
    if not path.exists():
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        os.replace(path.with_suffix(".tmp"), path)
    return path.read_text().strip()


@dataclasses.dataclass(frozen=True)
class Turn:
    """Where the cluster's coturn listens and relays, and its secret."""

    host: str
    port: int
    min_port: int
    max_port: int
    secret: str

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.host).is_loopback

    def urls(self) -> dict[str, str]:
        """The nodes' settings: TURN over UDP and over TCP (for networks that block UDP), and STUN."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {
            "TURN_URLS": f"turn:{host}:{self.port}?transport=udp,turn:{host}:{self.port}?transport=tcp",
            "STUN_URLS": f"stun:{host}:{self.port}",
            "TURN_SECRET": self.secret,
        }


def turn_from_env(env: dict, *, host: str) -> Turn:
    """The coturn CLUSTER_TURN=1 asks for. Its address must be one the browsers reach (not 0.0.0.0)."""
    address = (env.get("TURN_HOST") or host).strip("[]")
    try:
        unspecified = ipaddress.ip_address(address).is_unspecified
    except ValueError:
        raise SystemExit(
            f"TURN_HOST must be an IP address (coturn listens and relays on it), not {address!r}"
        ) from None
    if unspecified:
        raise SystemExit("CLUSTER_TURN=1 with HOST on every interface: set TURN_HOST to the address browsers reach")
    return Turn(
        host=address,
        port=int(env.get("TURN_PORT") or TURN_PORT),
        min_port=int(env.get("TURN_MIN_PORT") or TURN_MIN_PORT),
        max_port=int(env.get("TURN_MAX_PORT") or TURN_MAX_PORT),
        secret=turn_secret(env),
    )


def write_turn_config(runtime: Path, turn: Turn) -> Path:
    """turnserver.conf in `runtime`, readable by its owner alone (it holds the secret)."""
    runtime = Path(runtime).resolve()
    lines = [
        f"listening-ip={turn.host}",
        f"relay-ip={turn.host}",
        f"listening-port={turn.port}",
        f"min-port={turn.min_port}",
        f"max-port={turn.max_port}",
        "use-auth-secret",
        f"static-auth-secret={turn.secret}",
        "realm=mediconnect.local",
        "fingerprint",
        "no-tls",
        "no-dtls",
        "no-cli",
        "no-rfc5780",
        "no-software-attribute",
        "no-multicast-peers",
        f"pidfile={runtime / 'turnserver.pid'}",
        f"userdb={runtime / 'turnserver.db'}",
        "log-file=stdout",
        "simple-log",
    ]
    if turn.loopback:
        # Only browsers of this machine reach a coturn on the loopback, and their relayed candidates
        # are loopback addresses: without this, coturn refuses to relay between them (403). Never on
        # an address others reach (the relay would open this machine's loopback services to them).
        lines.append("allow-loopback-peers")
    path = runtime / "turnserver.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    path.chmod(0o600)  # an older file keeps its mode through O_CREAT
    return path


def check_turn_port_free(turn: Turn) -> None:
    """coturn on a taken port would not say so, and another STUN server (Debian's coturn service on
    3478) would answer in its place: refuse to start instead."""
    family = socket.AF_INET6 if ":" in turn.host else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as sock:
            try:
                sock.bind((turn.host, turn.port))
            except OSError as exc:
                raise SystemExit(
                    f"TURN_PORT {turn.port} on {turn.host} is taken ({exc.strerror}): another coturn "
                    "(Debian's service?) listens there; set TURN_PORT to a free port"
                ) from None


def stun_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether a STUN Binding request to host:port (UDP) is answered with success within `timeout`."""
    transaction = secrets.token_bytes(12)
    request = (0x0001).to_bytes(2, "big") + bytes(2) + (0x2112A442).to_bytes(4, "big") + transaction
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, (host, port))
            answer = sock.recv(2048)
        except OSError:  # refused (nothing listens yet) or timed out
            return False
    return answer[:2] == (0x0101).to_bytes(2, "big") and answer[8:20] == transaction


def wait_stun(turn: Turn, process: subprocess.Popen, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not stun_answers(turn.host, turn.port):  # each try waits up to 0.5 s for the answer
        if process.poll() is not None:
            raise RuntimeError(f"coturn exited with {exit_status(process.returncode)} before it answered STUN")
        if time.monotonic() > deadline:
            raise RuntimeError(f"coturn did not answer STUN on {turn.host}:{turn.port} within {timeout:.0f} s")


# --- the settings the cluster needs ----------------------------------------------------------------


def read_env_file() -> None:
    """The `.env` the settings read (ENV_FILE, empty for none): the environment still wins."""
    import environ

    env_file = os.environ.get("ENV_FILE", str(ROOT / ".env"))
    if env_file and Path(env_file).exists():
        environ.Env.read_env(env_file, overwrite=False)


def missing_services() -> list[str]:
    """What keeps the nodes from sharing one database and one channel layer, in words."""
    problems = []
    database = os.environ.get("DATABASE_URL", "")
    if not database:
        problems.append(
            "DATABASE_URL is not set: the nodes must share one PostgreSQL, "
            "e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/mediconnect"
        )
    elif not database.startswith(("postgres://", "postgresql://", "pgsql://")):
        problems.append(f"DATABASE_URL must name a PostgreSQL database for a cluster, not {database.split(':')[0]}:")
    if not os.environ.get("REDIS_URL"):
        problems.append(
            "REDIS_URL is not set: the nodes share groups and presence through Redis, "
            "e.g. REDIS_URL=redis://127.0.0.1:6379/0"
        )
    return problems


# --- running it ----------------------------------------------------------------------------------


class Process:
    """One run of a child, in a session of its own (Ctrl-C reaches the launcher, which stops it in
    order); its output is copied to ours, each line prefixed with its name."""

    def __init__(self, name: str, command: list[str], env: dict):
        self.name = name
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._copier = threading.Thread(target=self._copy, daemon=True)
        self._copier.start()

    def _copy(self) -> None:
        for line in self.popen.stdout:
            sys.stdout.write(f"[{self.name}] {line.decode(errors='replace')}")
            sys.stdout.flush()

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)

    def kill_leftovers(self) -> None:
        """Kill what is left of its process group once it is gone: nginx's workers outlive a killed
        master and would keep the port from the next one."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> None:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"{self.name} did not stop within {timeout:.0f} s: killed", flush=True)
            self.popen.kill()
            self.popen.wait()


class Supervised:
    """One of the cluster's processes, started again with backoff whenever it exits by itself. A node
    has a `health_url`: its return is logged once it answers there. Its pid is kept in `pid_file`."""

    def __init__(self, name: str, command: list[str], env: dict, *, runtime: Path, health_url: str | None = None):
        self.name, self.command, self.env, self.health_url = name, command, env, health_url
        self.pid_file = Path(runtime) / f"{name}.pid"
        self.delay = FIRST_DELAY
        self.restart_at: float | None = None
        self.process: Process | None = None

    def start(self) -> Process:
        self.process = Process(self.name, self.command, self.env)
        self.pid_file.write_text(f"{self.process.popen.pid}\n")
        return self.process

    def check(self, now: float) -> None:
        """The supervisor's look at it: start it again when its delay has passed, or notice it exited."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                process = self.start()
                print(f"{self.name} restarted: pid {process.popen.pid}", flush=True)
                if self.health_url:
                    threading.Thread(target=self._announce_return, args=(process,), daemon=True).start()
            return
        if self.process is None or self.process.popen.poll() is None:
            return
        self.process.kill_leftovers()
        ran = now - self.process.started
        if ran >= STABLE_SECONDS:
            self.delay = FIRST_DELAY
        print(
            f"{self.name} (pid {self.process.popen.pid}) exited with {exit_status(self.process.popen.returncode)} "
            f"after {ran:.1f} s: restarting it in {self.delay:g} s",
            flush=True,
        )
        self.restart_at = now + self.delay
        self.delay = min(self.delay * 2, MAX_DELAY)

    def _announce_return(self, process: Process) -> None:
        try:
            wait_healthy(self.health_url, process.popen)
        except RuntimeError as exc:  # it exited again (the supervisor sees to it) or hangs: said here
            print(f"{self.name} (pid {process.popen.pid}) did not come back: {exc}", flush=True)
        else:
            print(f"{self.name} is back: {self.health_url} answers (pid {process.popen.pid})", flush=True)

    def stop(self, signum: int) -> None:
        self.restart_at = None
        if self.process is not None:
            self.process.signal(signum)

    def wait(self, timeout: float) -> None:
        if self.process is not None:
            self.process.wait(timeout)
        self.pid_file.unlink(missing_ok=True)


def worker_commands() -> list[list[str]]:
    """WORKERS below, then the WORKERS variable: shell words, `;` between commands (quoted, a `;`
    belongs to its word)."""
    lexer = shlex.shlex(os.environ.get("WORKERS", ""), posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    listed: list[list[str]] = [[]]
    try:
        for word in lexer:
            if word == ";":
                listed.append([])
            else:
                listed[-1].append(word)
    except ValueError as exc:
        raise SystemExit(f"WORKERS: {exc}") from exc
    return [*WORKERS, *(command for command in listed if command)]


def run(opts) -> int:
    nginx = find_nginx()
    if nginx is None:
        raise SystemExit("nginx is not installed: `make run-cluster` installs Debian's package (apt-get install nginx)")
    node_ports = [opts.base_port + i for i in range(opts.nodes)]
    listen = f"{opts.host}:{opts.port}" if ":" not in opts.host else f"[{opts.host.strip('[]')}]:{opts.port}"
    # One nginx worker per core, each holding up to 65,536 connections, two per socket (client and node).
    config = write_nginx_config(
        opts.runtime, node_ports=node_ports, listen=listen, static_root=opts.static_root, workers="auto"
    )
    check_nginx_config(nginx, config)

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # nginx on this machine forwards every request: its X-Forwarded-For names the client.
    env.setdefault("TRUSTED_PROXIES", "127.0.0.1,::1")
    env.update(files_env(env))
    turn = None
    if env.get("CLUSTER_TURN", "").lower() in {"1", "true", "yes"}:
        turnserver = find_turnserver()
        if turnserver is None:
            raise SystemExit("CLUSTER_TURN=1 needs coturn's turnserver: apt-get install coturn")
        turn = turn_from_env(env, host=opts.host)
        check_turn_port_free(turn)
        env.update(turn.urls())
    daphne_args = shlex.split(opts.daphne_args)
    workers = worker_commands()  # a mistake in WORKERS stops us before anything starts
    runtime = config.parent
    nodes = [
        Supervised(
            f"node{i}",
            daphne_command(port, daphne_args),
            env,
            runtime=runtime,
            health_url=f"http://127.0.0.1:{port}/healthz",
        )
        for i, port in enumerate(node_ports, start=1)
    ]
    others = [Supervised(f"worker{i}", command, env, runtime=runtime) for i, command in enumerate(workers, start=1)]
    front = Supervised("nginx", nginx_command(nginx, config), env, runtime=runtime)
    others.append(front)
    relay = None
    if turn is not None:
        relay = Supervised("coturn", [turnserver, "-c", str(write_turn_config(runtime, turn))], env, runtime=runtime)
        others.append(relay)
    started: list[Supervised] = []
    supervising = False
    stop_requested: list[str] = []

    def stop_all() -> None:
        running_nodes = [child for child in started if child in nodes]
        for child in running_nodes:  # graceful: 1012 to every socket, then exit (mediconnect/server/graceful.py)
            child.stop(signal.SIGTERM)
        for child in running_nodes:
            child.wait(timeout=15)
        running_others = [child for child in started if child not in nodes]
        for child in running_others:
            child.stop(signal.SIGTERM)  # nginx: fast shutdown; workers: their own clean stop
        for child in running_others:
            child.wait(timeout=15)

    def on_signal(signum, _frame):
        if not supervising:
            raise KeyboardInterrupt(signal.Signals(signum).name)  # starting: stop waiting for a node or nginx
        # Supervising: the loop below stops everything. No exception here, which could land between
        # a restart's fork and its bookkeeping and leave a child nobody stops.
        stop_requested.append(signal.Signals(signum).name)

    # Ctrl-C too, explicitly: started from a script in the background, SIGINT comes in ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        for node in nodes:
            started.append(node)
            node.start()
        for node, port in zip(nodes, node_ports, strict=True):
            wait_healthy(node.health_url, node.process.popen)
            print(
                f"{node.name}: http://127.0.0.1:{port} (pid {node.process.popen.pid}, "
                f"metrics: http://127.0.0.1:{port}/metrics)",
                flush=True,
            )
        for child in others:
            started.append(child)
            child.start()
        shown = f"[{opts.host.strip('[]')}]" if ":" in opts.host else opts.host
        # Announced once nginx answers (a listen address of every interface is asked on the loopback).
        probed = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(shown, shown)  # noqa: S104
        wait_healthy(f"http://{probed}:{opts.port}/healthz", front.process.popen, timeout=30)
        if relay is not None:
            wait_stun(turn, relay.process.popen)
            print(
                f"coturn: {turn.urls()['TURN_URLS']} (pid {relay.process.popen.pid}, "
                f"relay ports {turn.min_port}-{turn.max_port})",
                flush=True,
            )
        print(
            f"MediConnect on http://{shown}:{opts.port}/ : nginx over {opts.nodes} node(s); Ctrl-C stops them all",
            flush=True,
        )
        # A supervisor's look at its children, a few times a second, until Ctrl-C or SIGTERM.
        supervising = True
        while not stop_requested:
            now = time.monotonic()
            for child in started:
                child.check(now)
            time.sleep(0.2)
        print(f"{stop_requested[0]}: stopping the cluster …", flush=True)
        return 0
    except KeyboardInterrupt:
        print("stopping the cluster …", flush=True)
        return 0
    except (RuntimeError, OSError) as exc:  # a node that did not come up, a worker command not found
        print(f"the cluster did not start: {exc}", flush=True)
        return 1
    finally:
        stop_all()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", nargs="?", default="run", choices=["run", "check", "site"])
    parser.add_argument("--nodes", type=int, default=int(os.environ.get("NODES", "2")))
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="nginx listens here")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="nginx's port")
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("BASE_PORT", "8001")), help="node 1's")
    parser.add_argument(
        "--runtime",
        type=Path,
        default=Path(os.environ.get("CLUSTER_RUNTIME", DEFAULT_RUNTIME)),
        help="nginx's files and the pid files (default .cluster/, or CLUSTER_RUNTIME)",
    )
    parser.add_argument("--static-root", type=Path, default=None, help="collected static files (STATIC_ROOT)")
    parser.add_argument("--daphne-args", default="", help="daphne's flags, as `make run` passes them")
    parser.add_argument("--listen", default=None, help="site: nginx's listen (default 80, or `443 ssl` with TLS)")
    parser.add_argument("--server-name", default="_", help="site: nginx's server_name")
    parser.add_argument("--tls-cert", default=None, help="site: the certificate chain (fullchain.pem)")
    parser.add_argument("--tls-key", default=None, help="site: its private key (privkey.pem)")
    parser.add_argument(
        "--files-root", type=Path, default=None, help="site: FILES_ROOT, the documents' directory (X-Accel-Redirect)"
    )
    opts = parser.parse_args(argv)
    if opts.nodes < 1:
        parser.error("--nodes must be at least 1")
    if opts.static_root is None:
        opts.static_root = Path(os.environ.get("STATIC_ROOT", ROOT / "staticfiles"))
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.action == "site":
        if bool(opts.tls_cert) != bool(opts.tls_key):
            raise SystemExit("--tls-cert and --tls-key go together")
        ports = [opts.base_port + i for i in range(opts.nodes)]
        listen = opts.listen or ("443 ssl" if opts.tls_cert else "80")
        site = site_config(
            node_ports=ports,
            listen=listen,
            static_root=opts.static_root,
            files_root=opts.files_root,
            server_name=opts.server_name,
            tls_cert=opts.tls_cert,
            tls_key=opts.tls_key,
            redirect_http=True,
        )
        print(site)
        return 0
    read_env_file()
    problems = missing_services()
    if problems:
        print("make run-cluster needs PostgreSQL and Redis:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if opts.action == "check":
        return 0
    return run(opts)


if __name__ == "__main__":
    sys.exit(main())
