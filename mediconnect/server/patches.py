"""Every private internal of daphne, autobahn, Twisted and Django that the server code relies on, listed once.

The server is adapted through supported extension points where there is one (mediconnect/server/
daphne_server.py: a daphne `Server` subclass, autobahn's protocol options, Twisted's producer API, ASGI
scope extensions). What is left needs a name that its library does not promise to keep, or code of
theirs that ours re-implements for speed. Each is a `Target` in TARGETS: what it is, why nothing
public serves, and the fingerprint of the shape that was checked against the pinned versions
(VERSIONS_CHECKED, as requirements.txt pins them). `check()` compares every target with what is
installed; the server runs it before it applies the two process-wide patches (`apply()`), and refuses
to start on any difference, and mediconnect/server/tests/test_patches.py runs it in CI, so a
dependency bump that moves a target fails the build instead of silently turning an adaptation off.
After a bump: read the target's new code against ours, then update its fingerprint.
"""

import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import logging
import random
import textwrap
from collections.abc import Callable

logger = logging.getLogger(__name__)

# The versions every fingerprint below was taken from (requirements.txt pins them exactly).
VERSIONS_CHECKED = {"daphne": "4.2.3", "Twisted": "26.10.0", "autobahn": "26.10.2", "Django": "5.2.19"}


# autobahn's debug-text helpers that `_lazy_debug_text` wraps, by module.
LAZY_TEXT = {
    "autobahn.websocket.protocol": ("pformat", "hltype", "hlval"),
    "autobahn.twisted.websocket": ("hltype", "hlval"),
}


class PatchError(RuntimeError):
    """A listed target is missing or changed shape: the server does not start."""


@dataclasses.dataclass(frozen=True)
class Target:
    path: str  # dotted path of the library's object
    kind: str  # what we do with it
    reason: str  # why nothing public serves
    # Fingerprint of the shape checked: {dotted path: first 16 hex digits of the sha256 of its source}
    # for code we replace, override or re-implement, or that reads or writes the attribute.
    sources: dict[str, str]
    attributes: tuple[str, ...] = ()  # names that must exist on `path` (a class) or on its instances


TARGETS = [
    Target(
        "twisted.internet.tcp.Connection.write",
        "method replaced, process-wide (apply)",
        "write-through: a frame goes to the socket at once when nothing waits before it, instead of an epoll "
        "registration, a callback and an unregistration per frame (half a 1,000-socket fan-out's cost); "
        "Twisted has no option for it, and its listening port builds the transport class itself. Reads the "
        "transport's private buffers (_tempDataBuffer, _writeDisconnected) to know that nothing waits",
        {
            "twisted.internet.tcp.Connection.write": "9a1ac7496539526b",
            "twisted.internet.abstract.FileDescriptor.doWrite": "33b469b3af894e6a",
            "twisted.internet.tcp.Connection.writeSomeData": "e3d4a1d1f7d66a15",
        },
        ("_tempDataBuffer", "_tempDataLen", "_writeDisconnected", "dataBuffer", "offset"),
    ),
    Target(
        "twisted.internet.abstract.FileDescriptor",
        "attributes read: dataBuffer, offset, _tempDataLen (unsent_bytes)",
        "the bound on a socket's backlog: Twisted's producer API says when more than bufferSize waits "
        "(pauseProducing), but not how much; no public call gives the size of the send buffer",
        {
            "twisted.internet.abstract.FileDescriptor._isSendBufferFull": "b4db26f78b82acc0",
            "twisted.internet.abstract.FileDescriptor._maybePauseProducer": "17fc7a908738256c",
        },
        ("_tempDataLen", "dataBuffer", "offset"),
    ),
    Target(
        "autobahn.websocket.protocol.WebSocketProtocol._sendAutoPing",
        "method overridden in our protocol subclass (SpreadPings)",
        "daphne's timeout checker pings every due socket in one turn of the loop (a thousand frames back to "
        "back at 10,000 sockets); it calls this method, which we defer by a random part of the checker's "
        "period. autobahn's own autoPingInterval batches its timers per second, which is the same burst",
        {
            "autobahn.websocket.protocol.WebSocketProtocol._sendAutoPing": "737e274bf8a2abd9",
            "daphne.ws_protocol.WebSocketProtocol.check_timeouts": "d5ad2378af81c3dc",
        },
    ),
    Target(
        "autobahn.websocket.protocol",
        "module functions replaced, process-wide (apply): pformat, hltype, hlval",
        "autobahn builds its debug lines' arguments whether or not debug is logged (a fifth of a fan-out's "
        "CPU); no option turns that off, so the helpers return text made only if a line is written",
        {"autobahn.util.hltype": "7db6418e1bc5e63a", "autobahn.util.hlval": "c6a73ec8e6664a13"},
        LAZY_TEXT["autobahn.websocket.protocol"],
    ),
    Target(
        "autobahn.twisted.websocket",
        "module functions replaced, process-wide (apply): hltype, hlval",
        "as for autobahn.websocket.protocol: the Twisted adapter's debug lines on every connection and read",
        {},
        LAZY_TEXT["autobahn.twisted.websocket"],
    ),
    Target(
        "django.core.handlers.asgi.ASGIHandler.handle",
        "method re-implemented (http_handler.OneHopASGIHandler.handle, with run_get_response)",
        "one thread hop per request for request_started, the middleware chain, the view and "
        "request_finished, instead of one hop for each; Django offers no hook between those steps",
        {
            "django.core.handlers.asgi.ASGIHandler.handle": "ab2236e287c805bf",
            "django.core.handlers.asgi.ASGIHandler.run_get_response": "3e3f9e6ae0246458",
        },
    ),
    Target(
        "django.http.response.HttpResponseBase",
        "attribute written: _handler_class (http_handler, as Django's run_get_response writes it)",
        "the sender of request_finished when the response is closed; set by the handler that made it",
        {"django.http.response.HttpResponseBase.close": "c867968c5c66060f"},
        ("_handler_class",),
    ),
    Target(
        "daphne.server.Server.run",
        "shape relied on (daphne_server.Server takes the factories as run assigns them)",
        "daphne builds its HTTP and WebSocket factories inside run with no hook; the subclass configures "
        "them (autobahn options, our protocol classes) as they are assigned to http_factory and ws_factory",
        {
            "daphne.server.Server.run": "ab2afc417659bb19",
            "daphne.http_protocol.HTTPFactory.buildProtocol": "46e23f742b61766a",
        },
    ),
    Target(
        "autobahn.websocket.protocol.WebSocketProtocol.sendPreparedMessage",
        "shape relied on (DirectSocket.send_prepared writes the prepared frame to the transport)",
        "what sendPreparedMessage does without compression and with nothing queued, less its debug line and "
        "traffic counters (about 1 µs a socket more, even with the debug text lazy); our factory refuses "
        "compression",
        {
            "autobahn.websocket.protocol.WebSocketProtocol.sendPreparedMessage": "6526cb8d10cd28c5",
            "autobahn.websocket.protocol.WebSocketProtocol.sendData": "88f768f8c9b62cf0",
        },
    ),
]


def _resolve(path: str):
    """The object at a dotted path (module, then attributes); AttributeError/ImportError if it is gone."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(path)


def fingerprint(obj) -> str:
    """First 16 hex digits of the sha256 of an object's source, dedented."""
    obj = getattr(obj, "replaced", obj)  # one of ours in place of theirs (apply): theirs
    source = textwrap.dedent(inspect.getsource(obj))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _instance_attributes(cls) -> set[str]:
    """Names an instance of `cls` has after its own __init__, without running it on a socket (a module's names)."""
    names = set(dir(cls))
    for klass in getattr(cls, "__mro__", ()):
        init = klass.__dict__.get("__init__")
        if init is not None and hasattr(init, "__code__"):
            names.update(init.__code__.co_names)
    return names


def problems() -> list[str]:
    """Each listed target that is missing or changed shape, in words; empty when all are as checked."""
    found = []
    for package, version in VERSIONS_CHECKED.items():
        installed = importlib.metadata.version(package)
        if installed != version:
            found.append(f"{package} is {installed}, the targets were checked against {version}")
    for target in TARGETS:
        try:
            obj = _resolve(target.path)
        except (ImportError, AttributeError):
            found.append(f"{target.path} is gone ({target.kind})")
            continue
        if target.attributes:
            owner = obj if inspect.isclass(obj) or inspect.ismodule(obj) else _resolve(target.path.rsplit(".", 1)[0])
            missing = set(target.attributes) - _instance_attributes(owner)
            if missing:
                found.append(f"{target.path}: {', '.join(sorted(missing))} gone from {owner.__qualname__}")
        for path, expected in target.sources.items():
            try:
                actual = fingerprint(_resolve(path))
            except (ImportError, AttributeError, TypeError, OSError):
                found.append(f"{path} is gone (fingerprint of {target.path})")
                continue
            if actual != expected:
                found.append(f"{path} changed shape (fingerprint {actual}, checked {expected}) for {target.path}")
    return found


def check() -> None:
    """Raise PatchError naming every listed target that is missing or changed shape."""
    found = problems()
    if found:
        raise PatchError(
            "the server relies on internals that moved in an installed dependency; read each against its use "
            "(mediconnect/server/patches.py) before updating its fingerprint:\n  " + "\n  ".join(found)
        )


_applied = False


def apply() -> None:
    """Check every target, then install the process-wide patches; once per process."""
    global _applied
    if _applied:
        return
    check()
    _write_through()
    _lazy_debug_text()
    _applied = True


# --- Twisted: the transport's send buffer -------------------------------------------------------------------


def unsent_bytes(transport) -> int:
    """Bytes a Twisted file-descriptor transport holds because the socket would not take them."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def _write_through() -> None:
    """Send on the socket at once when nothing is waiting to be sent before it.

    Twisted's TCP transport buffers every write and sends it on the next turn of the loop: on the
    asyncio reactor daphne uses, that is an epoll registration, a callback and an unregistration
    per frame, about half the server's cost of a queue update to 1,000 sockets. Like asyncio's own
    transports, try the socket first and leave only what it did not take to the buffered path
    (which also handles a full socket, a lost connection, TLS and the producer's back-pressure).
    """
    from twisted.internet import tcp

    buffered_write = tcp.Connection.write

    def write(self, data):
        if (
            self.TLS
            or not self.connected
            or self._writeDisconnected
            or self._tempDataBuffer
            or self.offset < len(self.dataBuffer)
            or not isinstance(data, bytes)
        ):
            return buffered_write(self, data)
        sent = self.writeSomeData(data)
        if isinstance(sent, Exception):  # the connection is going: let the buffered path see to it
            return buffered_write(self, data)
        if sent < len(data):
            buffered_write(self, data[sent:])

    write.replaced = buffered_write  # what fingerprint() reads through
    tcp.Connection.write = write


# --- autobahn: debug text made only when logged ---------------------------------------------------------------


class LazyText:
    """`make(value)`, computed only if a log line is actually written."""

    __slots__ = ("make", "value")

    def __init__(self, make, value):
        self.make, self.value = make, value

    def __str__(self):
        return self.make(self.value)


def _lazy_debug_text() -> None:
    """Make autobahn's debug text only when a debug line is written.

    autobahn builds the arguments of its debug log calls whether or not debug logging is on: it
    pretty-prints its options and the transport's details on every connection (5 % of the server's
    CPU in a connect storm), and colours a function's name, the peer and a length on every frame it
    sends or receives (a fifth of the CPU of a queue update to 1,000 sockets, by py-spy). Each of
    those helpers now returns an object that makes the same text if a log line formats it.
    """
    for module_name, names in LAZY_TEXT.items():
        module = importlib.import_module(module_name)
        for name in names:
            make = getattr(module, name)
            if not isinstance(make, functools.partial):
                setattr(module, name, functools.partial(LazyText, make))


# --- autobahn: keep-alive pings, spread -----------------------------------------------------------------------

# How often daphne's timeout checker runs (daphne.server.Server.timeout_checker: every 2 s).
CHECKER_PERIOD = 2.0


class SpreadPings:
    """Mixin for daphne's WebSocket protocol: each keep-alive ping at a random moment of the checker's period.

    daphne pings a socket when its `--ping-interval` is up, from a checker that walks every connection
    every 2 s: with the default 20 s, a tenth of all sockets in one turn of the loop. At 10,000
    sockets that is a thousand frames written back to back while every request waits behind them (a
    quarter of the server's CPU and the p99 of a booking, by py-spy). The same pings, each deferred
    by up to one period, make no burst; one that comes due after its socket closed is not sent.
    """

    call_later: Callable | None = None  # the reactor's, unless a test gives its own

    def _sendAutoPing(self):  # noqa: N802 (autobahn's name; TARGETS)
        call_later = self.call_later
        if call_later is None:
            from twisted.internet import reactor  # the one daphne installed

            call_later = reactor.callLater
        call_later(random.random() * CHECKER_PERIOD, self._ping_if_open)

    def _ping_if_open(self):
        if self.state == self.STATE_OPEN:
            super()._sendAutoPing()  # autobahn's: the ping, and its timeout
