"""The load side: many authenticated sockets in one asyncio loop, and a keep-alive HTTP/1.1 client.

Every socket has a reader task that hands each frame (as text, unparsed) to a callback and records
how it ended: refused at the handshake, or closed by the server (with the close code).
"""

import asyncio
import collections
import json
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


class Sock:
    __slots__ = ("index", "user_id", "token", "ws", "reader", "open", "close_code")

    def __init__(self, index: int, user_id: int, token: str):
        self.index, self.user_id, self.token = index, user_id, token
        self.ws = None
        self.reader = None
        self.open = False
        self.close_code = None


class SocketPool:
    """`on_frame(sock, text, t)` is called for every frame after `ready`, with its arrival time."""

    def __init__(self, ws_url: str, on_frame=None):
        self.ws_url = ws_url
        self.on_frame = on_frame or (lambda sock, text, t: None)
        self.socks: list[Sock] = []
        self.refused: collections.Counter = collections.Counter()  # failed attempts, by reason
        self.refused_samples: dict[str, str] = {}
        self.closed_by_server: collections.Counter = collections.Counter()
        self.closing = False
        self.first_attempt = self.last_ready = self.last_settled = None

    @property
    def open_socks(self) -> list[Sock]:
        return [s for s in self.socks if s.open]

    async def open_all(
        self, users: list[tuple[int, str]], *, rate: float, ready_within: float, in_flight: int = 0, retries: int = 0
    ) -> None:
        """Open a socket per (user_id, token), starting `rate` a second; each gets `ready_within` s to be ready.

        With `in_flight`, at most that many handshakes at once (a client that backs off); with
        `retries`, the refused ones are tried again that many times. Without both, a storm.
        """
        self.first_attempt = time.perf_counter()
        socks = []
        for user_id, token in users:
            socks.append(Sock(len(self.socks), user_id, token))
            self.socks.append(socks[-1])
        for _attempt in range(1 + retries):
            await self._open_paced(socks, rate, ready_within, in_flight)
            socks = [s for s in socks if s.reader is None]
            if not socks:
                break

    async def _open_paced(self, socks: list[Sock], rate: float, ready_within: float, in_flight: int) -> None:
        gate = asyncio.Semaphore(in_flight) if in_flight else None
        tasks = []
        start = time.perf_counter()
        for i, sock in enumerate(socks):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if gate is not None:
                await gate.acquire()
            task = asyncio.create_task(self._open(sock, ready_within))
            if gate is not None:
                task.add_done_callback(lambda _task: gate.release())
            tasks.append(task)
        await asyncio.gather(*tasks)

    def _refuse(self, reason: str, exc: BaseException | None = None) -> None:
        self.refused[reason] += 1
        if exc is not None and reason not in self.refused_samples:
            self.refused_samples[reason] = str(exc)[:200]

    async def _open(self, sock: Sock, ready_within: float) -> None:
        try:
            await self._try_open(sock, ready_within)
        finally:
            self.last_settled = time.perf_counter()

    async def _try_open(self, sock: Sock, ready_within: float) -> None:
        sock.ws = None
        try:
            async with asyncio.timeout(ready_within):
                sock.ws = await connect(
                    f"{self.ws_url}?token={sock.token}",
                    open_timeout=None,
                    ping_interval=None,  # the server pings; the client answers
                    close_timeout=2,
                    compression=None,
                    proxy=None,
                    max_size=2**20,
                )
                ready = json.loads(await sock.ws.recv())
            if ready.get("type") != "ready":
                self._refuse(f"first frame {ready.get('type')}")
                sock.ws.transport.abort()
                return
        except InvalidStatus as exc:
            self._refuse(f"http {exc.response.status_code}", exc)
            return
        except TimeoutError as exc:
            self._refuse("timeout", exc)
            if sock.ws is not None:
                sock.ws.transport.abort()
            return
        except ConnectionClosed as exc:
            self._refuse(f"closed {exc.rcvd.code if exc.rcvd else 1006} before ready", exc)
            return
        except Exception as exc:  # any other handshake failure (reset, dropped) is counted, not raised
            cause = exc.__cause__ or exc.__context__
            self._refuse(type(exc).__name__ + (f" ({type(cause).__name__})" if cause else ""), exc)
            return
        sock.open = True
        self.last_ready = time.perf_counter()
        sock.reader = asyncio.create_task(self._read(sock))

    async def _read(self, sock: Sock) -> None:
        on_frame = self.on_frame
        try:
            async for text in sock.ws:
                on_frame(sock, text, time.perf_counter())
        except ConnectionClosed:
            pass
        finally:
            sock.open = False
            if not self.closing:
                sock.close_code = sock.ws.close_code or 1006
                self.closed_by_server[str(sock.close_code)] += 1

    async def send_each(self, make_frame, *, rate: float) -> None:
        """Send `make_frame(sock)` on every open socket, `rate` a second."""
        start = time.perf_counter()
        for i, sock in enumerate(self.open_socks):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if sock.open:
                try:
                    await asyncio.wait_for(sock.ws.send(make_frame(sock)), 5)
                except (ConnectionClosed, TimeoutError):
                    pass

    def abort_all(self) -> None:
        """Drop every socket at once (the bench is done with them); not counted as server closes."""
        self.closing = True
        for sock in self.socks:
            if sock.reader is not None:
                sock.reader.cancel()
            if sock.ws is not None:
                sock.ws.transport.abort()
            sock.open = False


class HttpClient:
    """One keep-alive HTTP/1.1 connection; JSON in, (status, body bytes) out; reconnects when dropped."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, method: str, path: str, body: dict | None = None, token: str | None = None, within=10.0):
        async with asyncio.timeout(within):
            for attempt in (1, 2):
                if self.writer is None:
                    await self._connect()
                try:
                    return await self._exchange(method, path, body, token)
                except (ConnectionError, asyncio.IncompleteReadError):
                    self.close()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    async def _exchange(self, method, path, body, token):
        data = json.dumps(body).encode() if body is not None else b""
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            "Accept: application/json",
            f"Content-Length: {len(data)}",
        ]
        if token:
            head.append(f"Authorization: Bearer {token}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await self.writer.drain()
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        headers = {}
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            payload = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            payload = b"".join(chunks)
        else:
            payload = await self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, payload
