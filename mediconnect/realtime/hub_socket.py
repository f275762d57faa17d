"""What the process's sockets share: fed by the hub, frames written straight, outages closed with 4503.

`HubSocket` is the base of the user's socket (consumers.EventConsumer) and a display board's
(board_socket.BoardConsumer). It runs Channels' consumer loop without a layer channel of its own
(the hub hands it its groups' messages) and without a task or a database hop per message. Under
our server it writes text frames straight to the connection the server offers in the scope
(daphne_tuning.DirectSocket), and a frame that every socket of a group gets is framed once per
process (`send_shared`). A database or Redis
outage anywhere in its work accepts the socket if need be and closes it with 4503 (mediconnect.operations.outage).
"""

import logging

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from core.wire import CLOSE_SERVICE_UNAVAILABLE
from mediconnect.operations.outage import is_outage, log_outage
from mediconnect.realtime.failures import log_failure
from mediconnect.server.daphne_tuning import DirectSocket, prepare_text

logger = logging.getLogger(__name__)


class HubSocket(AsyncWebsocketConsumer):
    hub = None
    released = False
    accepted = False
    direct: DirectSocket | None = None

    async def __call__(self, scope, receive, send):
        self.scope, self.base_send, self.channel_layer = scope, send, None
        self.direct = DirectSocket.of(scope)  # offered by our server; None under a test's communicator
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        except Exception as exc:
            if not is_outage(exc):
                raise
            log_outage("websocket", exc)
            await self._close_unavailable()
        finally:  # every way out: a close, an error that got this far, a cancelled task
            self._release()

    async def dispatch(self, message):
        # Channels closes stale database connections before every handler, one thread hop per frame;
        # here only the handlers that touch the database do, through database_sync_to_async.
        handler = getattr(self, get_handler_name(message), None)
        if handler is not None:
            await handler(message)

    async def connect(self):
        try:
            await self._open()
        except Exception as exc:  # the database or the layer failed half-way: refuse, holding nothing
            self._release()
            if is_outage(exc):
                raise  # to __call__, which closes with 4503
            log_failure(logger, f"{type(self).__name__} connect", exc)
            await self.close()  # before accept, daphne answers the handshake with 403

    async def disconnect(self, code):
        self._release()

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        self.accepted = True

    async def _close_unavailable(self):
        """4503, "reconnect later": after an accept, since a refused handshake reads as a bad token (403)."""
        self._release()
        if not self.accepted:
            await self.accept()
        await self.close(code=CLOSE_SERVICE_UNAVAILABLE)

    async def send(self, text_data=None, bytes_data=None, close=False):
        if text_data is not None and bytes_data is None and not close and self._writable():
            self.direct.send_text(text_data)
            return
        await super().send(text_data, bytes_data, close)

    def send_shared(self, message: dict, text: str, key: str = "prepared"):
        """Send `text`, the same for every socket that gets `message`: framed once, kept on the message at `key`.

        Written at once when the socket takes frames straight (returns None: no coroutine, no await,
        for each of a thousand sockets); otherwise returns the awaitable of the ordinary send.
        """
        if not self._writable():
            return self.send(text)
        prepared = message.get(key)
        if prepared is None:
            prepared = message[key] = prepare_text(text)
        self.direct.send_prepared(prepared)
        return None

    def _writable(self) -> bool:
        return self.direct is not None and self.accepted and self.direct.writable()

    async def _open(self):
        """Join the socket's groups, read what it starts with, accept and send it."""
        raise NotImplementedError

    def _release(self):
        """Let go of the groups and whatever else the socket holds; safe to call more than once."""
        raise NotImplementedError
