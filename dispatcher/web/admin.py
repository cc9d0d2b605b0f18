"""HTML pages around campaigns: sign-in, opt-out list, replies, accounts (with balance), users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from dispatcher import labels
from dispatcher.errors import DispatcherError
from dispatcher.i18n import N_
from dispatcher.i18n import gettext as _
from dispatcher.labels import describe
from dispatcher.store import OptOut, ReplyRow, Role, User, audit
from dispatcher.web import actions, auth
from dispatcher.web.deps import (
    SESSION_ID,
    Ctx,
    PageUser,
    check_csrf,
    check_password,
    client_address,
    flash,
    render,
    session_user,
    throttled,
)

router = APIRouter(include_in_schema=False)
PAGE = 200
MAX_PAGE = 10**9  # beyond it an offset would not fit a 64-bit integer (SQLite raises)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _local(target: str) -> str:
    # Only a path on this site: "//evil.example" or "https://..." would make sign-in an open redirect.
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/campaigns"


@router.get("/login")
def login_page(request: Request, ctx: Ctx, next: str = "/campaigns") -> Response:
    if session_user(request, ctx) is not None:
        return _redirect(_local(next))
    return render(request, "login.html", None, next=_local(next))


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/campaigns",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    name, address = name.strip(), client_address(request)
    wait = throttled(ctx, name, address)
    if wait:
        return render(
            request,
            "login.html",
            None,
            status_code=429,
            headers={"Retry-After": str(wait)},
            next=_local(next),
            error=_("too many attempts, try again in %(seconds)s s") % {"seconds": wait},
        )
    user = check_password(ctx, name, password, address)
    if user is None:
        return render(
            request, "login.html", None, status_code=401, next=_local(next), error=_("wrong name or password")
        )
    request.session.clear()  # a fresh session (and CSRF token) on sign-in: no fixation
    with ctx.sessions() as session:
        request.session[SESSION_ID] = auth.start_session(session, user)
        audit(session, user.name, "login", address=address)
        session.commit()
    return _redirect(_local(next))


@router.post("/logout")
def logout(request: Request, ctx: Ctx, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    token = request.session.get(SESSION_ID)
    if isinstance(token, str):
        with ctx.sessions() as session:
            auth.end_session(session, token)  # the cookie, even if kept somewhere, is now worthless
    request.session.clear()
    return _redirect("/login")


@router.get("/optouts")
def optouts(request: Request, ctx: Ctx, user: PageUser, q: str = "", page: int = 0) -> Response:
    actions.require(user, Role.SENDER, N_("seeing the opt-out list (phone numbers)"))
    page = min(max(page, 0), MAX_PAGE)
    with ctx.sessions() as session:
        query = select(OptOut).order_by(OptOut.id.desc())
        total_q = select(func.count()).select_from(OptOut)
        if q.strip():
            query = query.where(OptOut.mobile.contains(q.strip()))
            total_q = total_q.where(OptOut.mobile.contains(q.strip()))
        rows = session.execute(query.offset(page * PAGE).limit(PAGE)).scalars().all()
        total = session.execute(total_q).scalar_one()
    return render(request, "optouts.html", user, rows=rows, total=total, q=q, page=page, page_size=PAGE)


@router.post("/optouts")
def optouts_add(
    request: Request,
    ctx: Ctx,
    user: PageUser,
    mobiles: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    added, invalid = actions.add_optouts(ctx, user, mobiles.split(), note or None)
    flash(request, _("%(count)s numbers added to the opt-out list") % {"count": added})
    if invalid:
        shown = ", ".join(invalid[:10]) + (" …" if len(invalid) > 10 else "")
        flash(
            request,
            _("%(count)s entries are not mobile numbers: %(shown)s")
            % {"count": len(invalid), "shown": shown},
            "error",
        )
    return _redirect("/optouts")


@router.post("/optouts/remove")
def optouts_remove(
    request: Request,
    ctx: Ctx,
    user: PageUser,
    mobile: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    actions.remove_optout(ctx, user, mobile)
    flash(request, _("%(mobile)s removed from the opt-out list") % {"mobile": mobile})
    return _redirect("/optouts")


@router.get("/replies")
def replies(request: Request, ctx: Ctx, user: PageUser, page: int = 0) -> Response:
    actions.require(user, Role.SENDER, N_("seeing replies (phone numbers)"))
    page = min(max(page, 0), MAX_PAGE)
    with ctx.sessions() as session:
        rows = (
            session.execute(select(ReplyRow).order_by(ReplyRow.id.desc()).offset(page * PAGE).limit(PAGE))
            .scalars()
            .all()
        )
    return render(request, "replies.html", user, rows=rows, page=page, page_size=PAGE)


@router.get("/accounts")
def accounts(request: Request, ctx: Ctx, user: PageUser, balance: str = "") -> Response:
    shown = None
    if balance:
        actions.require(user, Role.SENDER, N_("asking a vendor for the balance"))
        shown = actions.balance(ctx, balance)
    return render(request, "accounts.html", user, accounts=ctx.settings.accounts, balance=shown)


@router.get("/users")
def users(request: Request, ctx: Ctx, user: PageUser) -> Response:
    actions.require(user, Role.ADMIN, N_("managing users"))
    with ctx.sessions() as session:
        rows = session.execute(select(User).order_by(User.name)).scalars().all()
    return render(request, "users.html", user, rows=rows, roles=list(Role))


@router.post("/users")
def users_add(
    request: Request,
    ctx: Ctx,
    user: PageUser,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "viewer",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    actions.require(user, Role.ADMIN, N_("managing users"))
    try:
        with ctx.sessions() as session:
            auth.add_user(session, name.strip(), password, role, actor=user.name)
        flash(
            request, _("user %(name)s added (%(role)s)") % {"name": name.strip(), "role": labels.role(role)}
        )
    except DispatcherError as exc:
        flash(request, describe(exc), "error")
    return _redirect("/users")


@router.post("/users/{name}/role")
def users_role(
    request: Request,
    ctx: Ctx,
    user: PageUser,
    name: str,
    role: Annotated[str, Form()] = "viewer",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    actions.require(user, Role.ADMIN, N_("managing users"))
    try:
        with ctx.sessions() as session:
            auth.set_role(session, name, role, actor=user.name)
        flash(request, _("user %(name)s is now %(role)s") % {"name": name, "role": labels.role(role)})
    except (DispatcherError, ValueError) as exc:
        flash(request, describe(exc), "error")
    return _redirect("/users")


@router.post("/users/{name}/remove")
def users_remove(
    request: Request, ctx: Ctx, user: PageUser, name: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, csrf)
    actions.require(user, Role.ADMIN, N_("managing users"))
    if name == user.name:
        flash(request, _("you cannot remove yourself"), "error")
        return _redirect("/users")
    try:
        with ctx.sessions() as session:
            auth.remove_user(session, name, actor=user.name)
        flash(request, _("user %(name)s removed") % {"name": name})
    except DispatcherError as exc:
        flash(request, describe(exc), "error")
    return _redirect("/users")
