"""HTML pages for campaigns: list, upload → compose → preview → create, the campaign page and its buttons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from dispatcher import campaigns
from dispatcher.config import format_window
from dispatcher.errors import DispatcherError, InputError
from dispatcher.store import AuditEntry, Campaign, Role
from dispatcher.web import actions, uploads
from dispatcher.web.deps import CampaignId, Ctx, PageUser, check_csrf, flash, render
from dispatcher.web.exports import export_response

router = APIRouter(include_in_schema=False)
ACTIONS = ("start", "pause", "resume", "cancel", "retry", "approve")


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def parse_start(value: str | None, timezone: str) -> datetime | None:
    """``2026-11-22T09:00`` from a datetime-local input, read in the campaign's time zone (China time)."""
    if not value or not value.strip():
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"start time {value!r} is not a date and time (e.g. 2026-11-22T09:00)") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(timezone))


@router.get("/")
def home() -> Response:
    return _redirect("/campaigns")


@router.get("/campaigns")
def campaign_list(request: Request, ctx: Ctx, user: PageUser) -> Response:
    with ctx.sessions() as session:
        rows = session.execute(select(Campaign).order_by(Campaign.id.desc()).limit(500)).scalars().all()
    return render(request, "campaigns.html", user, campaigns=rows)


@router.get("/campaigns/new")
def new_campaign(request: Request, ctx: Ctx, user: PageUser) -> Response:
    actions.require(user, Role.SENDER, "creating a campaign")
    return render(request, "upload.html", user, max_mb=ctx.max_upload_bytes // (1024 * 1024))


@router.post("/uploads")
def upload(
    request: Request,
    ctx: Ctx,
    user: PageUser,
    file: UploadFile,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    actions.require(user, Role.SENDER, "uploading a contact list")
    try:
        saved = uploads.save(ctx.upload_dir, file.file, file.filename or "", user.name, ctx.max_upload_bytes)
    except InputError as exc:
        return render(
            request,
            "upload.html",
            user,
            status_code=413 if isinstance(exc, uploads.UploadTooLarge) else 400,
            max_mb=ctx.max_upload_bytes // (1024 * 1024),
            error=str(exc),
        )
    return _redirect(f"/uploads/{saved.token}")


def _compose(
    request: Request,
    ctx: Ctx,
    user: PageUser,
    token: str,
    form: dict[str, str],
    preview: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    saved = uploads.find(ctx.upload_dir, token, user)
    # In the sandbox: a crafted file gets its refusal page here, however often it is opened.
    seen = uploads.inspect(ctx, saved, form.get("sheet") or None, form.get("phone_column") or None)
    if seen.columns is None and seen.error and status_code < 400:
        status_code = 400  # nothing usable in this file (or sheet): say so in the status, too
    balance = None
    if preview is not None and form.get("account") in ctx.settings.accounts:
        balance = actions.balance(ctx, form["account"])
    return render(
        request,
        "compose.html",
        user,
        status_code=status_code,
        upload=saved,
        sheets=seen.sheets,
        columns=seen.columns,
        form=form,
        accounts=ctx.settings.accounts,
        default_window=format_window(ctx.settings.send_window),
        preview=preview,
        balance=balance,
        error=error or seen.error,
    )


@router.get("/uploads/{token}")
async def compose(request: Request, ctx: Ctx, user: PageUser, token: str, sheet: str = "") -> Response:
    actions.require(user, Role.SENDER, "creating a campaign")
    first_account = next(iter(ctx.settings.accounts), "")
    return await ctx.reading(_compose, request, ctx, user, token, {"sheet": sheet, "account": first_account})


def _form(request_form: Any) -> dict[str, str]:
    keys = ("sheet", "phone_column", "template", "account", "start_at", "window", "name")
    return {k: str(request_form.get(k) or "") for k in keys}


@router.post("/uploads/{token}/preview")
async def preview(request: Request, ctx: Ctx, user: PageUser, token: str) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf") or ""))
    actions.require(user, Role.SENDER, "creating a campaign")
    values = _form(form)
    return await ctx.reading(_preview, request, ctx, user, token, values)


def _preview(request: Request, ctx: Ctx, user: PageUser, token: str, values: dict[str, str]) -> Response:
    saved = uploads.find(ctx.upload_dir, token, user)
    try:
        result = uploads.preview(
            ctx, saved, values["account"], values["template"], values["sheet"], values["phone_column"]
        )
    except DispatcherError as exc:
        return _compose(request, ctx, user, token, values, error=str(exc), status_code=400)
    return _compose(request, ctx, user, token, values, preview=result)


@router.post("/uploads/{token}/create")
async def create(request: Request, ctx: Ctx, user: PageUser, token: str) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf") or ""))
    values = _form(form)
    return await ctx.reading(_create, request, ctx, user, token, values)


def _create(request: Request, ctx: Ctx, user: PageUser, token: str, values: dict[str, str]) -> Response:
    saved = uploads.find(ctx.upload_dir, token, user)
    try:
        uploads.ensure_read(ctx, saved, values["sheet"] or None)  # read in the sandbox first
        created = actions.create(
            ctx,
            user,
            saved.path,
            values["template"],
            values["account"],
            sheet=values["sheet"],
            phone_column=values["phone_column"],
            start_at=parse_start(values["start_at"], ctx.settings.timezone),
            window=values["window"] or None,
            name=values["name"] or saved.path.stem,
        )
    except actions.Forbidden:
        raise
    except DispatcherError as exc:
        return _compose(request, ctx, user, token, values, error=str(exc), status_code=400)
    uploads.discard(saved)
    flash(request, f"campaign {created.campaign_id} created ({len(created.result.messages)} messages)")
    return _redirect(f"/campaigns/{created.campaign_id}")


@router.get("/campaigns/{campaign_id}")
def campaign_page(request: Request, ctx: Ctx, user: PageUser, campaign_id: CampaignId) -> Response:
    data = actions.status(ctx, campaign_id)
    with ctx.sessions() as session:
        campaign = campaigns.get(session, campaign_id)
        history = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.campaign_id == campaign_id)
                .order_by(AuditEntry.id.desc())
                .limit(50)
            )
            .scalars()
            .all()
        )
    return render(
        request,
        "campaign.html",
        user,
        campaign=campaign,
        status=data,
        history=history,
        window=format_window((campaign.window_start, campaign.window_end)),
    )


@router.post("/campaigns/{campaign_id}/{action}")
def campaign_action(
    request: Request,
    ctx: Ctx,
    user: PageUser,
    campaign_id: CampaignId,
    action: str,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    if action not in ACTIONS:
        raise InputError(f"unknown action {action!r}")
    try:
        queued = actions.act(ctx, user, campaign_id, action)
    except actions.Forbidden:
        raise  # a 403 page: the role does not allow it
    except DispatcherError as exc:
        flash(request, str(exc), "error")
        return _redirect(f"/campaigns/{campaign_id}")
    flash(request, f"{action}: done" + (f" ({queued} requests queued)" if queued else ""))
    return _redirect(f"/campaigns/{campaign_id}")


@router.get("/campaigns/{campaign_id}/export")
async def export(ctx: Ctx, user: PageUser, campaign_id: CampaignId, format: str = "xlsx") -> Response:
    actions.require(user, Role.SENDER, "exporting phone numbers")
    return await ctx.exporting(export_response, ctx, campaign_id, format)
