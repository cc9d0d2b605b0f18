"""Each request's language: ``?lang=zh|en`` (remembered in a cookie), else the cookie, else the browser's
``Accept-Language``, else Simplified Chinese. Set for the whole request (``dispatcher.i18n``), so pages,
flash messages, errors and exports all speak it."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatcher import i18n

COOKIE = "lang"
YEAR_S = 365 * 24 * 3600


def _cookie(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header: as if there were none
                return None
            morsel = jar.get(COOKIE)
            return morsel.value if morsel is not None else None
    return None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


class LanguageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asked = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("lang") or [None])[0]
        chosen = i18n.normalise(asked) if asked else None
        locale = i18n.negotiate(chosen, _cookie(scope), _header(scope, b"accept-language"))
        i18n.set_locale(locale)
        scope.setdefault("state", {})["locale"] = locale

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start" and chosen:
                value = "zh" if chosen == "zh_CN" else "en"
                cookie = f"{COOKIE}={value}; Path=/; Max-Age={YEAR_S}; SameSite=Lax"
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, remember)
