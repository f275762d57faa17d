"""Our daphne server for real: its own `run`, a listening TCP port, daphne's and our protocols, and a socket's
application (a HubSocket); only the reactor's loop is replaced by reading and writing when a test waits.

What these show: a socket's application gets its connection for direct writes from our server, and
a frame that many sockets share is framed once and written straight to each; the limit on a
frame's size answers 1009; a client that does not read is dropped at the backlog limit.
"""

import asyncio
import json
import socket
import time
from unittest import mock

import daphne.server  # noqa: F401 (first: the asyncio reactor, as daphne installs it)
import pytest
from twisted.internet import reactor, tcp
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from mediconnect.realtime.hub_socket import HubSocket
from mediconnect.server.daphne_server import Server
from mediconnect.server.patches import unsent_bytes

TIMEOUT = 5


class Watcher(HubSocket):
    """A socket that says whether it writes straight, and is otherwise fed by the test as the hub feeds one."""

    opened: list["Watcher"] = []

    async def _open(self):
        await self.accept()
        Watcher.opened.append(self)
        await self.send(json.dumps({"type": "ready", "direct": self.direct is not None}))

    def _release(self):
        pass


class Client:
    """A WebSocket client on a TCP socket to the server; the server's side of it is pumped while it waits."""

    def __init__(self, server: Server, path: str = "/ws/"):
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1{path}"), max_size=None)
        self.socket = socket.create_connection(("127.0.0.1", server.ports[0].getHost().port), timeout=TIMEOUT)
        self.socket.setblocking(False)
        server.ports[0].doRead()  # the reactor's accept: daphne's HTTP channel on a Twisted TCP transport
        local = self.socket.getsockname()[1]
        (self.transport,) = [r for r in reactor.getReaders() if isinstance(r, tcp.Server) and r.getPeer().port == local]
        self.events: list = []
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _flush(self):
        self.socket.sendall(b"".join(self.protocol.data_to_send()))

    def pump(self) -> None:
        """What the reactor does for the server's side: read what came in, send what waits."""
        self.transport.doRead()
        if unsent_bytes(self.transport):
            self.transport.doWrite()
        try:
            data = self.socket.recv(1 << 20)
        except BlockingIOError:
            return
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self.events += self.protocol.events_received()
        self._flush()  # answers to pings and closes

    async def event(self):
        deadline = time.monotonic() + TIMEOUT
        while not self.events:
            assert time.monotonic() < deadline, "nothing came from the server"
            self.pump()
            await asyncio.sleep(0.01)  # the application's turn; bounded by the deadline
        return self.events.pop(0)

    async def opened(self) -> dict:
        response = await self.event()
        assert isinstance(response, Response) and response.status_code == 101, response
        return await self.json()

    async def json(self) -> dict:
        frame = await self.event()
        assert isinstance(frame, Frame) and frame.opcode == Opcode.TEXT, frame
        return json.loads(frame.data)

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def close(self):
        self.transport.stopReading()
        self.transport.stopWriting()
        self.transport.socket.close()
        self.socket.close()


@pytest.fixture
async def serve():
    """`serve(application, **daphne's options)`: our Server, started by its own `run` (the reactor's loop aside)."""
    servers, clients = [], []
    Watcher.opened.clear()

    def start(application, **options) -> Server:
        server = Server(application, endpoints=["tcp:port=0:interface=127.0.0.1"], signal_handlers=False, **options)
        with (
            mock.patch.object(reactor, "run"),
            mock.patch("daphne.server.globalLogBeginner"),  # Twisted's log, for the process: not in a test
            mock.patch("asyncio.set_event_loop"),  # the test's loop stays the loop
        ):
            server.run()
        servers.append(server)
        return server

    def connect(server, path="/ws/") -> Client:
        client = Client(server, path)
        clients.append(client)
        return client

    start.connect = connect
    yield start
    for client in clients:
        client.close()
    for server in servers:
        tasks = [d["application_instance"] for d in server.connections.values() if "application_instance" in d]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for port in server.ports:
            port.stopListening()


async def test_shared_frames_are_framed_once_and_written_straight_to_every_socket(serve):
    server = serve(Watcher.as_asgi())
    clients = [serve.connect(server) for _ in range(3)]
    for client in clients:
        assert await client.opened() == {"type": "ready", "direct": True}

    message = {"type": "queue.push"}
    text = json.dumps({"type": "queue_updated", "data": {"doctor": 7, "current": 3}})
    # What the hub does for a group's message: one call per socket, nothing to await when written straight.
    assert [watcher.send_shared(message, text) for watcher in Watcher.opened] == [None] * 3
    for client in clients:
        assert await client.json() == {"type": "queue_updated", "data": {"doctor": 7, "current": 3}}
    assert message["prepared"].payloadHybi.endswith(text.encode())  # framed once, kept on the message


async def test_a_frame_over_the_size_limit_is_answered_with_a_close_frame_1009(serve):
    server = serve(Watcher.as_asgi(), websocket_max_message_size=1024, websocket_max_frame_size=1024)
    client = serve.connect(server)
    await client.opened()
    client.send_text("x" * 2048)
    frame = await client.event()
    assert frame.opcode == Opcode.CLOSE and Close.parse(frame.data).code == 1009


async def test_a_client_that_does_not_read_is_dropped_at_the_backlog_limit(serve, settings, caplog):
    settings.WS_MAX_BACKLOG_BYTES = 200_000
    server = serve(Watcher.as_asgi())
    client, reader = serve.connect(server), serve.connect(server)
    await client.opened()
    await reader.opened()
    stalled, reading = Watcher.opened
    chunk = json.dumps({"type": "new_notification", "pad": "x" * 100_000})
    for _ in range(400):  # 40 MB, far past what the kernel buffers for a client that never reads
        if not stalled.direct.writable() or "websocket dropped" in caplog.text:
            break
        await stalled.send(chunk)
    assert "websocket dropped: the client is not reading" in caplog.text
    await reading.send(json.dumps({"type": "still_here"}))
    assert await reader.json() == {"type": "still_here"}  # the other socket carries on


@pytest.mark.parametrize("command", [["daphne"], ["python", "-m", "daphne"]])
def test_the_daphne_script_refuses_to_serve_the_application_without_our_server(command):
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings

    executable = (
        [str(Path(sys.executable).with_name("daphne"))] if command == ["daphne"] else [sys.executable, *command[1:]]
    )
    result = subprocess.run(
        [*executable, "-e", "tcp:port=0:interface=127.0.0.1", "mediconnect.asgi:application"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "python -m mediconnect.server" in result.stderr
