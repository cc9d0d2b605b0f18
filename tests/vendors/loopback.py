"""A tiny raw-socket HTTP server on loopback that can answer, fail, reset or stall, and records requests.

Raw sockets (not http.server) so that a test can reset the connection after the request was read.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Seen:
    method: str
    target: str  # path and query exactly as sent
    headers: dict[str, str]
    body: bytes


class Gateway:
    """``behaviour``: ``ok``, ``status`` (answer ``status``), ``reset``, ``stall`` (sleep ``delay``,
    then answer ``status``) or ``trickle`` (the answer one byte every ``delay``). ``headers`` are added
    to every answer."""

    def __init__(
        self,
        behaviour: str = "ok",
        *,
        answer: bytes = b'<string xmlns="http://tempuri.org/">2200001476358475197</string>',
        content_type: str = "text/xml; charset=utf-8",
        status: int = 200,
        delay: float = 1.0,
        port: int = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.behaviour, self.answer, self.content_type = behaviour, answer, content_type
        self.status, self.delay, self.headers = status, delay, dict(headers or {})
        self.seen: list[Seen] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> Seen | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return Seen(method, target, headers, body)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                seen = self._read_request(conn)
            except OSError:
                return
            if seen is None:
                return
            self.seen.append(seen)
            if self.behaviour == "reset":
                # Linger 0: close sends RST, after the whole request was read.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if self.behaviour == "stall":
                time.sleep(self.delay)
            status = self.status if self.behaviour in ("status", "stall") else 200
            extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            head = (
                f"HTTP/1.1 {status} X\r\nContent-Type: {self.content_type}\r\n{extra}"
                f"Content-Length: {len(self.answer)}\r\nConnection: close\r\n\r\n"
            )
            with contextlib.suppress(OSError):
                if self.behaviour == "trickle":
                    conn.sendall(head.encode("latin-1"))
                    for byte in self.answer:
                        time.sleep(self.delay)
                        conn.sendall(bytes([byte]))
                    return
                conn.sendall(head.encode("latin-1") + self.answer)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2)


@contextlib.contextmanager
def gateway(behaviour: str = "ok", **kwargs: object) -> Iterator[Gateway]:
    server = Gateway(behaviour, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.close()


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_url() -> str:
    """An address on loopback nobody listens on: connections are refused."""
    return f"http://127.0.0.1:{closed_port()}"
