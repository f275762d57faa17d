"""A push service of the tests' own: receives Web Push messages on loopback and checks them as a browser's would.

`PushReceiver` is a small threaded HTTP server on a free loopback port (plain HTTP: the tests allow
`http://127.0.0.1:` by PUSH_ENDPOINT_ALLOW). `subscribe()` plays a browser: it makes a P-256 key
pair and a 16-byte auth secret, and hands out the `PushSubscription.toJSON()` shape with an
endpoint of its own. Each POST to an endpoint is checked:

- VAPID (RFC 8292): `Authorization: vapid t=<JWT>, k=<public key>`; the JWT is ES256, signed by the
  key in `k`, `aud` the endpoint's origin, `exp` in the future and at most 24 h away, `sub` the
  expected subject; `k` must be the application server key the test expects, when it says one;
- the body is `Content-Encoding: aes128gcm` (RFC 8291), decrypted with http-ece and the
  subscription's private key and auth secret, then read as JSON;

and recorded (`Received`: TTL, Urgency, Topic, the claims and the payload, or what was wrong).
`answer(endpoint, 410)` / `answer(endpoint, 429, retry_after="7")` script the next answers of an
endpoint (default 201 Created). Started and stopped by the `push_receiver` fixture
(tests/conftest.py); nothing here sleeps: `wait_for` polls with a timeout.
"""

import base64
import datetime
import json
import secrets
import ssl
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import http_ece
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One subscription's browser side: its keys and the endpoint the receiver gave it."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def to_json(self) -> dict:
        """What `PushSubscription.toJSON()` gives a page: the body of POST /api/push/subscriptions/."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)}}


@dataclass
class Received:
    endpoint: str
    status: int  # what the receiver answered
    ttl: str | None
    urgency: str | None
    topic: str | None
    content_encoding: str | None
    vapid_key: str | None  # the `k` of the Authorization header
    claims: dict | None
    payload: dict | None
    size: int  # the decrypted payload's length in bytes
    error: str | None  # why the message was refused (then `payload` is None)


class VapidError(Exception):
    pass


def verify_vapid(header: str | None, *, audience: str, subject: str | None, now: float) -> tuple[dict, str]:
    """The claims and public key of a valid `vapid t=…, k=…` header; VapidError says what is wrong."""
    if not header or not header.lower().startswith("vapid "):
        raise VapidError("no vapid Authorization")
    params = {}
    for part in header[6:].split(","):
        name, _, value = part.strip().partition("=")
        params[name.strip()] = value.strip()
    if "t" not in params or "k" not in params:
        raise VapidError("vapid header lacks t or k")
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(params["k"]))
        head_b64, claims_b64, signature_b64 = params["t"].split(".")
        head = json.loads(unb64url(head_b64))
        claims = json.loads(unb64url(claims_b64))
        signature = unb64url(signature_b64)
    except (ValueError, TypeError) as exc:
        raise VapidError(f"malformed vapid token: {exc}") from exc
    if head.get("alg") != "ES256" or len(signature) != 64:
        raise VapidError(f"not ES256: {head}")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise VapidError("bad ES256 signature") from exc
    if claims.get("aud") != audience:
        raise VapidError(f"aud {claims.get('aud')!r} is not {audience!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= now or exp > now + 24 * 3600:
        raise VapidError(f"exp {exp!r} not in the next 24 h")
    if subject is not None and claims.get("sub") != subject:
        raise VapidError(f"sub {claims.get('sub')!r} is not {subject!r}")
    return claims, params["k"]


def self_signed(name: str, directory) -> tuple[str, str]:
    """A certificate for `name` (its own CA, for a client's `verify`) and its key, as PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


class PushReceiver:
    def __init__(
        self, *, subject: str | None = None, server_key: str | None = None, tls: tuple[str, str, str] | None = None
    ):
        self.subject = subject  # the VAPID `sub` every message must carry (None: any)
        self.server_key = server_key  # the application server key every message must be signed with
        # (name, certificate file, key file): HTTPS, endpoints named https://name:port/… (the test resolves name)
        self.tls = tls
        self.received: list[Received] = []
        self._browsers: dict[str, Browser] = {}
        self._answers: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life --------------------------------------------------------------------------------

    def start(self) -> "PushReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers = receiver._take(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls[1], self.tls[2])
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="push-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def origin(self) -> str:
        if self.tls is not None:
            return f"https://{self.tls[0]}:{self._server.server_address[1]}"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- the tests' side ---------------------------------------------------------------------

    def subscribe(self) -> Browser:
        """A new browser subscription with an endpoint on this receiver."""
        browser = Browser(
            endpoint=f"{self.origin}/push/{secrets.token_urlsafe(12)}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=secrets.token_bytes(16),
        )
        with self._lock:
            self._browsers[browser.endpoint] = browser
        return browser

    def answer(self, endpoint: str, status: int, *, retry_after: str | None = None, times: int = 1) -> None:
        """The next `times` messages to `endpoint` are answered `status` (then 201 again)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._answers[endpoint].extend([(status, headers)] * times)

    def messages(self, endpoint: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if endpoint is None or r.endpoint == endpoint]

    def delivered(self, endpoint: str | None = None) -> list[Received]:
        """The messages that were accepted (2xx) and decrypted."""
        return [r for r in self.messages(endpoint) if 200 <= r.status < 300 and r.payload is not None]

    def wait_for(self, predicate, timeout: float = 10.0):
        """Poll until `predicate(self)` is truthy (returns it) or the timeout passes (AssertionError)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"push receiver: not within {timeout} s; got {self.messages()!r}")
            with self._changed:
                self._changed.wait(min(left, 0.2))

    # -- the push service's side ---------------------------------------------------------------

    def _take(self, path: str, headers: dict, body: bytes) -> tuple[int, dict]:
        endpoint = f"{self.origin}{path}"
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            browser = self._browsers.get(endpoint)
            scripted = self._answers[endpoint].popleft() if self._answers.get(endpoint) else None
        claims = key = payload = None
        error = None
        size = 0
        try:
            if browser is None:
                raise VapidError("unknown endpoint")
            claims, key = verify_vapid(
                lowered.get("authorization"), audience=self.origin, subject=self.subject, now=time.time()
            )
            if self.server_key is not None and key != self.server_key:
                raise VapidError("signed with another application server key")
            if lowered.get("content-encoding") != "aes128gcm":
                raise VapidError(f"Content-Encoding {lowered.get('content-encoding')!r}")
            plain = http_ece.decrypt(
                body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
            )
            size = len(plain)
            payload = json.loads(plain)
        except (VapidError, ValueError, http_ece.ECEException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            status, answer_headers = (404, {}) if browser is None else (400, {})
        elif scripted is not None:
            status, answer_headers = scripted
        else:
            status, answer_headers = 201, {}
        record = Received(
            endpoint=endpoint,
            status=status,
            ttl=lowered.get("ttl"),
            urgency=lowered.get("urgency"),
            topic=lowered.get("topic"),
            content_encoding=lowered.get("content-encoding"),
            vapid_key=key,
            claims=claims,
            payload=payload if error is None else None,
            size=size,
            error=error,
        )
        with self._changed:
            self.received.append(record)
            self._changed.notify_all()
        return status, answer_headers
