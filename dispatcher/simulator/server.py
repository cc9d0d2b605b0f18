"""A small HTTP/1.1 server on asyncio + httptools (uvloop when available), with keep-alive.

Not uvicorn: simulating faults needs the connection itself, to reset it (RST, before any answer) or to
close it quietly after the request was accepted (the answer is lost). Requests on one connection are
answered in order; the vendor logic is synchronous, so an answer without latency is written at once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import cast

import httptools

from dispatcher.simulator.app import Response, SimulatorApp
from dispatcher.simulator.config import SimulatorConfig
from dispatcher.simulator.push import push_forever
from dispatcher.simulator.state import SimState

_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 500: b"Internal Server Error"}


def _head(status: int, content_type: str, length: int, keep_alive: bool) -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"")),
            b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type.encode(), length),
            b"" if keep_alive else b"Connection: close\r\n",
            b"\r\n",
        )
    )


class _Connection(asyncio.Protocol):
    def __init__(self, app: SimulatorApp, connections: set[_Connection]) -> None:
        self._app = app
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._pending: deque[tuple[str, bytes, bytes, bool]] = deque()
        self._busy = False  # waiting out a latency before answering

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports aren't subclasses
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.write(_head(400, "text/plain", 0, False))
                self._transport.close()

    # -- httptools callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        method = self._parser.get_method().decode("ascii", "replace")
        self._pending.append((method, self._url, b"".join(self._body), self._parser.should_keep_alive()))
        if not self._busy:
            self._serve()

    # -- answering --------------------------------------------------------------------------------

    def _serve(self) -> None:
        while self._pending and self._transport is not None:
            method, url, body, keep_alive = self._pending.popleft()
            path, _, query = url.partition(b"?")
            response = self._app.handle(method, path.decode("latin-1"), query, body, time.time())
            if response.delay > 0:
                self._busy = True
                loop = asyncio.get_running_loop()
                loop.call_later(response.delay, self._answer_later, response, keep_alive)
                return
            self._answer(response, keep_alive)
        self._busy = False

    def _answer_later(self, response: Response, keep_alive: bool) -> None:
        self._answer(response, keep_alive)
        self._serve()

    def _answer(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        if response.action == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:  # linger 0: close() sends RST instead of FIN
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            self._transport = None
        elif response.action == "drop":
            transport.close()
            self._transport = None
        else:
            body = response.body
            transport.write(_head(response.status, response.content_type, len(body), keep_alive) + body)
            if not keep_alive:
                transport.close()
                self._transport = None

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class SimulatorServer:
    """The simulator bound to a socket. ``await start()``, then ``base_url``; ``await stop()``."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.state = SimState(config)
        self.app = SimulatorApp(self.state)
        self.port = 0
        self._connections: set[_Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._push: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        host = self.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        factory: Callable[[], asyncio.Protocol] = lambda: _Connection(self.app, self._connections)  # noqa: E731
        self._server = await loop.create_server(
            factory, self.config.host, self.config.port, backlog=4096, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.config.push_url:
            self._push = asyncio.create_task(
                push_forever(self.state, self.config.push_url, self.config.push_interval)
            )

    async def stop(self) -> None:
        if self._push is not None:
            self._push.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._push
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.abort()
            await self._server.wait_closed()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it comes with uvicorn[standard]), else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


async def serve_forever(config: SimulatorConfig, on_ready: Callable[[SimulatorServer], None]) -> None:
    server = SimulatorServer(config)
    await server.start()
    on_ready(server)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
