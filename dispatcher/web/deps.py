"""Request dependencies: the context, the signed-in user (HTML and API flavours), CSRF, flash, templates."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from dispatcher.store import Role
from dispatcher.web import auth
from dispatcher.web.auth import CurrentUser
from dispatcher.web.context import WebContext

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
CSRF_HEADER = "x-csrf-token"


class LoginRequired(Exception):
    """An HTML page asked for without a session: the app redirects to the sign-in page."""


class CsrfFailed(Exception):
    pass


def get_ctx(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


Ctx = Annotated[WebContext, Depends(get_ctx)]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = auth.new_csrf_token()
    return str(token)


def check_csrf(request: Request, given: str | None) -> None:
    if not auth.csrf_ok(request.session.get("csrf"), given):
        raise CsrfFailed


def session_user(request: Request, ctx: WebContext) -> CurrentUser | None:
    name = request.session.get("user")
    if not isinstance(name, str):
        return None
    with ctx.sessions() as session:
        user = auth.load_user(session, name)
    if user is None:  # removed since signing in
        request.session.pop("user", None)
    return user


def page_user(request: Request, ctx: Ctx) -> CurrentUser:
    user = session_user(request, ctx)
    if user is None:
        raise LoginRequired
    return user


PageUser = Annotated[CurrentUser, Depends(page_user)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Basic realm="dispatcher"'})


def api_user(request: Request, ctx: Ctx) -> CurrentUser:
    """HTTP Basic, or the browser's session cookie (then a changing call needs the CSRF header too)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            name, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("malformed Basic credentials") from None
        with ctx.sessions() as session:
            user = auth.authenticate(session, name, password)
        if user is None:
            raise _unauthorized("wrong user name or password")
        return user
    user = session_user(request, ctx)
    if user is None:
        raise _unauthorized("sign in: HTTP Basic credentials or a session cookie")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not auth.csrf_ok(
        request.session.get("csrf"), request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(403, f"a session-authenticated call must send the {CSRF_HEADER} header")
    return user


ApiUser = Annotated[CurrentUser, Depends(api_user)]


def flash(request: Request, message: str, kind: str = "info") -> None:
    request.session.setdefault("flash", []).append([kind, message])


def render(
    request: Request, name: str, user: CurrentUser | None, status_code: int = 200, **context: Any
) -> Response:
    messages = request.session.pop("flash", [])
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "csrf": csrf_token(request),
            "messages": messages,
            "Role": Role,
            **context,
        },
        status_code=status_code,
    )
