"""The write-through TCP transport: sent at once when it can, never out of order, nothing lost."""

import socket

from twisted.internet import reactor, tcp
from twisted.internet.protocol import Protocol

from mediconnect.server.daphne_tuning import write_through


def connection_pair(send_buffer: int | None = None):
    """A Twisted TCP transport on one end of a socket pair, and the plain socket at the other end."""
    ours, theirs = socket.socketpair()
    if send_buffer:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    ours.setblocking(False)
    transport = tcp.Connection(ours, Protocol(), reactor)
    transport.connected = True  # as the listening port sets it for an accepted connection
    return transport, theirs


def waiting(transport) -> int:
    """Bytes the transport holds for the reactor to send later."""
    return transport._tempDataLen + len(transport.dataBuffer) - transport.offset


def drain(transport, peer, expected: int) -> bytes:
    """Read what the peer was sent, letting the transport send what it buffered (as the reactor would)."""
    peer.settimeout(5)
    received = b""
    while len(received) < expected:
        transport.doWrite()
        received += peer.recv(1 << 20)
    return received


def test_a_small_write_reaches_the_socket_before_the_loop_turns():
    write_through()
    transport, peer = connection_pair()
    transport.write(b'{"type":"queue_updated"}')
    assert waiting(transport) == 0  # nothing left for the reactor to do
    peer.settimeout(5)
    assert peer.recv(100) == b'{"type":"queue_updated"}'
    transport.socket.close()
    peer.close()


def test_what_a_full_socket_does_not_take_is_sent_later_in_order():
    write_through()
    transport, peer = connection_pair(send_buffer=4096)
    frames = [bytes([65 + i % 26]) * 50_000 for i in range(8)]
    for frame in frames:
        transport.write(frame)
    assert 0 < waiting(transport) < sum(map(len, frames))  # the socket took some; the rest waits
    assert drain(transport, peer, sum(map(len, frames))) == b"".join(frames)
    transport.stopWriting()
    transport.socket.close()
    peer.close()


def test_autobahns_debug_text_is_made_only_when_written():
    import pprint

    from autobahn import util
    from autobahn.twisted import websocket
    from autobahn.websocket import protocol

    from mediconnect.server.daphne_tuning import lazy_debug_text

    lazy_debug_text()
    lazy_debug_text()  # idempotent: a second call wraps nothing twice
    options = [("autoPingInterval", 0), ("maxMessagePayloadSize", 65536)]
    text = protocol.pformat(options)
    assert not isinstance(text, str)  # nothing formatted yet
    assert f"{text}" == pprint.pformat(options)  # and the same text when a log line asks for it
    for module in (protocol, websocket):
        name, size = module.hltype(test_autobahns_debug_text_is_made_only_when_written), module.hlval(512)
        assert not isinstance(name, str) and not isinstance(size, str)
        assert f"{name}" == util.hltype(test_autobahns_debug_text_is_made_only_when_written)
        assert f"{size}" == util.hlval(512)


def test_frames_are_written_straight_only_to_a_daphne_connection():
    import functools

    from autobahn.websocket.protocol import WebSocketProtocol
    from daphne.server import Server

    from mediconnect.server.daphne_tuning import DirectSocket

    class Protocol:  # what DirectSocket reads of daphne's protocol
        state = WebSocketProtocol.STATE_OPEN

    server = Server.__new__(Server)  # no reactor: only its bound handle_reply is used
    protocol = Protocol()
    direct = DirectSocket.behind(functools.partial(server.handle_reply, protocol))
    assert direct is not None and direct.protocol is protocol and direct.writable()

    protocol.state = WebSocketProtocol.STATE_CLOSING
    assert not direct.writable()

    async def other_send(message):  # another server's send, or a test communicator's
        return None

    assert DirectSocket.behind(other_send) is None


def test_a_connection_whose_backlog_passes_the_limit_is_dropped(settings):
    from types import SimpleNamespace

    from mediconnect.server.daphne_tuning import drop_if_backlogged

    settings.WS_MAX_BACKLOG_BYTES = 100_000
    write_through()
    transport, peer = connection_pair(send_buffer=4096)
    protocol = SimpleNamespace(transport=transport)
    transport.write(b"x" * 50_000)
    assert not drop_if_backlogged(protocol)  # under the limit: kept
    transport.write(b"y" * 200_000)  # the peer reads nothing
    assert waiting(transport) > 100_000
    assert drop_if_backlogged(protocol)
    assert transport._aborting
    assert not drop_if_backlogged(protocol)  # once
    for call in reactor.getDelayedCalls():  # the reactor does not run here: no connectionLost later
        if call.func == transport.connectionLost:
            call.cancel()
    transport.socket.close()
    peer.close()


def test_keep_alive_pings_are_spread_over_the_checkers_period_and_skip_closed_sockets():
    from unittest import mock

    from autobahn.websocket.protocol import WebSocketProtocol as Autobahn
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import reactor

    from mediconnect.server.daphne_tuning import CHECKER_PERIOD, spread_pings

    spread_pings()
    spread_pings()  # idempotent: a second call wraps nothing twice
    sockets = [WebSocketProtocol.__new__(WebSocketProtocol) for _ in range(200)]
    for sock in sockets:
        sock.state = Autobahn.STATE_OPEN
    scheduled = []
    with (
        mock.patch.object(reactor, "callLater", side_effect=lambda delay, f, *args: scheduled.append((delay, f, args))),
        mock.patch.object(Autobahn, "_sendAutoPing", autospec=True) as ping,
    ):
        for sock in sockets:  # what daphne's timeout checker does in one turn, for each socket that is due
            sock._sendAutoPing()
        assert ping.call_count == 0  # no frame written in the checker's turn
        delays = [delay for delay, _, _ in scheduled]
        assert len(delays) == 200 and all(0 <= delay < CHECKER_PERIOD for delay in delays)
        assert max(delays) - min(delays) > CHECKER_PERIOD / 2  # spread, not one burst

        sockets[0].state = Autobahn.STATE_CLOSED  # closed before its ping came due
        for _, f, args in scheduled:
            f(*args)
        assert ping.call_count == 199 and sockets[0] not in [call.args[0] for call in ping.call_args_list]
