"""The write-through TCP transport (sent at once when it can, never out of order, nothing lost), the bound on
a socket's backlog, autobahn's lazy debug text and the spread keep-alive pings."""

import socket

from twisted.internet import reactor, tcp
from twisted.internet.protocol import Protocol

from mediconnect.server.patches import apply, unsent_bytes


def write_through():
    apply()  # idempotent: the server's start, checks and patches


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
    return unsent_bytes(transport)


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

    apply()
    apply()  # idempotent: a second call wraps nothing twice
    options = [("autoPingInterval", 0), ("maxMessagePayloadSize", 65536)]
    text = protocol.pformat(options)
    assert not isinstance(text, str)  # nothing formatted yet
    assert f"{text}" == pprint.pformat(options)  # and the same text when a log line asks for it
    for module in (protocol, websocket):
        name, size = module.hltype(test_autobahns_debug_text_is_made_only_when_written), module.hlval(512)
        assert not isinstance(name, str) and not isinstance(size, str)
        assert f"{name}" == util.hltype(test_autobahns_debug_text_is_made_only_when_written)
        assert f"{size}" == util.hlval(512)


def test_a_connection_whose_backlog_passes_the_limit_is_dropped_by_its_producer(caplog):
    from mediconnect.server.daphne_tuning import BacklogLimit

    write_through()
    transport, peer = connection_pair(send_buffer=4096)
    limit = BacklogLimit(transport, 100_000)
    transport.registerProducer(limit, True)  # as our WebSocket protocol registers it
    transport.write(b"x" * 50_000)
    assert not limit.dropped  # under the limit: kept
    transport.write(b"y" * 200_000)  # the peer reads nothing: Twisted tells the producer, which drops it
    assert waiting(transport) > 100_000
    assert limit.dropped
    assert "websocket dropped: the client is not reading" in caplog.text
    transport.write(b"z" * 10)
    assert caplog.text.count("websocket dropped") == 1  # once
    for call in reactor.getDelayedCalls():  # the reactor does not run here: no connectionLost later
        if call.func == transport.connectionLost:
            call.cancel()
    transport.socket.close()
    peer.close()


def test_keep_alive_pings_are_spread_over_the_checkers_period_and_skip_closed_sockets():
    from unittest import mock

    from autobahn.websocket.protocol import WebSocketProtocol as Autobahn

    from mediconnect.server.daphne_tuning import WebSocketProtocol
    from mediconnect.server.patches import CHECKER_PERIOD

    sockets = [WebSocketProtocol.__new__(WebSocketProtocol) for _ in range(200)]
    scheduled = []
    for sock in sockets:
        sock.state = Autobahn.STATE_OPEN
        sock.call_later = lambda delay, f, *args: scheduled.append((delay, f, args))
    with mock.patch.object(Autobahn, "_sendAutoPing", autospec=True) as ping:
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
