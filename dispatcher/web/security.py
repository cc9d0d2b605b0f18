"""Security headers on every response; refusal of state-changing requests from other sites, and of
bodies larger than the app accepts, before anything reads them.

Pages carry a Content-Security-Policy without inline script (the templates load ``/static/*.js``), may
not be framed, send no referrer off-site and are not cached. A POST, PUT, PATCH or DELETE whose
``Origin`` (or, without one, ``Referer``) is another site's gets 403 whatever it authenticates with:
that closes cross-site forms, including ones riding on credentials a browser keeps. "This site" is
``public_url`` when set, and the ``Host`` the request was sent to. Requests with neither header
(scripts, curl) and the vendors' push receivers (``/push/``, authenticated by their own token) pass.

FastAPI parses (and spools to disk) a multipart body before any dependency checks who sent it, so a
body is limited here, before the app sees it: to the upload limit on the upload routes, to
:data:`MAX_BODY` elsewhere; a body that pauses longer than ``body_timeout_s``, or is not complete
within ``body_deadline_s`` however steadily it trickles, ends as if the client had left. A multipart
body (files) is refused from its headers (415) on every route but the uploads: nothing else takes a
file, and a thousand parts would be parsed and held before the route could look at them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import anyio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HSTS = "max-age=31536000"
MAX_BODY = 16 << 20  # forms, JSON, pushed reports (a push carries at most 5 MB)
SMALL_BODY = 64 << 10  # the sign-in form: the only body a stranger may send but a vendor's push
UPLOAD_PATHS = frozenset({"/uploads", "/api/campaigns", "/api/campaigns/preview"})
MULTIPART_SLACK = 1 << 20  # the form's other fields and the multipart framing around the file
FORM_FIELDS = 32  # fields a form may have (the compose form has about fifteen)
# The longest field: a template over its 2,000 characters still arrives whole, to be refused naming
# that limit (Starlette's own default; the body's own cap bounds all fields together).
FIELD_BYTES = 1 << 20


def _netloc(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return parts.netloc.lower() if parts.scheme in ("http", "https") and parts.netloc else None


class SecurityMiddleware:
    """Pure ASGI (no body buffering): checks the request line and headers, then adds headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        public_url: str | None,
        https: bool,
        max_upload_bytes: int,
        body_timeout_s: float = 30.0,
        body_deadline_s: float = 600.0,
    ) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.body_deadline_s = body_deadline_s
        self.public = _netloc(public_url) if public_url else None
        self.https = https
        self.upload_limit = max_upload_bytes + MULTIPART_SLACK

    def cross_site(self, headers: dict[bytes, bytes]) -> bool:
        source = headers.get(b"origin") or headers.get(b"referer")
        if source is None:
            return False
        netloc = _netloc(source.decode("latin-1"))  # "null" and junk have none: refused
        own = {headers.get(b"host", b"").decode("latin-1").lower(), self.public}
        return netloc is None or netloc not in own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = dict(scope["headers"])
        if scope["method"] not in SAFE_METHODS:
            # One reading of the body's framing for everyone: a repeated type or length (this dict keeps
            # the last, Starlette the first), or a length beside a chunked body (the chunks are what
            # is read), would let a body past the checks below.
            named = [name.lower() for name, _ in scope["headers"]]
            framing = [named.count(h) for h in (b"content-type", b"content-length", b"transfer-encoding")]
            if max(framing) > 1 or (framing[1] and framing[2]):
                await self._refuse(path, send, 400, "ambiguous request framing")
                return
            if not path.startswith("/push/") and self.cross_site(headers):
                await self._refuse(path, send, 403, "cross-site request refused")
                return
            kind = headers.get(b"content-type", b"").lstrip().lower()
            # (The push receivers read their body raw, never as a form: a vendor's is taken as sent.)
            if kind.startswith(b"multipart/") and path not in UPLOAD_PATHS and not path.startswith("/push/"):
                await self._refuse(path, send, 415, "files are taken by the upload routes only")
                return
            limit = (
                self.upload_limit if path in UPLOAD_PATHS else SMALL_BODY if path == "/login" else MAX_BODY
            )
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                await self._refuse(path, send, 413, f"request body larger than {limit:,} bytes")
                return
            if length is None:
                receive = _capped(receive, limit)
            receive = paced = _Paced(receive, self.body_timeout_s, self.body_deadline_s)
        else:
            paced = None
        static = path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", CSP.encode()))
                if not static and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                if self.https:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                if paced is not None and paced.cut:  # the rest of the body is never read: close
                    extra.append((b"connection", b"close"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, path: str, send: Send, status: int, reason: str) -> None:
        if path.startswith("/api/"):
            body = json.dumps({"detail": reason}).encode()
            kind = b"application/json"
        else:
            body = f"<h1>{status} - {reason}</h1><p>Open the page on this site and try again.</p>".encode()
            kind = b"text/html; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(body)).encode()),
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _capped(receive: Receive, limit: int) -> Receive:
    """A chunked body (no Content-Length) cut off past ``limit``: the app sees the client leave."""
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}
        return message

    return capped


class _Paced:
    """``receive`` for a body whose next part takes longer than ``idle_s``, or that is not complete
    ``deadline_s`` after it was first asked for: it ends as a disconnect, and :attr:`cut` says so (the
    answer then closes the connection: the server would otherwise go on reading the rest of the body
    to keep the connection, for as long as the client trickles it). Once the body is complete,
    ``receive`` only waits for the client to leave (a streamed answer): no limit then."""

    def __init__(self, receive: Receive, idle_s: float, deadline_s: float) -> None:
        self.receive = receive
        self.idle_s = idle_s
        self.deadline_s = deadline_s
        self.complete = False
        self.cut = False
        self.ends_at: float | None = None

    async def __call__(self) -> Message:
        if self.complete:
            return await self.receive()
        now = anyio.current_time()
        if self.ends_at is None:
            self.ends_at = now + self.deadline_s
        message: Message | None = None
        with anyio.move_on_after(min(self.idle_s, max(0.0, self.ends_at - now))):
            message = await self.receive()
        if message is None:
            self.cut = self.complete = True
            return {"type": "http.disconnect"}
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.complete = True
        return message
