"""The HTTP server's own defences, before the app sees a request: clients that are slow or greedy.

uvicorn waits for a request's headers as long as a client likes, and accepts as many connections from
one address as it opens: a few hundred connections that never finish their headers exhaust the
process's file descriptors. :func:`protocol` gives uvicorn an HTTP protocol that closes a connection
whose headers are not complete within ``header_timeout_s`` (on every request of a kept-alive connection),
and refuses a client address more than ``max_per_client`` connections at once. A trusted proxy's
address (``--forwarded-allow-ips``) is not capped: every client comes through it, and the proxy caps
them itself (SECURITY.md, "Behind a proxy"). A slow body is the app's to stop
(:mod:`dispatcher.web.security`).

    uvicorn.run(app, http=protocol(settings, "127.0.0.1"), ...)
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import os
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    from dispatcher.config import Settings

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(trusted: str | None) -> list[_Network]:
    found = []
    for item in (trusted or "").split(","):
        try:
            found.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            continue  # "*" or junk: trusts nobody here (uvicorn says what it makes of it)
    return found


def _trusted(host: str, networks: list[_Network]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


def _client_key(host: str) -> str:
    """The address an IPv6 client is counted by: its /64 (one subscriber holds a whole /64)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return host


def protocol(settings: Settings, trusted: str | None) -> type[H11Protocol]:
    """An h11 protocol class with the settings' ``header_timeout_s`` and ``max_connections_per_client``."""
    header_timeout_s = float(settings.header_timeout_s)
    max_per_client = settings.max_connections_per_client
    networks = _networks(trusted)
    open_by_client: collections.Counter[str] = collections.Counter()  # one event loop: no lock

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _counted: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else ""
            if host and not _trusted(host, networks):
                client = _client_key(host)
                if open_by_client[client] >= max_per_client:
                    transport.abort()
                    return
                open_by_client[client] += 1
                self._counted = client
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._counted is not None:
                open_by_client[self._counted] -= 1
                if open_by_client[self._counted] <= 0:
                    del open_by_client[self._counted]
                self._counted = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_request():
                self._disarm()  # the headers are in: the body has its own limit

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request on this connection has the same time for its headers

        def _in_request(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing() and not self._in_request():
                self._header_timer = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing() and not self._in_request():
                self.transport.close()

    return GuardedH11Protocol


def server_options(settings: Settings, trusted: str | None) -> dict[str, Any]:
    """What ``dispatcher web`` passes to ``uvicorn.run`` besides the app, host and port; ``trusted`` as
    its ``--forwarded-allow-ips`` (uvicorn's default when None)."""
    if trusted is None:
        trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    return {"http": protocol(settings, trusted), "h11_max_incomplete_event_size": 64 * 1024}
