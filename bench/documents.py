"""Clinical documents at work: uploads until AVAILABLE, the server's memory under large bodies, and
downloads through nginx against nginx serving the same file itself (run by hand).

    .venv/bin/python bench/documents.py [--runs 3] [--uploads 20] [--burst 24] [--clients 4]

Each run starts, as deployed: daphne with the Makefile's `run` command line (on --server-cpu), the
task worker (`manage.py run_worker`, default options: it looks for work every second when idle), a
clamd with a test signature database (tests/support/clamd.py; one for all runs) and nginx configured
by deploy/cluster.py (X-Accel-Redirect over FILES_ROOT), all but daphne on --load-cpu with this
process. A fresh copy of a migrated scratch PostgreSQL database and a Redis prefix of its own per run.
Uploads go straight to daphne (its own work, with nothing in front); downloads go through nginx.

- uploads: a 5 MB PDF (one page, a large image stream, as Pillow writes a PDF) and a 4 MB phone JPEG
  (4032 x 3024, EXIF orientation 6), `--uploads` of each one after another: POST → 201 and POST →
  the patient's socket has `file_updated` with AVAILABLE (clamd has scanned it): p50 and p99 ms;
  then `--burst` of each from `--clients` clients at once: uploads answered 201 per second;
- memory: daphne's RSS (VmRSS, sampled every 5 ms) during 10 parallel 10 MB uploads, and during one
  200 MB upload sent with chunked encoding in 1 MiB chunks (refused: 413), peak minus the baseline
  just before; the same 200 MB body through nginx, which refuses it before daphne sees a byte;
- downloads: `--downloads` GETs of the 10 MB PDF through a signed link (daphne checks it and hands
  it to nginx), against `--downloads` GETs of the same file as a static file of nginx's (the floor),
  one keep-alive connection each: MB/s, and the ratio.

Writes docs/bench/documents/documents.json (every run and the medians) and prints the medians.
"""

import argparse
import contextlib
import http.client
import io
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import seed  # noqa: E402
from servers import (  # noqa: E402
    LOGS,
    ROOT,
    Scratch,
    Server,
    delete_redis_keys,
    exit_on_signals,
    free_port,
    makefile_daphne_command,
    new_redis_prefix,
    rss_kib,
)

OUT = ROOT / "docs" / "bench" / "documents"
MIB = 1024 * 1024
BOUNDARY = "BenchBoundary7MA4YWxkTrZu0gW"


# --- the files ---------------------------------------------------------------------------------


def _noise_image(width: int, height: int, *, rng: random.Random, sigma: float):
    """A photo-like image: a smooth gradient under grain, so JPEG compresses it as it would a photo."""
    from PIL import Image

    gradient = Image.linear_gradient("L").resize((width, height))
    grain = Image.effect_noise((width, height), sigma)
    colours = [Image.blend(gradient, grain, rng.uniform(0.3, 0.7)) for _ in range(3)]
    return Image.merge("RGB", colours)


def jpeg_bytes(target: int, *, rng: random.Random) -> bytes:
    """A 4032 x 3024 JPEG of about `target` bytes, taken sideways (EXIF orientation 6), as a phone writes it."""
    from PIL import Image

    image = _noise_image(4032, 3024, rng=rng, sigma=60)
    exif = Image.Exif()
    exif[0x0112] = 6
    best = b""
    for quality in range(40, 100, 4):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, exif=exif.tobytes())
        best = out.getvalue()
        if len(best) >= target:
            break
    return best


def pdf_bytes(target: int, *, rng: random.Random) -> bytes:
    """A one-page PDF of about `target` bytes: Pillow's PDF of an image (one large DCT image stream)."""
    side = max(64, int((target / 2.5) ** 0.5))
    while True:
        image = _noise_image(side, side, rng=rng, sigma=120)
        out = io.BytesIO()
        image.save(out, "PDF", quality=95, resolution=150)
        data = out.getvalue()
        if len(data) >= target * 0.97:
            return data
        side = int(side * (target / len(data)) ** 0.5 * 1.02) + 1


def multipart(data: bytes, name: str, kind: str = "LAB_REPORT") -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


# --- the client --------------------------------------------------------------------------------


def post_upload(port: int, token: str, body, *, chunked: bool = False, timeout: float = 120) -> tuple[int, dict]:
    """POST /api/files/ with a ready multipart body (bytes, or an iterable of chunks sent chunked)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Authorization": f"Bearer {token}"}
    try:
        try:
            connection.request("POST", "/api/files/", body, headers, encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while we were still sending: its answer may be waiting
        answer = connection.getresponse()
        text = answer.read()
        try:
            return answer.status, json.loads(text or b"null")
        except ValueError:
            return answer.status, {"text": text[:200].decode(errors="replace")}
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as exc:
        return 0, {"error": type(exc).__name__}
    finally:
        connection.close()


def api(port: int, method: str, path: str, token: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, headers={"Authorization": f"Bearer {token}"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def download_rate(port: int, path: str, times: int, size: int) -> float:
    """MB/s (10^6 bytes) of `times` GETs of `path` on one keep-alive connection, each checked for `size`
    bytes (each one's time: size / 10^6 / the rate)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        for _ in range(times):
            connection.request("GET", path)
            answer = connection.getresponse()
            received = 0
            while chunk := answer.read(MIB):
                received += len(chunk)
            if answer.status != 200 or received != size:
                raise RuntimeError(f"GET {path}: {answer.status}, {received} bytes of {size}")
        return times * size / 1e6 / (time.perf_counter() - started)
    finally:
        connection.close()


class Socket:
    """The patient's socket, in a thread: every `file_updated` frame's (id, status) with the time it came."""

    def __init__(self, ws_url: str, token: str):
        import websockets.sync.client

        self.seen: dict[tuple[int, str], float] = {}
        self._changed = threading.Condition()
        self._stack = contextlib.ExitStack()
        url = f"{ws_url}?token={token}"
        self._ws = self._stack.enter_context(websockets.sync.client.connect(url, open_timeout=30, max_size=None))
        while json.loads(self._ws.recv(timeout=30)).get("type") != "ready":
            pass
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for message in self._ws:
                frame = json.loads(message)
                if frame.get("type") == "file_updated":
                    data = frame["data"]
                    with self._changed:
                        self.seen.setdefault((data["id"], data["status"]), time.perf_counter())
                        self._changed.notify_all()

    def wait(self, file_id: int, status: str, *, within: float = 120) -> float:
        deadline = time.monotonic() + within
        with self._changed:
            while (file_id, status) not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"file {file_id} not {status} within {within} s")
                self._changed.wait(left)
            return self.seen[(file_id, status)]

    def close(self) -> None:
        self._stack.close()


class RssSampler:
    """VmRSS of `pid` every 5 ms in a thread: the baseline (median of 0.3 s before) and the peak after."""

    def __init__(self, pid: int):
        self.pid = pid
        samples = []
        for _ in range(60):
            samples.append(rss_kib(pid))
            time.sleep(0.005)
        self.baseline = statistics.median(samples)
        self.peak = max(samples)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.005)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {
            "baseline_mib": round(self.baseline / 1024, 1),
            "peak_over_baseline_mib": round((self.peak - self.baseline) / 1024, 1),
        }


# --- one run -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def uploads_one_by_one(server_port: int, socket: Socket, token: str, body: bytes, count: int) -> dict:
    answered, available = [], []
    for _ in range(count):
        started = time.perf_counter()
        status, file = post_upload(server_port, token, body)
        done = time.perf_counter()
        if status != 201:
            raise RuntimeError(f"upload answered {status}: {file}")
        available.append((socket.wait(file["id"], "AVAILABLE") - started) * 1000)
        answered.append((done - started) * 1000)
    return {
        "response_p50_ms": round(percentile(answered, 0.5), 1),
        "available_p50_ms": round(percentile(available, 0.5), 1),
        "available_p99_ms": round(percentile(available, 0.99), 1),
    }


def upload_burst(server: Server, socket: Socket, token: str, body: bytes, count: int, clients: int) -> dict:
    """`count` uploads from `clients` threads at once: answered per second, all AVAILABLE after how
    long, and the server's RSS meanwhile."""
    server_port = server.http_port
    sampler = RssSampler(server.pid)
    left = list(range(count))
    lock = threading.Lock()
    ids, errors = [], []

    def client():
        while True:
            with lock:
                if not left:
                    return
                left.pop()
            status, file = post_upload(server_port, token, body)
            with lock:
                (ids.append(file["id"]) if status == 201 else errors.append(status))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answered = time.perf_counter() - started
    last = max(socket.wait(file_id, "AVAILABLE", within=300) for file_id in ids) if ids else started
    return {
        "uploads_per_s": round(len(ids) / answered, 2),
        "all_available_s": round(last - started, 2),
        "errors": len(errors),
        **sampler.stop(),
    }


def parallel_uploads_memory(server: Server, token: str, body: bytes, parallel: int) -> dict:
    sampler = RssSampler(server.pid)
    statuses = []
    threads = [
        threading.Thread(target=lambda: statuses.append(post_upload(server.http_port, token, body)[0]))
        for _ in range(parallel)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**sampler.stop(), "statuses": sorted(statuses)}


def refused_upload_memory(server: Server, port: int, token: str, size: int) -> dict:
    """A `size`-byte file sent chunked, 1 MiB at a time, to `port`; daphne's RSS meanwhile."""
    head, tail = multipart(b"", "scan.pdf").split(f"\r\n--{BOUNDARY}--".encode())
    tail = f"\r\n--{BOUNDARY}--".encode() + tail
    chunk = b"%PDF-1.7\n" + b"0" * (MIB - 9)

    def body():
        yield head
        sent = 0
        while sent < size:
            yield chunk
            sent += len(chunk)
        yield tail

    sampler = RssSampler(server.pid)
    started = time.perf_counter()
    status, answer = post_upload(port, token, body(), chunked=True, timeout=300)
    return {**sampler.stop(), "status": status, "answer": answer, "seconds": round(time.perf_counter() - started, 2)}


def one_run(scratch: Scratch, base_env: dict, files: dict, clamd_url: str, opts) -> dict:
    from deploy import cluster as launcher

    database = scratch.clone()
    prefix = new_redis_prefix(opts.redis_url)
    files_root = Path(tempfile.mkdtemp(prefix="mcbench-files-"))
    runtime = LOGS.parent / f"documents-nginx-{os.getpid()}-{secrets.token_hex(3)}"
    static_root = runtime / "static"
    static_root.mkdir(parents=True)
    for path in (runtime, static_root):
        path.chmod(0o755)  # nginx's workers (nobody, when run as root) read the floor's file
    floor_file = static_root / "floor.pdf"
    floor_file.write_bytes(files["pdf10"])
    floor_file.chmod(0o644)
    env = {
        **base_env,
        "DATABASE_URL": scratch.url(database),
        "CHANNEL_LAYER_PREFIX": prefix,
        "FILES_ROOT": str(files_root),
        "CLAMD_URL": clamd_url,
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    env.update(launcher.files_env(env))
    server = nginx = worker = socket = None
    figures: dict = {}
    try:
        seed.use_database(database)
        token = seed.seed(patients=1, doctors=0, queue=False)["patients"][0][1]
        seed.release()
        port = free_port()
        server = Server("documents-app", makefile_daphne_command(port), env, port, "", cpu=opts.server_cpu)
        worker_log = open(LOGS / f"documents-worker-{os.getpid()}-{secrets.token_hex(3)}.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen(
            ["taskset", "-c", str(opts.load_cpu), sys.executable, "manage.py", "run_worker"],
            cwd=ROOT,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        nginx_port = free_port()
        config = launcher.write_nginx_config(
            runtime,
            node_ports=[port],
            listen=f"127.0.0.1:{nginx_port}",
            static_root=static_root,
            files_root=files_root,
        )
        nginx = Server(
            "documents-nginx",
            launcher.nginx_command(launcher.find_nginx(), config),
            env,
            nginx_port,
            "",
            cpu=opts.load_cpu,
        )
        socket = Socket(f"ws://127.0.0.1:{port}/ws/", token)

        # Memory first, on a server that has answered one small upload only (its allocator holds
        # no memory of earlier large requests yet).
        post_upload(port, token, multipart(files["small"], "note.pdf"))
        figures["server_rss_start_mib"] = round(server.rss_kib() / 1024, 1)
        big = multipart(files["pdf10"], "Scan.pdf")
        figures["parallel_10mb_memory"] = parallel_uploads_memory(server, token, big, 10)
        figures["refused_200mb_memory"] = refused_upload_memory(server, port, token, opts.refused_mib * MIB)
        figures["refused_200mb_through_nginx"] = refused_upload_memory(
            server, nginx_port, token, opts.refused_mib * MIB
        )

        for kind, name in (("pdf", "Lab report.pdf"), ("jpeg", "IMG_0001.jpg")):
            body = multipart(files[kind], name)
            post_upload(port, token, body)  # warm: the first request's imports and connections
            figures[f"{kind}_one_by_one"] = uploads_one_by_one(port, socket, token, body, opts.uploads)
            figures[f"{kind}_burst"] = upload_burst(server, socket, token, body, opts.burst, opts.clients)

        status, file = post_upload(port, token, big)
        if status != 201:
            raise RuntimeError(f"the 10 MB upload answered {status}: {file}")
        socket.wait(file["id"], "AVAILABLE")
        status, link = api(port, "POST", f"/api/files/{file['id']}/link/", token)
        size = len(files["pdf10"])
        app = download_rate(nginx_port, link["url"], opts.downloads, size)
        floor = download_rate(nginx_port, "/static/floor.pdf", opts.downloads, size)
        figures["download"] = {
            "x_accel_mb_s": round(app, 1),
            "static_mb_s": round(floor, 1),
            "ratio": round(app / floor, 3),
            "x_accel_ms_each": round(size / 1e3 / app, 2),
            "static_ms_each": round(size / 1e3 / floor, 2),
        }
        figures["server_rss_end_mib"] = round(server.rss_kib() / 1024, 1)
    finally:
        if socket is not None:
            socket.close()
        if worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
        for running in (nginx, server):
            if running is not None:
                running.stop()
        if server is not None:
            figures["server_log"] = server.log_summary()
        seed.release()
        scratch.drop(database)
        delete_redis_keys(opts.redis_url, prefix)
        shutil.rmtree(files_root, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)
    return figures


def flatten(figures: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=20, help="uploads of each kind one after another")
    parser.add_argument("--burst", type=int, default=24, help="uploads of each kind from --clients at once")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--downloads", type=int, default=20, help="GETs of the 10 MB file, each way")
    parser.add_argument("--refused-mib", type=int, default=200, help="the refused upload's size")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432", help="server, no db name")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    opts = parser.parse_args()
    exit_on_signals()
    os.sched_setaffinity(0, {opts.load_cpu})

    sys.path.insert(0, str(ROOT))
    rng = random.Random(19)
    print("making the files …", flush=True)
    files = {"pdf": pdf_bytes(5 * 10**6, rng=rng), "jpeg": jpeg_bytes(4 * 10**6, rng=rng)}
    files["pdf10"] = pdf_bytes(10 * 10**6, rng=rng)
    files["small"] = pdf_bytes(50_000, rng=rng)
    sizes = {kind: len(data) for kind, data in files.items()}
    print(f"files: {sizes}", flush=True)

    base_env = {
        **{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "LOCAL_HTTP": "true",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ACCESS_TOKEN_MINUTES": "720",
        "REDIS_URL": opts.redis_url,
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "mediconnect.settings",
        "ENV_FILE": "",
    }
    for name in ("FILES_ROOT", "FILES_X_ACCEL_PREFIX", "FILES_STORAGE", "FILE_MAX_BYTES", "CLAMD_URL"):
        base_env.pop(name, None)
    scratch = Scratch(opts.database_url)
    print(f"migrating the template database {scratch.template} …", flush=True)
    scratch.create_template(base_env)
    seed.setup_django({**base_env, "DATABASE_URL": scratch.url(scratch.template)})
    from tests.support.clamd import Clamd, clamd_binary, write_config  # (after Django: tests.support needs it)

    if clamd_binary() is None:
        raise SystemExit("clamd is not installed (Debian: apt-get install clamav-daemon)")

    clamd_dir = Path(tempfile.mkdtemp(prefix="mcbench-clamd-"))
    clamd_port = free_port()
    write_config(clamd_dir, clamd_port, stream_max_bytes=64 * MIB)
    clamd = Clamd(directory=clamd_dir, port=clamd_port)
    clamd.start()
    os.sched_setaffinity(clamd.process.pid, {opts.load_cpu})
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    machine = report.machine()
    runs = []
    try:
        for number in range(1, opts.runs + 1):
            print(f"run {number} …", flush=True)
            figures = one_run(scratch, base_env, files, clamd.url, opts)
            runs.append(figures)
            print(json.dumps({k: v for k, v in figures.items() if k != "server_log"}), flush=True)
    finally:
        clamd.stop()
        shutil.rmtree(clamd_dir, ignore_errors=True)
        seed.release()
        scratch.drop(scratch.template)

    flat = [flatten({k: v for k, v in run.items() if k != "server_log"}) for run in runs]
    medians = {key: statistics.median(run[key] for run in flat if key in run) for key in flat[0]} if flat else {}
    machine["load_average_end"] = os.getloadavg()
    result = {
        "what": "documents",
        "command": "bench/documents.py " + " ".join(sys.argv[1:]),
        "started": started_at,
        "machine": machine,
        "git": report.git_commit(),
        "parameters": {**vars(opts), "out": str(opts.out), "file_bytes": sizes, "run_id": uuid.uuid4().hex[:8]},
        "runs": runs,
        "medians": medians,
    }
    opts.out.mkdir(parents=True, exist_ok=True)
    path = opts.out / "documents.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(medians, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
