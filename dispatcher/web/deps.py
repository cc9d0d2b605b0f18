"""Request dependencies: the context, the signed-in user (HTML and API flavours), CSRF, flash, templates."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.templating import Jinja2Templates
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from dispatcher import i18n, labels, reasons
from dispatcher.errors import DispatcherError
from dispatcher.store import Role, account_errors, audit
from dispatcher.web import auth
from dispatcher.web.auth import CurrentUser
from dispatcher.web.context import WebContext

log = logging.getLogger(__name__)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.add_extension("jinja2.ext.i18n")
# Added by the extension: the request's language (dispatcher.web.language) is read when a page renders.
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True, pgettext=i18n.pgettext, npgettext=i18n.npgettext
)
templates.env.filters.update(
    china_time=i18n.china_time,
    campaign_state=labels.campaign_state,
    recipient_state=labels.recipient_state,
    role=labels.role,
    history=labels.history_action,
    actor=labels.actor,
    vendor=labels.vendor,
    check_name=labels.check_name,
    reject_reason=lambda r: reasons.at_row(
        r["row"], r["column"], r.get("code"), r.get("params"), r["reason"]
    ),
    num=lambda n: f"{int(n or 0):,}",
    amount=labels.amount,
    paren=labels.paren,
)
CSRF_HEADER = "x-csrf-token"
GATE_USER = "dispatcher_gate_user"  # set by dispatcher.web.gate (which imports this module)
SESSION_ID = "sid"  # the cookie's key for the server-side session id


class LoginRequired(Exception):
    """An HTML page asked for without a session: the app redirects to the sign-in page."""


class CsrfFailed(Exception):
    pass


class Unavailable(DispatcherError):
    """A service the request needs does not answer (503)."""


def get_ctx(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


Ctx = Annotated[WebContext, Depends(get_ctx)]
# An id past 64 bits cannot even be bound to a query (SQLite raises): refused as a bad path (422).
CampaignId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = auth.new_csrf_token()
    return str(token)


def check_csrf(request: Request, given: str | None) -> None:
    if not auth.csrf_ok(request.session.get("csrf"), given):
        raise CsrfFailed


def session_user(request: Request, ctx: WebContext) -> CurrentUser | None:
    """The user of the browser's server-side session; None when there is none or it has ended."""
    token = request.session.get(SESSION_ID)
    if not isinstance(token, str):
        return None
    with ctx.sessions() as session:
        user = auth.session_owner(session, token)
    if user is None:  # signed out elsewhere, removed, role changed, or expired
        request.session.pop(SESSION_ID, None)
    return user


def _gate_user(request: Request) -> CurrentUser | None:
    """The user :mod:`dispatcher.web.gate` found from this very request's credentials, if it looked."""
    found = request.scope.get("state", {}).get(GATE_USER)
    return found if isinstance(found, CurrentUser) else None


def page_user(request: Request, ctx: Ctx) -> CurrentUser:
    user = _gate_user(request) or session_user(request, ctx)
    if user is None:
        raise LoginRequired
    return user


PageUser = Annotated[CurrentUser, Depends(page_user)]


def _unauthorized(message: str) -> HTTPException:
    # A Bearer challenge: no browser prompts for it or caches anything (a Basic one made browsers
    # keep the password and send it with cross-site requests).
    return HTTPException(401, message, headers={"WWW-Authenticate": 'Bearer realm="dispatcher"'})


def client_address(request: Request) -> str:
    """The socket peer, or what a trusted proxy said (uvicorn's ``--forwarded-allow-ips``)."""
    return request.client.host if request.client else "unknown"


def throttled(ctx: WebContext, name: str, address: str) -> int:
    """Count a sign-in attempt: 0 to go ahead, else seconds to wait (audited when a block starts).
    Redis down: sign-in is refused (503) rather than left unthrottled."""
    try:
        verdict = ctx.throttle.attempt(name, address)
    except RedisError:
        raise Unavailable("sign-in is unavailable for a moment (Redis does not answer)") from None
    if verdict.blocked_now:
        with ctx.sessions() as session:
            audit(session, name[:64] or "-", "login.blocked", address=address, seconds=verdict.wait_s)
            session.commit()
    return verdict.wait_s


def check_password(ctx: WebContext, name: str, password: str, address: str) -> CurrentUser | None:
    """The user if the password matches; failures are audited, a success resets the name's count."""
    with ctx.sessions() as session:
        user = auth.authenticate(session, name, password)
        if user is None:
            audit(session, name[:64] or "-", "login.failed", address=address)
            session.commit()
    if user is not None:
        with contextlib.suppress(RedisError):
            ctx.throttle.succeeded(name, address)
    return user


def api_user(request: Request, ctx: Ctx) -> CurrentUser:
    """A signed-in browser (its cookie alone; a changing call needs the CSRF header too), else a
    bearer token, else HTTP Basic (throttled like the sign-in page). Never Basic with a session.
    Checked once a request: the gate's finding, when it looked, stands."""
    gated = _gate_user(request)
    if gated is not None:
        return gated
    if isinstance(request.session.get(SESSION_ID), str):
        user = session_user(request, ctx)
        if user is None:
            raise _unauthorized("the session has ended: sign in again")
        if request.method not in ("GET", "HEAD", "OPTIONS") and not auth.csrf_ok(
            request.session.get("csrf"), request.headers.get(CSRF_HEADER)
        ):
            raise HTTPException(403, f"a session-authenticated call must send the {CSRF_HEADER} header")
        return user
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        with ctx.sessions() as session:
            user = auth.token_owner(session, credentials.strip())
        if user is None:
            raise _unauthorized("unknown or revoked API token")
        return user
    if scheme.lower() == "basic":
        try:
            name, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("malformed Basic credentials") from None
        address = client_address(request)
        wait = throttled(ctx, name, address)
        if wait:
            raise HTTPException(
                429, f"too many sign-in attempts: try again in {wait} s", headers={"Retry-After": str(wait)}
            )
        user = check_password(ctx, name, password, address)
        if user is None:
            raise _unauthorized("wrong user name or password")
        return user
    raise _unauthorized("sign in: Authorization: Bearer <token> (dispatcher user token NAME) or a session")


ApiUser = Annotated[CurrentUser, Depends(api_user)]


def flash(request: Request, message: str, kind: str = "info") -> None:
    request.session.setdefault("flash", []).append([kind, message])


def _account_errors(request: Request, locale: str) -> list[dict[str, Any]]:
    """Each configured account's current pull error (wrong password, IP not bound, ...), for the banner
    every page shows senders and admins until the error clears; the vendor's words in Chinese."""
    ctx = get_ctx(request)
    try:
        with ctx.sessions() as session:
            errors = account_errors.all_current(session, ctx.settings)
    except SQLAlchemyError:  # a page must still show when the store is away; that error shows itself
        log.exception("reading the accounts' errors failed")
        return []
    return [
        {"account": e.account, "code": e.code, "meaning": e.meaning if locale == "zh_CN" else e.meaning_en}
        for e in errors
    ]


def render(
    request: Request,
    name: str,
    user: CurrentUser | None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    messages = request.session.pop("flash", [])
    locale = i18n.current()
    problems = _account_errors(request, locale) if user is not None and user.can(Role.SENDER) else []
    other = ("en", "English") if locale == "zh_CN" else ("zh", "中文")
    switch = request.url.include_query_params(lang=other[0])
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "csrf": csrf_token(request),
            "messages": messages,
            "account_errors": problems,
            "Role": Role,
            "locale": locale,
            "html_lang": i18n.html_lang(locale),
            "other_lang": other,
            # The same page (its query kept: a sign-in's ``next``) in the other language.
            "switch_url": f"{switch.path}?{switch.query}",
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
