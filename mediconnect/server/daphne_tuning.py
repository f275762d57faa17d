"""Tune the server under daphne: close oversized frames with 1009, write frames straight through, drop a
socket whose client does not read, spread the keep-alive pings, and make autobahn's debug text only
when it is logged.

1009: daphne enforces the frame limit itself (`--websocket-max-message-size`), through autobahn, which
by default fails such a connection by dropping TCP: the client sees 1006, not 1009. Nor can the
application close with 1009 itself: autobahn accepts only 1000 and 3000-4999 from it. With
`failByDrop` off, autobahn sends the close frame with 1009 before it goes.
"""

import functools
import logging
import random

from autobahn.twisted import websocket as autobahn_twisted
from autobahn.websocket import protocol as autobahn_protocol
from daphne import ws_protocol
from daphne.server import Server as DaphneServer
from django.conf import settings
from twisted.internet import tcp

logger = logging.getLogger(__name__)

_MARK = "_mediconnect_fails_with_close_frame"


def fail_with_close_frames() -> None:
    factory = ws_protocol.WebSocketFactory
    if getattr(factory, _MARK, False):
        return
    reset = factory.resetProtocolOptions

    def reset_then_close_cleanly(self):
        reset(self)
        self.failByDrop = False

    factory.resetProtocolOptions = reset_then_close_cleanly
    setattr(factory, _MARK, True)


def write_through() -> None:
    """Send a frame on the socket at once when nothing is waiting to be sent before it.

    Twisted's TCP transport buffers every write and sends it on the next turn of the loop: on the
    asyncio reactor daphne uses, that is an epoll registration, a callback and an unregistration
    per frame, about half the server's cost of a queue update to 1,000 sockets. Like asyncio's own
    transports, try the socket first and leave only what it did not take to the buffered path
    (which also handles a full socket, a lost connection and TLS).
    """
    connection = tcp.Connection
    if getattr(connection, "_mediconnect_write_through", False):
        return
    buffered_write = connection.write

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

    connection.write = write
    connection._mediconnect_write_through = True


def unsent_bytes(transport) -> int:
    """Bytes a Twisted TCP transport holds because the socket would not take them (0 for other transports)."""
    buffered = getattr(transport, "dataBuffer", b"")
    return len(buffered) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


def drop_if_backlogged(protocol) -> bool:
    """Drop the connection if more than WS_MAX_BACKLOG_BYTES wait to be sent to it; True if it was dropped.

    A client that stops reading (or a dead network path) leaves every frame for it in the
    transport's buffer, for as long as it stays connected: server memory without bound. Past the
    limit the connection is aborted at once, buffer and all (a close frame would only queue behind
    the backlog); the application hears a disconnect and the client resumes from its last event.
    """
    transport = protocol.transport
    if transport is None or getattr(transport, "_aborting", False):
        return False
    waiting = unsent_bytes(transport)
    if waiting <= settings.WS_MAX_BACKLOG_BYTES:
        return False
    logger.warning("websocket dropped: the client is not reading (%d bytes waiting to be sent)", waiting)
    transport.abortConnection()
    return True


def bounded_backlog() -> None:
    """Check the backlog after every frame daphne sends (one subtraction when all is well)."""
    protocol = ws_protocol.WebSocketProtocol
    if getattr(protocol, "_mediconnect_bounded_backlog", False):
        return
    send = protocol.serverSend

    def serverSend(self, content, binary=False):  # noqa: N802 (daphne's name)
        send(self, content, binary)
        drop_if_backlogged(self)

    protocol.serverSend = serverSend
    protocol._mediconnect_bounded_backlog = True


# How often daphne's timeout checker runs (daphne.server.Server.timeout_checker: every 2 s).
CHECKER_PERIOD = 2.0


def spread_pings() -> None:
    """Send each keep-alive ping at a random moment of the checker's period, not all in one turn.

    daphne pings a socket when its `--ping-interval` is up, from a checker that walks every connection
    every 2 s: with the default 20 s, a tenth of all sockets in one turn of the loop. At 10,000
    sockets that is a thousand frames written back to back while every request waits behind them (a
    quarter of the server's CPU and the p99 of a booking, by py-spy). The same pings, each deferred
    by up to one period, make no burst; one that comes due after its socket closed is not sent.
    """
    protocol = ws_protocol.WebSocketProtocol
    if getattr(protocol, "_mediconnect_spread_pings", False):
        return

    def ping_if_open(self):
        if self.state == _OPEN:
            super(protocol, self)._sendAutoPing()  # autobahn's: the ping, and its timeout

    def _sendAutoPing(self):  # noqa: N802 (autobahn's name)
        from twisted.internet import reactor  # the one daphne installed

        reactor.callLater(random.random() * CHECKER_PERIOD, ping_if_open, self)

    protocol._sendAutoPing = _sendAutoPing
    protocol._mediconnect_spread_pings = True


class _LazyText:
    """`make(value)`, computed only if a log line is actually written."""

    __slots__ = ("make", "value")

    def __init__(self, make, value):
        self.make, self.value = make, value

    def __str__(self):
        return self.make(self.value)


def lazy_debug_text() -> None:
    """Make autobahn's debug text only when a debug line is written.

    autobahn builds the arguments of its debug log calls whether or not debug logging is on: it
    pretty-prints its options and the transport's details on every connection (5 % of the server's
    CPU in a connect storm), and colours a function's name, the peer and a length on every frame it
    sends or receives (a fifth of the CPU of a queue update to 1,000 sockets, by py-spy). Each of
    those helpers now returns an object that makes the same text if a log line formats it.
    """
    for module in (autobahn_protocol, autobahn_twisted):
        for name in ("pformat", "hltype", "hlval"):
            make = getattr(module, name, None)
            if make is not None and not isinstance(make, functools.partial):
                setattr(module, name, functools.partial(_LazyText, make))


_OPEN = autobahn_protocol.WebSocketProtocol.STATE_OPEN


class DirectSocket:
    """daphne's connection behind an ASGI `send`, for writing frames to it straight.

    A frame sent through ASGI goes through Channels' `send`, a coroutine of daphne's server, its
    protocol's `handle_reply` and `serverSend`, and autobahn's framing, every one for every socket:
    two thirds of the server's cost of a queue update to 1,000 watchers, by py-spy. Written straight,
    a text frame costs autobahn's `sendMessage`; one that many sockets share is framed once
    (`prepared`, autobahn's `PreparedMessage`, which it offers for exactly this broadcast) and costs
    one transport write per socket. A frame is written only to an open connection (`writable`), and
    the bound on a socket's backlog holds.
    """

    __slots__ = ("server", "protocol")

    def __init__(self, server, protocol):
        self.server, self.protocol = server, protocol

    @classmethod
    def behind(cls, send) -> "DirectSocket | None":
        """The connection when `send` is daphne's (`partial(server.handle_reply, protocol)`), else None."""
        if (
            isinstance(send, functools.partial)
            and len(send.args) == 1
            and getattr(send.func, "__func__", None) is DaphneServer.handle_reply
        ):
            return cls(send.func.__self__, send.args[0])
        return None

    def writable(self) -> bool:
        """Open at both ends, as daphne requires before it sends (and autobahn, which raises otherwise).

        autobahn leaves STATE_OPEN before daphne hears of a close, so its state is the one to read.
        """
        return self.protocol.state == _OPEN

    def send_text(self, text: str) -> None:
        self.protocol.sendMessage(text.encode())
        drop_if_backlogged(self.protocol)

    def send_prepared(self, prepared: "autobahn_protocol.PreparedMessage") -> None:
        protocol = self.protocol
        if protocol._perMessageCompress is None and not protocol.send_queue:
            # What autobahn's sendData does with it, less a debug line's arguments and its traffic
            # counters, which nothing here reads.
            protocol.transport.write(prepared.payloadHybi)
        else:  # compressed per message, or writes queued before it: autobahn's own path
            protocol.sendPreparedMessage(prepared)
        drop_if_backlogged(protocol)


def prepare_text(text: str) -> "autobahn_protocol.PreparedMessage":
    """A server's text frame (unmasked), framed once for any number of sockets."""
    return autobahn_protocol.PreparedMessage(text.encode(), False, False, False)
