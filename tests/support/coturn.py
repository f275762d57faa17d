"""A coturn of the tests' own on the loopback, and a small TURN client to ask it things.

Nothing of the machine's coturn setup is used (its service, /etc/turnserver.conf, its database):
the fixture writes a turnserver.conf into a temporary directory (shared-secret auth, no TLS, no
CLI, a few relay ports), starts `turnserver -c` as a child, waits (with a timeout) until it answers
a STUN Binding request, and stops it by its PID. Tests skip, saying why, where turnserver is not
installed; CI installs it (.ci/run), and there a missing turnserver fails instead.

`allocate()` is a TURN client of a few dozen lines (RFC 5389/5766 over UDP): it reports what coturn
answered (a relayed address, or its error code), so tests assert on coturn's own verdict.
"""

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

START_TIMEOUT = 30.0
REALM = "mediconnect.test"
# A relayed call holds a port or two per participant, and coturn takes a freed port back only about a
# second later (its timer): room for a session of tests and browser calls.
RELAY_PORTS = 64

# STUN/TURN message types and attributes (RFC 5389, RFC 5766) that this client speaks.
MAGIC_COOKIE = 0x2112A442
BINDING, ALLOCATE, REFRESH, CREATE_PERMISSION, SEND, DATA = 0x001, 0x003, 0x004, 0x008, 0x016, 0x017
SUCCESS, ERROR, INDICATION = 0x100, 0x110, 0x010
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE, LIFETIME = 0x0006, 0x0008, 0x0009, 0x000D
XOR_PEER_ADDRESS, DATA_ATTR, REALM_ATTR, NONCE = 0x0012, 0x0013, 0x0014, 0x0015
XOR_RELAYED_ADDRESS, REQUESTED_TRANSPORT, XOR_MAPPED_ADDRESS = 0x0016, 0x0019, 0x0020


def turnserver_binary() -> str | None:
    return shutil.which("turnserver") or next(
        (p for p in ("/usr/bin/turnserver", "/usr/sbin/turnserver") if os.access(p, os.X_OK)), None
    )


def _port_is_free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free for both UDP and TCP (coturn listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if _port_is_free(port, socket.SOCK_STREAM):
            return port


def free_port_range(count: int) -> tuple[int, int]:
    """`count` consecutive UDP ports, free now, above the kernel's ephemeral ports where it can."""
    for _attempt in range(200):
        first = 61000 + secrets.randbelow(4000)
        ports = range(first, first + count)
        if all(_port_is_free(port, socket.SOCK_DGRAM) for port in ports):
            return first, first + count - 1
    raise RuntimeError(f"no {count} consecutive free UDP ports found for coturn's relays")


# --- a small TURN client --------------------------------------------------------------------------


def _attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def _xor_address(host: str, port: int) -> bytes:
    address = struct.unpack("!I", socket.inet_aton(host))[0] ^ MAGIC_COOKIE
    return struct.pack("!BBHI", 0, 1, port ^ (MAGIC_COOKIE >> 16), address)


def _read_xor_address(value: bytes) -> tuple[str, int]:
    _, _family, port, address = struct.unpack("!BBHI", value[:8])
    return socket.inet_ntoa(struct.pack("!I", address ^ MAGIC_COOKIE)), port ^ (MAGIC_COOKIE >> 16)


def _message(kind: int, attributes: list[tuple[int, bytes]], *, key: bytes | None = None) -> tuple[bytes, bytes]:
    """A STUN message and its transaction id; with `key`, signed with MESSAGE-INTEGRITY."""
    transaction = secrets.token_bytes(12)
    body = b"".join(_attribute(k, v) for k, v in attributes)
    if key is None:
        return struct.pack("!HHI", kind, len(body), MAGIC_COOKIE) + transaction + body, transaction
    # The integrity covers the header with a length that already counts its own 24 bytes.
    header = struct.pack("!HHI", kind, len(body) + 24, MAGIC_COOKIE) + transaction
    digest = hmac.new(key, header + body, hashlib.sha1).digest()
    return header + body + _attribute(MESSAGE_INTEGRITY, digest), transaction


def _parse(data: bytes) -> tuple[int, bytes, dict[int, bytes]]:
    kind, length, _cookie = struct.unpack("!HHI", data[:8])
    transaction, attributes, offset = data[8:20], {}, 20
    while offset + 4 <= 20 + length:
        attr, size = struct.unpack("!HH", data[offset : offset + 4])
        attributes.setdefault(attr, data[offset + 4 : offset + 4 + size])
        offset += 4 + size + (-size % 4)
    return kind, transaction, attributes


@dataclass
class Answer:
    """What a TURN server said to one request: its message class and attributes."""

    kind: int
    attributes: dict[int, bytes]

    @property
    def ok(self) -> bool:
        return self.kind & 0x110 == SUCCESS

    @property
    def error_code(self) -> int | None:
        value = self.attributes.get(ERROR_CODE)
        return None if value is None else (value[2] & 7) * 100 + value[3]

    @property
    def reason(self) -> str:
        value = self.attributes.get(ERROR_CODE, b"\0\0\0\0")
        return value[4:].decode(errors="replace")


class TurnClient:
    """One UDP association with a TURN server (a context manager); `allocate()` signs in with the
    long-term credentials of the shared-secret scheme (the key is MD5(username:realm:credential))."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0):
        self.server = (host, port)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.key: bytes | None = None
        self.signed: list[tuple[int, bytes]] = []  # USERNAME, REALM, NONCE once signed in
        self.relayed: tuple[str, int] | None = None

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        if self.relayed is not None:  # give the relay port back (coturn would free it after its lifetime)
            with contextlib.suppress(OSError, TimeoutError):
                self.request(REFRESH, [(LIFETIME, struct.pack("!I", 0))])
        self.sock.close()

    def request(self, kind: int, attributes: list[tuple[int, bytes]], *, signed: bool = True) -> Answer:
        """Send a request (signed with the credentials once there are some) and read its answer,
        sending again every half second (UDP) until `timeout`."""
        extra = self.signed if signed and self.key else []
        message, transaction = _message(kind, [*attributes, *extra], key=self.key if extra else None)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self.sock.sendto(message, self.server)
            self.sock.settimeout(min(0.5, max(0.01, deadline - time.monotonic())))
            try:
                while True:
                    data, _ = self.sock.recvfrom(65536)
                    answer_kind, answer_transaction, answer_attributes = _parse(data)
                    if answer_transaction == transaction:
                        return Answer(answer_kind, answer_attributes)
            except TimeoutError:
                continue
        raise TimeoutError(f"no answer from {self.server} within {self.timeout} s")

    def allocate(self, username: str, credential: str) -> Answer:
        """ALLOCATE a UDP relay: first unsigned (the server answers 401 with its realm and nonce), then
        signed. The answer is the signed request's; on success `relayed` is the relay's address."""
        transport = [(REQUESTED_TRANSPORT, bytes([17, 0, 0, 0]))]
        challenge = self.request(ALLOCATE, transport, signed=False)
        if challenge.error_code != 401 or REALM_ATTR not in challenge.attributes:
            return challenge
        realm, nonce = challenge.attributes[REALM_ATTR], challenge.attributes[NONCE]
        self.key = hashlib.md5(f"{username}:{realm.decode()}:{credential}".encode()).digest()  # noqa: S324 (TURN's key)
        self.signed = [(USERNAME, username.encode()), (REALM_ATTR, realm), (NONCE, nonce)]
        answer = self.request(ALLOCATE, transport)
        if answer.ok:
            self.relayed = _read_xor_address(answer.attributes[XOR_RELAYED_ADDRESS])
        return answer

    def permit(self, peer: tuple[str, int]) -> Answer:
        """CREATE_PERMISSION for `peer` (coturn refuses loopback peers unless `allow-loopback-peers`)."""
        return self.request(CREATE_PERMISSION, [(XOR_PEER_ADDRESS, _xor_address(*peer))])

    def send(self, peer: tuple[str, int], data: bytes) -> None:
        """A Send indication: the server relays `data` from the relay's address to `peer`."""
        message, _ = _message(SEND, [(XOR_PEER_ADDRESS, _xor_address(*peer)), (DATA_ATTR, data)])
        self.sock.sendto(message, self.server)

    def receive(self, timeout: float = 5.0) -> tuple[tuple[str, int], bytes]:
        """The next Data indication: (the peer it came from, its data)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            data, _ = self.sock.recvfrom(65536)
            kind, _transaction, attributes = _parse(data)
            if kind == DATA | INDICATION:
                return _read_xor_address(attributes[XOR_PEER_ADDRESS]), attributes[DATA_ATTR]
        raise TimeoutError(f"no relayed data within {timeout} s")


def binding_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether a STUN server answers a Binding request on host:port (UDP) within `timeout`."""
    with TurnClient(host, port, timeout=timeout) as client:
        try:
            answer = client.request(BINDING, [], signed=False)
        except (TimeoutError, ConnectionRefusedError):
            return False
    return answer.ok and XOR_MAPPED_ADDRESS in answer.attributes


def rest_credentials(*, secret: str, expiry: int, user: str) -> tuple[str, str]:
    """coturn's shared-secret credentials, computed here independently of visits/turn.py."""
    username = f"{expiry}:{user}"
    return username, base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


# --- the server -----------------------------------------------------------------------------------


def server_config(
    directory: Path, *, port: int, relay_ports: tuple[int, int], secret: str, loopback_peers: bool = True
) -> str:
    """A turnserver.conf for a test coturn on 127.0.0.1 with its files under `directory`."""
    lines = [
        "listening-ip=127.0.0.1",
        "relay-ip=127.0.0.1",
        f"listening-port={port}",
        f"min-port={relay_ports[0]}",
        f"max-port={relay_ports[1]}",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={REALM}",
        "fingerprint",
        "no-tls",
        "no-dtls",
        "no-cli",
        "no-rfc5780",  # one address only: no alternate port for NAT-behaviour discovery
        f"pidfile={directory / 'turnserver.pid'}",
        f"userdb={directory / 'turnserver.db'}",
        f"log-file={directory / 'turnserver.log'}",
        "simple-log",
        "no-stdout-log",
        "verbose",
    ]
    if loopback_peers:
        # TEST ONLY. Both "peers" of a test live on 127.0.0.1, and without this coturn refuses
        # CREATE_PERMISSION to a loopback address with 403 (Forbidden IP): nothing is relayed. A
        # deployment must never carry it (deploy/coturn.conf says no-loopback-peers; a test checks).
        lines.append("allow-loopback-peers")
    return "\n".join(lines) + "\n"


@dataclass
class Coturn:
    """A running coturn: `turn_url`/`stun_url`/`secret` for the settings (`configure(settings)`, or
    `env()` for a daphne started by tests/live.py); `stop()` and `start()` take it away and back."""

    directory: Path
    port: int
    relay_ports: tuple[int, int]
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    config: Path | None = None
    process: subprocess.Popen | None = None
    host: str = "127.0.0.1"

    @property
    def turn_url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    @property
    def stun_url(self) -> str:
        return f"stun:{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The settings' environment variables pointing at this coturn (for `Daphne(**coturn.env())`)."""
        return {"TURN_URLS": self.turn_url, "STUN_URLS": self.stun_url, "TURN_SECRET": self.secret}

    def configure(self, settings) -> None:
        """Point an in-process test's settings (pytest-django's `settings`) at this coturn."""
        settings.TURN_URLS, settings.STUN_URLS, settings.TURN_SECRET = [self.turn_url], [self.stun_url], self.secret

    def client(self, **kwargs) -> TurnClient:
        return TurnClient(self.host, self.port, **kwargs)

    def log(self) -> str:
        path = self.directory / "turnserver.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        if self.config is None:
            self.config = self.directory / "turnserver.conf"
            self.config.write_text(
                server_config(self.directory, port=self.port, relay_ports=self.relay_ports, secret=self.secret)
            )
        self.process = subprocess.Popen(
            [turnserver_binary(), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not binding_answers(self.host, self.port, timeout=0.1):  # each try waits up to 0.1 s
            if self.process.poll() is not None:
                raise RuntimeError(f"turnserver exited with {self.process.returncode}:\n{self.log()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"turnserver did not answer a STUN Binding within {START_TIMEOUT} s")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def require_turnserver() -> str:
    """turnserver's path; skips the test where it is missing (fails in CI, which installs it)."""
    binary = turnserver_binary()
    if binary is None:
        reason = "turnserver is not installed (Debian: apt-get install coturn)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI installs it (.ci/run), so nothing may skip there")
        pytest.skip(f"{reason}; CI installs it")
    return binary


def start_coturn(directory: Path, **kwargs) -> Coturn:
    """A coturn of the caller's own in `directory` (started; the caller stops it)."""
    require_turnserver()
    server = Coturn(directory=directory, port=free_port(), relay_ports=free_port_range(RELAY_PORTS), **kwargs)
    server.start()
    return server


@pytest.fixture(scope="session")
def coturn(tmp_path_factory):
    """A running coturn of this test session on 127.0.0.1 (skips where turnserver is not installed).

    `coturn.configure(settings)` points TURN_URLS/STUN_URLS/TURN_SECRET at it in-process;
    `Daphne(**coturn.env())` does so for a live server."""
    server = start_coturn(tmp_path_factory.mktemp("coturn"))
    yield server
    server.stop()
