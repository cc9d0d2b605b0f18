"""HTML pages for campaigns: list, upload → compose → preview → create, the campaign page and its buttons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from dispatcher import campaigns, i18n, labels, proofs
from dispatcher.config import format_window
from dispatcher.errors import DispatcherError, InputError
from dispatcher.i18n import N_, china_time, gettext
from dispatcher.i18n import gettext as _
from dispatcher.labels import describe, say
from dispatcher.store import Campaign, Role
from dispatcher.web import actions, uploads
from dispatcher.web import routing as webrouting
from dispatcher.web.deps import CampaignId, Ctx, PageUser, check_csrf, flash, render
from dispatcher.web.exports import export_response
from dispatcher.web.security import FIELD_BYTES, FORM_FIELDS

router = APIRouter(include_in_schema=False)
# What an entinfo proof should carry to show how the gateway reads its content (docs/vendors.md).
ENCODING_PROBE = "编码测试：1+1=2，满100%减，喆【签名】"
SENT_STATES = ("accepted", "delivered", "undelivered", "expired")  # the vendor took them
ACTIONS = ("start", "pause", "resume", "cancel", "retry", "approve")
ACTION_DONE = {
    "start": N_("Started."),
    "pause": N_("Paused."),
    "resume": N_("Resumed."),
    "cancel": N_("Cancelled: nothing more will be sent."),
    "retry": N_("Failed messages queued again."),
    "approve": N_("Approved."),
}


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/")
def home() -> Response:
    return _redirect("/campaigns")


@router.get("/campaigns")
def campaign_list(request: Request, ctx: Ctx, user: PageUser) -> Response:
    with ctx.sessions() as session:
        rows = (
            session.execute(
                # Proofs are campaigns of their own, never mixed into the list of real ones.
                select(Campaign).where(Campaign.proof.is_(False)).order_by(Campaign.id.desc()).limit(500)
            )
            .scalars()
            .all()
        )
    return render(request, "campaigns.html", user, campaigns=rows)


@router.get("/campaigns/new")
def new_campaign(request: Request, ctx: Ctx, user: PageUser) -> Response:
    actions.require(user, Role.SENDER, N_("creating a campaign"))
    return render(request, "upload.html", user, max_mb=ctx.max_upload_bytes // (1024 * 1024))


@router.post("/uploads", form_limits={"max_files": 1, "max_fields": 4, "max_part_size": FIELD_BYTES})
def upload(
    request: Request,
    ctx: Ctx,
    user: PageUser,
    file: UploadFile,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    actions.require(user, Role.SENDER, N_("uploading a contact list"))
    try:
        saved = uploads.save(ctx.upload_dir, file.file, file.filename or "", user.name, ctx.max_upload_bytes)
    except InputError as exc:
        return render(
            request,
            "upload.html",
            user,
            status_code=413 if isinstance(exc, uploads.UploadTooLarge) else 400,
            max_mb=ctx.max_upload_bytes // (1024 * 1024),
            error=describe(exc),
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
    proof: proofs.Proof | None = None,
) -> Response:
    saved = uploads.find(ctx.upload_dir, token, user)
    # In the sandbox: a crafted file gets its refusal page here, however often it is opened.
    seen = uploads.inspect(ctx, saved, form.get("sheet") or None, form.get("phone_column") or None)
    if seen.columns is None and seen.error and status_code < 400:
        status_code = 400  # nothing usable in this file (or sheet): say so in the status, too
    balance = None
    if preview is not None and form.get("account") in ctx.settings.accounts:
        balance = actions.balance(ctx, form["account"])
    guard = webrouting.preview_plan(ctx, form, preview, balance) if preview is not None else None  # issue 14
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
        encoding_probe=ENCODING_PROBE,
        default_window=format_window(ctx.settings.send_window),
        preview=preview,
        window_warning=_window_warning(ctx, form) if preview is not None else None,
        notices=[
            say(msgid % params if params else msgid, msgid, params) for msgid, params in preview["notices"]
        ]
        if preview is not None
        else [],
        counting=actions.counting_rules(ctx),
        balance=balance,
        guard=guard,
        proof=proof,
        max_proof_numbers=proofs.MAX_NUMBERS,
        error=error or seen.describe(),
    )


def _window_warning(ctx: Ctx, form: dict[str, str]) -> str | None:
    """When the campaign would start (now, or its start time) outside its send window: when it sends."""
    try:
        waits = actions.start_window(ctx.settings, form.get("window") or None, form.get("start_at") or None)
    except DispatcherError:
        return None  # the form's own error says what is wrong
    if waits["waiting"] is None:
        return None
    return _(
        "Outside the send window (%(window)s, China time): once started, it waits and sends from %(time)s."
    ) % {
        "window": form.get("window") or format_window(ctx.settings.send_window),
        "time": china_time(datetime.fromisoformat(waits["window_opens_at"])),
    }


@router.get("/uploads/{token}")
async def compose(request: Request, ctx: Ctx, user: PageUser, token: str, sheet: str = "") -> Response:
    actions.require(user, Role.SENDER, N_("creating a campaign"))
    first_account = next(iter(ctx.settings.accounts), "")
    return await ctx.reading(
        user.name, _compose, request, ctx, user, token, {"sheet": sheet, "account": first_account}
    )


def _form(request_form: Any) -> dict[str, str]:
    keys = ("sheet", "phone_column", "template", "account", "start_at", "window", "name", "proof_numbers",
            "each_number")  # fmt: skip
    values = {k: str(request_form.get(k) or "") for k in keys}
    values.update(webrouting.form_values(request_form))  # issue 14: template B, split, fallbacks
    return values


@router.post("/uploads/{token}/preview")
async def preview(request: Request, ctx: Ctx, user: PageUser, token: str) -> Response:
    form = await request.form(max_files=0, max_fields=FORM_FIELDS)
    check_csrf(request, str(form.get("csrf") or ""))
    actions.require(user, Role.SENDER, N_("creating a campaign"))
    values = _form(form)
    return await ctx.reading(user.name, _preview, request, ctx, user, token, values)


def _preview(request: Request, ctx: Ctx, user: PageUser, token: str, values: dict[str, str]) -> Response:
    saved = uploads.find(ctx.upload_dir, token, user)
    try:
        result = uploads.preview(
            ctx, saved, values["account"], values["template"], values["sheet"], values["phone_column"],
            each_number=bool(values["each_number"]),
        )  # fmt: skip
        webrouting.preview_variant(ctx, saved, values, result)  # issue 14: template B's samples
    except DispatcherError as exc:
        return _compose(request, ctx, user, token, values, error=describe(exc), status_code=400)
    return _compose(request, ctx, user, token, values, preview=result)


@router.post("/uploads/{token}/proof")
async def proof(request: Request, ctx: Ctx, user: PageUser, token: str) -> Response:
    form = await request.form(max_files=0, max_fields=FORM_FIELDS)
    check_csrf(request, str(form.get("csrf") or ""))
    actions.require(user, Role.SENDER, N_("sending a proof"))
    return await ctx.reading(user.name, _proof, request, ctx, user, token, _form(form))


def _proof(request: Request, ctx: Ctx, user: PageUser, token: str, values: dict[str, str]) -> Response:
    """The first rendered message to the numbers typed, through the account, before the real start."""
    saved = uploads.find(ctx.upload_dir, token, user)
    try:
        result = uploads.preview(
            ctx, saved, values["account"], values["template"], values["sheet"], values["phone_column"]
        )
    except DispatcherError as exc:
        return _compose(request, ctx, user, token, values, error=describe(exc), status_code=400)
    try:
        if not result["samples"]:
            raise InputError.say(N_("no row of the list makes a message: nothing to send as a proof"))
        sent = actions.send_proof(
            ctx, user, values["account"], result["samples"][0]["text"], values["proof_numbers"], saved.name
        )
    except actions.Forbidden:
        raise
    except DispatcherError as exc:
        return _compose(
            request, ctx, user, token, values, preview=result, error=describe(exc), status_code=400
        )
    return _compose(request, ctx, user, token, values, preview=result, proof=sent)


@router.post("/uploads/{token}/create")
async def create(request: Request, ctx: Ctx, user: PageUser, token: str) -> Response:
    form = await request.form(max_files=0, max_fields=FORM_FIELDS)
    check_csrf(request, str(form.get("csrf") or ""))
    values = _form(form)
    return await ctx.reading(user.name, _create, request, ctx, user, token, values, creating=True)


def _create(request: Request, ctx: Ctx, user: PageUser, token: str, values: dict[str, str]) -> Response:
    saved = uploads.find(ctx.upload_dir, token, user)
    try:
        created = actions.create(  # read, rendered and stored in the sandbox
            ctx,
            user,
            saved.name,
            saved.path,
            values["template"],
            values["account"],
            sheet=values["sheet"],
            phone_column=values["phone_column"],
            start_at=actions.parse_start(values["start_at"], ctx.settings.timezone),
            window=values["window"] or None,
            name=values["name"] or saved.path.stem,
            fallbacks=webrouting.fallbacks(values),  # issue 14
            variant_templates=webrouting.variant_templates(values),
            split=values.get("split") or None,
            each_number=bool(values["each_number"]),
        )
    except actions.Forbidden:
        raise
    except DispatcherError as exc:
        return _compose(request, ctx, user, token, values, error=describe(exc), status_code=400)
    uploads.discard(saved)
    flash(
        request,
        _("campaign %(id)s created (%(count)s messages)")
        % {"id": created.campaign_id, "count": f"{created.summary['messages']:,}"},
    )
    return _redirect(f"/campaigns/{created.campaign_id}")


@router.get("/campaigns/{campaign_id}")
def campaign_page(request: Request, ctx: Ctx, user: PageUser, campaign_id: CampaignId) -> Response:
    data = actions.status(ctx, user, campaign_id)
    with ctx.sessions() as session:
        campaign = campaigns.get(session, campaign_id)
    history = actions.history(ctx, campaign_id)
    sent = sum(int(data.get(k, 0)) for k in SENT_STATES)
    return render(
        request,
        "campaign.html",
        user,
        campaign=campaign,
        status=data,
        sent=sent,
        waiting_text=labels.waiting_text(data),
        badge=labels.badge(data),
        js_strings=labels.js_strings(),
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
        raise InputError.say(N_("unknown action %(action)r"), action=action)
    try:
        queued = actions.act(ctx, user, campaign_id, action)
    except actions.Forbidden:
        raise  # a 403 page: the role does not allow it
    except DispatcherError as exc:
        flash(request, describe(exc), "error")
        return _redirect(f"/campaigns/{campaign_id}")
    done = gettext(ACTION_DONE[action])
    flash(request, done + (_(" (%(count)s requests queued)") % {"count": f"{queued:,}"} if queued else ""))
    return _redirect(f"/campaigns/{campaign_id}")


@router.get("/campaigns/{campaign_id}/export")
async def export(
    ctx: Ctx, user: PageUser, campaign_id: CampaignId, format: str = "xlsx", lang: str | None = None
) -> Response:
    actions.require(user, Role.SENDER, N_("exporting phone numbers"))
    # In the page's language unless asked otherwise.
    lang = lang or ("zh" if i18n.current() == "zh_CN" else "en")
    return await ctx.exporting(export_response, ctx, campaign_id, format, lang)
