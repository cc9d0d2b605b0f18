"""The one place that talks HTTP to a gateway: POST form, UTF-8, never a query string.

Two ways to send, one meaning: :meth:`Transport.send` (blocking, httpx: pulls, keywords, the web
app's balance) and :meth:`Transport.asend` (asyncio, aiohttp: the workers' sending core, many requests
in flight on one event loop; httpx's async pool stalls with tens of requests in flight, measured in
BENCHMARKS.md). Their failures are translated here, once, into ``dispatcher.errors``; what matters is
whether the request may have reached the gateway:

    connect error, connect/pool timeout      -> NotSentError         (safe to send again)
    read/write timeout, reset, protocol error -> OutcomeUnknownError  (the gateway may have it)
    HTTP status >= 400                        -> HTTPStatusError      (status and headers: the worker
                                                 retries a 429 or a 503 with Retry-After, and calls
                                                 any other 5xx unknown: the body was sent)
    a redirect (3xx)                          -> not followed: the 3xx is the answer

An account may override the vendor's service path (``service_path``: e.g. ``/Services/MsgSend.aspx``
where the vendor module posts to ``/Services/MsgSend.asmx``): requests under the vendor's path go under
the account's instead. :func:`for_account` builds a configured account's transport.

Several base URLs (Entinfo's two addresses) are used one at a time: after a connect failure or a
timeout the transport moves to the next address and stays there (sticky). Only a request that surely
never left (connect error or connect timeout) is tried again on the next address; a request whose
outcome is unknown is never sent a second time. Messages name the URL (no query, no form), never a
password.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlencode

import httpx

from dispatcher.errors import (
    ConfigError,
    DispatcherError,
    HTTPStatusError,
    NotSentError,
    OutcomeUnknownError,
)
from dispatcher.vendors.wire import Request

if TYPE_CHECKING:
    import aiohttp

    from dispatcher.config import AccountConfig

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
_USER_AGENT = "sms-dispatcher"
_FORM = "application/x-www-form-urlencoded"  # what httpx sends for ``data=``: the two paths post alike

# The request surely did not reach the gateway: safe to try the next address right away.
_NOT_SENT_FAILOVER = (httpx.ConnectError, httpx.ConnectTimeout)
# The address looks unhealthy: later requests go to the next address (Entinfo's 主备切换).
_SWITCH = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout)


@dataclass(frozen=True)
class Response:
    """A gateway's answer: the caller parses ``text`` with the vendor module."""

    status_code: int
    text: str
    url_used: str  # base URL + path, no query
    elapsed: float  # seconds


def _guess_encoding(content: bytes) -> str:
    # Answers without a charset: UTF-8 when valid, else the Chinese superset of GBK.
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def translate_error(exc: httpx.HTTPError, url: str) -> DispatcherError:
    """The dispatcher error for an httpx failure while POSTing to ``url``."""
    reason = _reason(exc)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigError(f"bad gateway address {url}: {reason}")
    if isinstance(
        exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.LocalProtocolError
    ):
        return NotSentError(f"request to {url} not sent ({reason})")
    if isinstance(exc, httpx.ProxyError):
        return NotSentError(f"request to {url} not sent: proxy failed ({reason})")
    # Read/write timeouts, resets, remote protocol errors and anything else: it may have arrived.
    return _unknown(url, reason)


def translate_aiohttp_error(exc: Exception, url: str) -> DispatcherError:
    """The dispatcher error for an aiohttp failure (or timeout) while POSTing to ``url``.

    aiohttp raises ``ClientConnectorError`` (refused, unreachable, DNS, TLS handshake, proxy) and
    ``ConnectionTimeoutError`` (the ``connect`` timeout: connecting, or waiting for a free connection of
    the pool) before a byte of the request is written; everything after (reset, server disconnected,
    ``SocketTimeoutError`` reading the answer, a broken answer) may come after the gateway read it."""
    import aiohttp  # here, not at the top: only a worker sends async (the CLI starts faster)

    reason = _reason(exc)
    if isinstance(exc, aiohttp.InvalidURL):
        return ConfigError(f"bad gateway address {url}: {reason}")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return NotSentError(f"request to {url} not sent ({reason})")
    return _unknown(url, reason)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _unknown(url: str, reason: str) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"request to {url} sent but no answer ({reason}); the gateway may have accepted it"
    )


class _Addresses:
    """The base URLs and which one is in use; a failure moves on only from the address that failed."""

    def __init__(self, base_urls: Sequence[str]) -> None:
        urls = [u.strip().rstrip("/") for u in base_urls if u.strip()]
        if not urls:
            raise ConfigError("a transport needs at least one gateway base URL")
        for url in urls:
            parsed = httpx.URL(url)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ConfigError(f"gateway base URL must be http(s)://host[:port][/path]: {url!r}")
            if parsed.userinfo or parsed.query:
                # Credentials go in the form only: a URL ends up in logs.
                raise ConfigError("gateway base URL must not carry credentials or a query string")
        self.urls = urls
        self._current = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> str:
        return self.urls[self._current]

    def order(self) -> list[int]:
        start = self._current
        return [(start + i) % len(self.urls) for i in range(len(self.urls))]

    def failed(self, index: int) -> None:
        # Compare-and-move: many concurrent failures on one address move on once, not round and round.
        with self._lock:
            if self._current == index:
                self._current = (index + 1) % len(self.urls)

    def failover(self, index: int, exc: Exception, url: str) -> DispatcherError:
        """After ``exc`` (httpx's or aiohttp's) on address ``index``: move on if the address looks
        unhealthy; return the error when the request surely never left (try the next address), raise it
        when it may have."""
        if isinstance(exc, httpx.HTTPError):
            error, switch, again = (
                translate_error(exc, url),
                isinstance(exc, _SWITCH),
                isinstance(exc, _NOT_SENT_FAILOVER),
            )
        else:
            import aiohttp

            error = translate_aiohttp_error(exc, url)
            again = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
            switch = again or isinstance(exc, TimeoutError)
        if switch:
            self.failed(index)
        if again:
            return error
        raise error from exc


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _check(request: Request) -> None:
    if request.method.upper() != "POST":
        raise ValueError(f"gateways are always POSTed a form, not {request.method}")


class _Paths:
    """Moves requests from the vendor's service path to the account's, when the account overrides it."""

    def __init__(self, service_path: tuple[str, str] | None) -> None:
        self._from, self._to = (p.rstrip("/") + "/" for p in service_path) if service_path else ("", "")

    def __call__(self, request: Request) -> str:
        if self._from and request.path.startswith(self._from):
            return self._to + request.path[len(self._from) :]
        return request.path


def _response(status: int, text: str, headers: Any, url: str, started: float) -> Response:
    elapsed = time.perf_counter() - started
    if status >= 400:
        raise HTTPStatusError(status, text, headers)
    return Response(status, text, url, elapsed)


def _total(timeout: httpx.Timeout) -> float | None:
    """aiohttp's bound on a whole request: its connect and read timeouts, and a second."""
    if timeout.connect is None or timeout.read is None:
        return None
    return timeout.connect + timeout.read + 1.0


def _client_options(timeout: float, connect_timeout: float | None, limits: httpx.Limits) -> dict[str, Any]:
    """The httpx client's options (the aiohttp session takes the same timeouts and limits)."""
    return {
        "timeout": httpx.Timeout(
            timeout, connect=connect_timeout if connect_timeout is not None else timeout
        ),
        "limits": limits,
        "follow_redirects": False,  # a redirect would turn the POST into a GET without the form
        "headers": {"User-Agent": _USER_AGENT},
        "default_encoding": _guess_encoding,
    }


class Transport:
    """One account's gateway (one or several base URLs): :meth:`send` blocks, :meth:`asend` awaits."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        service_path: tuple[str, str] | None = None,
    ) -> None:
        """``service_path``: ``(the vendor's, the account's)`` when the account overrides it."""
        self._addresses = _Addresses(base_urls)
        self._path = _Paths(service_path)
        self._options = _client_options(timeout, connect_timeout, limits)
        self._transport = transport
        self._sync: httpx.Client | None = None  # made on first send(): a worker never needs one
        self._sync_lock = threading.Lock()
        self._timeout: httpx.Timeout = self._options["timeout"]
        self._limits = limits
        self._form_headers = {"Content-Type": _FORM}
        self._aio: aiohttp.ClientSession | None = None
        self._aio_loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        """The address the next request goes to."""
        return self._addresses.current

    def send(self, request: Request) -> Response:
        _check(request)
        not_sent: DispatcherError | None = None
        for index in self._addresses.order():
            url = self._addresses.urls[index] + self._path(request)
            started = time.perf_counter()
            try:
                if request.charset == "utf-8":
                    resp = self._client().post(url, data=request.form)
                else:
                    body = urlencode(request.form, encoding=request.charset).encode("ascii")
                    resp = self._client().post(url, content=body, headers={"Content-Type": _FORM})
            except httpx.HTTPError as exc:
                not_sent = self._addresses.failover(index, exc, url)
                continue
            return _response(resp.status_code, resp.text, resp.headers, url, started)
        assert not_sent is not None
        raise not_sent

    async def asend(self, request: Request) -> Response:
        """:meth:`send` on the running event loop (aiohttp): the same addresses, paths and errors."""
        import aiohttp

        _check(request)
        session = self._session()
        body = urlencode(request.form, encoding=request.charset).encode("ascii")
        not_sent: DispatcherError | None = None
        for index in self._addresses.order():
            url = self._addresses.urls[index] + self._path(request)
            started = time.perf_counter()
            try:
                # No redirect, as the sync path: a 307/308 would post the form (and its password)
                # again wherever Location says, a 302 would turn it into a GET without the form.
                async with session.post(
                    url, data=body, headers=self._form_headers, allow_redirects=False
                ) as resp:
                    status, headers = resp.status, resp.headers
                    text = await resp.text(errors="replace")
            except (aiohttp.ClientError, TimeoutError) as exc:
                not_sent = self._addresses.failover(index, exc, url)
                continue
            return _response(status, text, headers, url, started)
        assert not_sent is not None
        raise not_sent

    def _session(self) -> aiohttp.ClientSession:
        """The aiohttp session of the running loop (made on first use there: a session is bound to
        its loop)."""
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._aio is None or self._aio_loop is not loop:
            self._aio = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._limits.max_connections or 0,
                    keepalive_timeout=self._limits.keepalive_expiry or 5.0,
                ),
                # connect: connecting, or waiting for a pooled connection (both: nothing sent yet).
                # sock_read bounds each read only: an answer trickling in would outlive every timeout
                # and the sender's lease. total bounds the whole request, and always fires after
                # connect would (a second beyond it, as aiohttp rounds timeouts of 5 s and more up to
                # a whole second): a request it ends was written, and is unknown.
                timeout=aiohttp.ClientTimeout(
                    total=_total(self._timeout),
                    connect=self._timeout.connect,
                    sock_read=self._timeout.read,
                ),
                headers={"User-Agent": _USER_AGENT},
                fallback_charset_resolver=lambda _resp, content: _guess_encoding(content),
            )
            self._aio_loop = loop
        return self._aio

    async def aclose(self) -> None:
        """Close the aiohttp session (on the loop it was made on)."""
        if self._aio is not None and self._aio_loop is asyncio.get_running_loop():
            await self._aio.close()
        self._aio = None  # a session of another loop (closed since) goes with it

    def _client(self) -> httpx.Client:
        # Its TLS context alone costs a worker ~0.1 s of CPU at start (py-spy, BENCHMARKS.md).
        with self._sync_lock:
            if self._sync is None:
                self._sync = httpx.Client(transport=self._transport, **self._options)
            return self._sync

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
        aio, loop = self._aio, self._aio_loop
        if aio is not None and loop is not None and loop.is_running() and not _on(loop):
            # Its session lives on another thread's loop (a worker's sending loop): closed there.
            asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def for_account(account: AccountConfig, *, timeout: float = 10.0) -> Transport:
    """The transport of a configured account: its address (and backup), and its own service path."""
    from dispatcher.vendors.registry import get as vendor_module

    urls = account.base_urls
    paths = (
        (vendor_module(account.vendor).SERVICE_PATH, account.service_path) if account.service_path else None
    )
    return Transport(urls, timeout=timeout, service_path=paths)
