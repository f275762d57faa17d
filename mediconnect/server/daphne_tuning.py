"""daphne's WebSocket protocol, tuned: a bound on each socket's backlog, keep-alive pings spread over time,
and frames written straight to the connection by the application (DirectSocket).

The protocol class is daphne's, subclassed; daphne_server.Server makes its WebSocket factory build it.
"""

import logging

from autobahn.websocket import protocol as autobahn_protocol
from daphne import ws_protocol
from django.conf import settings
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from mediconnect.server import patches

logger = logging.getLogger(__name__)

_OPEN = autobahn_protocol.WebSocketProtocol.STATE_OPEN

# The ASGI scope extension through which our server hands the application its connection
# (daphne_server.Server.create_application); the ASGI spec's place for what a server adds.
DIRECT_SOCKET = "mediconnect.direct_socket"


@implementer(IPushProducer)
class BacklogLimit:
    """Drop a connection once more than `limit` bytes wait to be sent to it.

    A client that stops reading (or a dead network path) leaves every frame for it in the
    transport's buffer, for as long as it stays connected: server memory without bound. Registered
    as the transport's streaming producer, it is told by Twisted whenever a write leaves more than
    the transport's bufferSize (64 KiB) waiting (`pauseProducing`); past the limit the connection is
    aborted at once, buffer and all (a close frame would only queue behind the backlog). The
    application hears a disconnect and the client resumes from its last event.
    """

    def __init__(self, transport, limit: int):
        self.transport, self.limit = transport, limit
        self.dropped = False

    def pauseProducing(self):  # noqa: N802 (Twisted's name)
        if self.dropped:
            return
        waiting = patches.unsent_bytes(self.transport)
        if waiting > self.limit:
            self.dropped = True
            logger.warning("websocket dropped: the client is not reading (%d bytes waiting to be sent)", waiting)
            self.transport.abortConnection()

    def resumeProducing(self):  # noqa: N802
        pass

    def stopProducing(self):  # noqa: N802
        pass


class WebSocketProtocol(patches.SpreadPings, ws_protocol.WebSocketProtocol):
    """daphne's WebSocket protocol, with the backlog bound and spread pings."""

    def connectionMade(self):  # noqa: N802 (Twisted's name)
        super().connectionMade()
        # daphne hands over the HTTP connection's transport, whose producer is still the HTTP channel
        # it came from (which only paused reading when the send buffer filled): the bound takes its place.
        self.transport.unregisterProducer()
        self.transport.registerProducer(BacklogLimit(self.transport, settings.WS_MAX_BACKLOG_BYTES), True)


class DirectSocket:
    """daphne's connection behind an ASGI `send`, for writing frames to it straight.

    A frame sent through ASGI goes through Channels' `send`, a coroutine of daphne's server, its
    protocol's `handle_reply` and `serverSend`, and autobahn's framing, every one for every socket:
    two thirds of the server's cost of a queue update to 1,000 watchers, by py-spy. Written straight,
    a text frame costs autobahn's `sendMessage`; one that many sockets share is framed once
    (`prepared`, autobahn's `PreparedMessage`, which it offers for exactly this broadcast) and costs
    one transport write per socket. A frame is written only to an open connection (`writable`), and
    the bound on a socket's backlog holds (it watches every write to the transport).

    Our server puts one in every WebSocket scope, under `extensions` (`of(scope)`); another server
    (a test's communicator) does not, and the application sends through ASGI.
    """

    __slots__ = ("protocol",)

    def __init__(self, protocol):
        self.protocol = protocol

    @staticmethod
    def of(scope) -> "DirectSocket | None":
        """The connection our server offers in this scope, or None under another server."""
        extension = scope.get("extensions", {}).get(DIRECT_SOCKET)
        return None if extension is None else extension["socket"]

    def writable(self) -> bool:
        """Open at both ends, as daphne requires before it sends (and autobahn, which raises otherwise).

        autobahn leaves STATE_OPEN before daphne hears of a close, so its state is the one to read.
        """
        return self.protocol.state == _OPEN

    def send_text(self, text: str) -> None:
        self.protocol.sendMessage(text.encode())

    def send_prepared(self, prepared: "autobahn_protocol.PreparedMessage") -> None:
        protocol = self.protocol
        if not protocol.send_queue:
            # What autobahn's sendPreparedMessage does with it when no compression was negotiated (our
            # factory accepts none), less a debug line's arguments and its traffic counters, which
            # nothing here reads (patches.TARGETS).
            protocol.transport.write(prepared.payloadHybi)
        else:  # writes queued before it: autobahn's own path keeps the order
            protocol.sendPreparedMessage(prepared)


def prepare_text(text: str) -> "autobahn_protocol.PreparedMessage":
    """A server's text frame (unmasked), framed once for any number of sockets."""
    return autobahn_protocol.PreparedMessage(text.encode(), False, False, False)
