"""Make daphne's WebSocket layer close an oversized frame with 1009, as the contract says.

daphne enforces the frame limit itself (`--websocket-max-message-size`), through autobahn, which
by default fails such a connection by dropping TCP: the client sees 1006, not 1009. Nor can the
application close with 1009 itself: autobahn accepts only 1000 and 3000-4999 from it. With
`failByDrop` off, autobahn sends the close frame with 1009 before it goes.
"""

from daphne import ws_protocol

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
