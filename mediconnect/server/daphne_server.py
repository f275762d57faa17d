"""Our daphne: its `Server`, subclassed, with what the project adds to it in one place.

`python -m mediconnect.server` (cli.py) runs daphne's command line with this server (daphne's
`CommandLineInterface.server_class`), with the same flags as the `daphne` script. It:

- checks the private internals listed in patches.py and applies the process-wide patches before it
  starts, and refuses to start when one moved (patches.PatchError);
- closes every socket with 1012 on SIGTERM, after it stopped listening (graceful.py), by overriding
  daphne's shutdown trigger `kill_all_applications` and its `listen_success`;
- builds WebSockets with our protocol class (daphne_tuning.WebSocketProtocol: a bound on each
  socket's backlog, spread pings), and sets autobahn's options on the factory: `failByDrop` off, so
  a frame over the size limit gets a close frame with 1009 (by default autobahn drops TCP and the
  client sees 1006; nor can the application close with 1009 itself: autobahn accepts only 1000 and
  3000-4999 from it), and no per-message compression, so a prepared frame is written as framed;
- offers the application each WebSocket's connection for direct writes, as an ASGI scope extension
  (daphne_tuning.DIRECT_SOCKET);
- leaves a request body to Django: Twisted parses a form or multipart POST body for daphne, which
  never reads what it parsed, and answers a multipart body it cannot parse with a bare 400 of its
  own (no JSON, no log line) before the application sees it;
- bounds a request body at the largest any view takes (an upload: FILE_MAX_BYTES and its form),
  since daphne hands the application a whole body at once, in memory: past the bound the bytes are
  read and dropped, and the request is answered 413 (the contract's JSON) without the application.
"""

import asyncio
import json
import logging

from daphne import http_protocol
from daphne import server as daphne_server
from django.conf import settings
from twisted.internet import defer

from documents.uploads import FORM_ALLOWANCE
from mediconnect.server import graceful, patches
from mediconnect.server.daphne_tuning import DIRECT_SOCKET, DirectSocket, WebSocketProtocol

logger = logging.getLogger(__name__)


def body_limit() -> int:
    """The most bytes of body any request may carry: an upload's file and the rest of its form."""
    return settings.FILE_MAX_BYTES + FORM_ALLOWANCE


def too_large_body(path: bytes) -> bytes:
    """The 413's JSON: the upload's field error on /api/files/ (the contract's), else a `detail`."""
    from documents.services import file_too_large_message  # (models: not before the apps are loaded)

    if path.split(b"?", 1)[0] == b"/api/files/":
        return json.dumps({"file": [file_too_large_message()]}).encode()
    return json.dumps({"detail": "The request body is too large."}).encode()


class WebRequest(http_protocol.WebRequest):
    """daphne's request, without Twisted's parsing of form bodies (`parsePOSTFormSubmission`), and
    with its body bounded (`body_limit`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)
        self.body_received = 0
        self.body_too_large = False

    def handleContentChunk(self, data):  # noqa: N802 (Twisted's name)
        self.body_received += len(data)
        if self.body_received > body_limit():
            # Dropped, to the end of the body: neither memory nor the spool file grows with it.
            self.body_too_large = True
            return
        super().handleContentChunk(data)

    def process(self):
        if not self.body_too_large:
            return super().process()
        headers = [(b"Content-Type", b"application/json"), (b"Cache-Control", b"no-store")]
        self.handle_reply({"type": "http.response.start", "status": 413, "headers": headers})
        self.handle_reply({"type": "http.response.body", "body": too_large_body(self.uri)})
        return None


class HTTPFactory(http_protocol.HTTPFactory):
    def buildProtocol(self, addr):  # noqa: N802 (Twisted's name)
        channel = super().buildProtocol(addr)
        channel.requestFactory = WebRequest
        return channel


def _no_compression(offers):
    return None


class Server(daphne_server.Server):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ports = []  # the listening ports, stopped first on SIGTERM

    # daphne's `run` builds both factories with no hook between building and listening
    # (patches.TARGETS): ours are configured as run assigns them.

    @property
    def http_factory(self):
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory):
        self._http_factory = factory if isinstance(factory, HTTPFactory) else HTTPFactory(self)

    @property
    def ws_factory(self):
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory):
        factory.protocol = WebSocketProtocol
        factory.setProtocolOptions(failByDrop=False, perMessageCompressionAccept=_no_compression)
        self._ws_factory = factory

    def run(self):
        patches.apply()  # raises PatchError, with every reason, if a dependency moved
        super().run()

    def listen_success(self, port):
        self.ports.append(port)
        return super().listen_success(port)

    def create_application(self, protocol, scope):
        if isinstance(protocol, WebSocketProtocol):
            scope["extensions"] = {**scope.get("extensions", {}), DIRECT_SOCKET: {"socket": DirectSocket(protocol)}}
        return super().create_application(protocol, scope)

    def kill_all_applications(self):
        """SIGTERM: drain (graceful.py), then what daphne does before the reactor stops."""
        drained = defer.Deferred.fromFuture(asyncio.ensure_future(graceful.drain(self, self.ports)))
        drained.addErrback(lambda failure: logger.error("graceful shutdown failed: %s", failure.value))
        drained.addBoth(lambda _: super(Server, self).kill_all_applications())
        return drained
