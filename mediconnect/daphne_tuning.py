"""Tune the server under daphne: close oversized frames with 1009, write frames straight through, drop a
socket whose client does not read, and make autobahn's debug text only when it is logged.

1009: daphne enforces the frame limit itself (`--websocket-max-message-size`), through autobahn, which
by default fails such a connection by dropping TCP: the client sees 1006, not 1009. Nor can the
application close with 1009 itself: autobahn accepts only 1000 and 3000-4999 from it. With
`failByDrop` off, autobahn sends the close frame with 1009 before it goes.
"""

import logging
import pprint

from autobahn.websocket import protocol as autobahn_protocol
from daphne import ws_protocol
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


class _LazyPformat:
    """pprint.pformat(value), computed only if a log line is actually written."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return pprint.pformat(self.value)


def lazy_debug_text() -> None:
    """Make autobahn's debug text only when a debug line is written.

    autobahn pretty-prints its options and the transport's details into debug log calls on every
    connection, whether or not debug logging is on: 5 % of the server's CPU in a connect storm, by
    py-spy. The text is now made only if such a line is actually formatted.
    """
    autobahn_protocol.pformat = _LazyPformat
