"""Graceful restarts under daphne: on SIGTERM, stop accepting, close every socket with 1012, then exit.

daphne leaves SIGTERM to Twisted, which stops the reactor: daphne's "before shutdown" trigger
(`Server.kill_all_applications`) cancels every application instance, and the reactor then drops
every connection without a close frame. The clients see 1006 and back off as after a crash. Our
server (daphne_server.Server) overrides that trigger to `drain` first: it stops the listening ports
(new connections are refused, so a load balancer sends them to another node), sends every open
socket a close frame with 1012 "service restart" (the portals reconnect at once and resume from
their last event id), and waits until the clients have answered and the consumers have finished,
and until the HTTP requests under way have been answered, for GRACE_SECONDS at most. (A consumer
hands its presence and socket count back in the background; one not done by the exit expires with
the TTL.)
A socket that opens meanwhile (its handshake was under way) is closed the same way.

1012 goes out through autobahn's `sendCloseFrame`: its public `sendClose` refuses codes below 3000
other than 1000, though 1012 is a registered close code for exactly this.
"""

import asyncio
import logging

from core.wire import CLOSE_SERVICE_RESTART

logger = logging.getLogger(__name__)

GRACE_SECONDS = 5.0  # autobahn drops a client that does not answer a close within 1 s
POLL_SECONDS = 0.05


def _websockets(server) -> list:
    from daphne.ws_protocol import WebSocketProtocol

    return [p for p in list(server.connections) if isinstance(p, WebSocketProtocol)]


def _requests_answered(server) -> bool:
    """No HTTP request is still being answered (a booking under way finishes before the exit; a
    load balancer would otherwise see its connection cut and answer 502)."""
    from daphne.ws_protocol import WebSocketProtocol

    for protocol, details in list(server.connections.items()):
        if isinstance(protocol, WebSocketProtocol):
            continue
        instance = details.get("application_instance")
        if instance is not None and not instance.done():
            return False
    return True


def _settled(server, protocol) -> bool:
    """The socket is closed and its consumer has finished."""
    details = server.connections.get(protocol)
    if details is None:
        return True
    instance = details.get("application_instance")
    return protocol.state == protocol.STATE_CLOSED and (instance is None or instance.done())


async def drain(server, ports) -> None:
    """Stop listening on `ports`, close every socket of `server` with 1012, wait for them and the requests under way."""
    from twisted.internet import defer

    for port in ports:
        await defer.maybeDeferred(port.stopListening).asFuture(asyncio.get_running_loop())
    sockets = _websockets(server)
    logger.info("shutting down: stopped listening; closing %d socket(s) with %d", len(sockets), CLOSE_SERVICE_RESTART)
    loop = asyncio.get_running_loop()
    started = loop.time()
    closed = set()
    while True:
        sockets = _websockets(server)
        for protocol in sockets:
            if protocol.state == protocol.STATE_OPEN and protocol not in closed:
                closed.add(protocol)
                protocol.sendCloseFrame(code=CLOSE_SERVICE_RESTART, reasonUtf8=b"service restart")
        settled = all(_settled(server, p) for p in sockets) and _requests_answered(server)
        if settled or loop.time() - started >= GRACE_SECONDS:
            logger.info(
                "shutting down: %d socket(s) closed in %.2f s%s",
                len(closed),
                loop.time() - started,
                "" if settled else "; the rest are dropped",
            )
            return
        await asyncio.sleep(POLL_SECONDS)
