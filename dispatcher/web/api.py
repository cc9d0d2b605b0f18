"""The JSON API under ``/api/``: the same actions as the pages. A bearer token (``dispatcher user token
NAME``), HTTP Basic (throttled), or the browser's session cookie; anything else gets 401. Documented at
``/docs`` (FastAPI's OpenAPI, for signed-in users)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select

from dispatcher import proofs
from dispatcher.i18n import N_
from dispatcher.store import Campaign, OptOut, ReplyRow, Role, User
from dispatcher.web import actions, auth, uploads
from dispatcher.web.deps import ApiUser, CampaignId, Ctx
from dispatcher.web.exports import export_response
from dispatcher.web.security import FIELD_BYTES, FORM_FIELDS

router = APIRouter(prefix="/api", tags=["api"])
# A negative LIMIT is "no limit" to SQLite (the whole list in one answer); an OFFSET past 64 bits
# cannot be bound at all. Larger limits are cut to MAX_LIMIT below.
MAX_LIMIT = 10_000
Limit = Annotated[int, Query(ge=0, description=f"rows, at most {MAX_LIMIT:,}")]
Offset = Annotated[int, Query(ge=0, le=2**62)]


class Action(enum.StrEnum):
    start = "start"
    pause = "pause"
    resume = "resume"
    cancel = "cancel"
    retry = "retry"
    approve = "approve"


class OptOutsIn(BaseModel):
    mobiles: list[str]
    note: str | None = None


class UserIn(BaseModel):
    name: str
    password: str
    role: Role = Role.VIEWER


def _campaign_row(c: Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "state": c.state,
        "account": c.account,
        "vendor": c.vendor,
        "start_at": c.start_at.isoformat() if c.start_at else None,
        "created_by": c.created_by,
        "approved_by": c.approved_by,
        "created_at": c.created_at.isoformat(),
        "proof": c.proof,
    }


@router.get("/me", summary="The signed-in user and role")
def me(user: ApiUser) -> dict[str, str]:
    return {"name": user.name, "role": user.role.value}


@router.get("/campaigns", summary="Campaigns, newest first")
def list_campaigns(ctx: Ctx, user: ApiUser) -> list[dict[str, Any]]:
    with ctx.sessions() as session:
        rows = session.execute(select(Campaign).order_by(Campaign.id.desc()).limit(500)).scalars().all()
        return [_campaign_row(c) for c in rows]


def _with_upload(ctx: Ctx, user: ApiUser, file: UploadFile) -> uploads.Upload:
    actions.require(user, Role.SENDER, N_("creating a campaign"))
    return uploads.save(ctx.upload_dir, file.file, file.filename or "", user.name, ctx.max_upload_bytes)


# Each upload route takes one file and its few fields, none long (form_limits): a multipart body of a
# thousand parts is refused as it is parsed, before its parts are held.
@router.post(
    "/campaigns/preview",
    summary="Dry run of a contact list: samples, rejected rows, cost",
    form_limits={"max_files": 1, "max_fields": FORM_FIELDS, "max_part_size": FIELD_BYTES},
)
async def preview_campaign(
    ctx: Ctx,
    user: ApiUser,
    file: UploadFile,
    template: Annotated[str, Form()],
    account: Annotated[str, Form()],
    sheet: Annotated[str, Form()] = "",
    phone_column: Annotated[str, Form()] = "",
    start_at: Annotated[str, Form(description="ISO-8601; China time when no zone; empty: now")] = "",
    window: Annotated[str, Form(description="HH:MM-HH:MM; empty: the configured window")] = "",
) -> dict[str, Any]:
    """With ``waiting``: ``"window"`` and ``window_opens_at`` (UTC) when it would start outside its window."""
    waits = actions.start_window(ctx.settings, window or None, start_at or None)
    found = await ctx.reading(user.name, _preview, ctx, user, file, template, account, sheet, phone_column)
    return {**found, **waits}


def _preview(
    ctx: Ctx, user: ApiUser, file: UploadFile, template: str, account: str, sheet: str, phone_column: str
) -> dict[str, Any]:
    saved = _with_upload(ctx, user, file)
    try:
        return uploads.preview(ctx, saved, account, template, sheet, phone_column)
    finally:
        uploads.discard(saved)


@router.post(
    "/campaigns",
    status_code=201,
    summary="Create a campaign from a contact list",
    form_limits={"max_files": 1, "max_fields": FORM_FIELDS, "max_part_size": FIELD_BYTES},
)
async def create_campaign(
    ctx: Ctx,
    user: ApiUser,
    file: UploadFile,
    template: Annotated[list[str], Form(description="repeat it for an A/B test (variants A, B, ...)")],
    account: Annotated[str, Form()],
    sheet: Annotated[str, Form()] = "",
    phone_column: Annotated[str, Form()] = "",
    start_at: Annotated[str, Form(description="ISO-8601; China time when no zone")] = "",
    window: Annotated[str, Form(description="HH:MM-HH:MM")] = "",
    name: Annotated[str, Form()] = "",
    fallback: Annotated[list[str] | None, Form(description="accounts to fail over to, in order")] = None,
    split: Annotated[str, Form(description="A/B shares, e.g. 70,30 (default: even)")] = "",
) -> dict[str, Any]:
    at = actions.parse_start(start_at, ctx.settings.timezone)
    routing = {"fallbacks": fallback or [], "variant_templates": template[1:], "split": split or None}
    return await ctx.reading(
        user.name,
        _create,
        ctx,
        user,
        file,
        template[0],
        account,
        sheet,
        phone_column,
        at,
        window,
        name,
        routing,
        creating=True,
    )


def _create(
    ctx: Ctx,
    user: ApiUser,
    file: UploadFile,
    template: str,
    account: str,
    sheet: str,
    phone_column: str,
    at: datetime | None,
    window: str,
    name: str,
    routing: dict[str, Any],
) -> dict[str, Any]:
    saved = _with_upload(ctx, user, file)
    try:
        created = actions.create(
            ctx,
            user,
            saved.name,
            saved.path,
            template,
            account,
            sheet=sheet,
            phone_column=phone_column,
            start_at=at,
            window=window or None,
            name=name or saved.path.stem,
            **routing,  # fallbacks, A/B templates and split
        )
    finally:
        uploads.discard(saved)
    return {"id": created.campaign_id, "state": created.state.value, **created.summary}


@router.get("/campaigns/{campaign_id}", summary="State and recipient counts")
def campaign_status(ctx: Ctx, user: ApiUser, campaign_id: CampaignId) -> dict[str, Any]:
    return actions.status(ctx, user, campaign_id)


@router.get("/campaigns/{campaign_id}/progress", summary="Cumulative accepted/delivered over time")
def campaign_progress(ctx: Ctx, user: ApiUser, campaign_id: CampaignId) -> dict[str, Any]:
    data = actions.status(ctx, user, campaign_id)
    # The history too: the page shows it live (each entry also as the page's language says it).
    return {
        "status": data,
        "series": actions.series(ctx, campaign_id),
        "history": actions.history(ctx, campaign_id),
    }


@router.post("/campaigns/{campaign_id}/{action}", summary="start, pause, resume, cancel, retry, approve")
def campaign_action(ctx: Ctx, user: ApiUser, campaign_id: CampaignId, action: Action) -> dict[str, Any]:
    queued = actions.act(ctx, user, campaign_id, action.value)
    return {"id": campaign_id, "action": action.value, "queued_requests": queued}


@router.get("/campaigns/{campaign_id}/export", summary="Per-recipient results as xlsx or csv (sender)")
async def campaign_export(
    ctx: Ctx, user: ApiUser, campaign_id: CampaignId, format: str = "xlsx", lang: str | None = None
) -> Response:
    """``lang``: ``zh`` or ``en`` (headers, states, reasons); by default Chinese for xlsx, English for csv."""
    actions.require(user, Role.SENDER, N_("exporting phone numbers"))
    return await ctx.exporting(export_response, ctx, campaign_id, format, lang)


@router.get(
    "/proofs/{campaign_id}", summary="A proof's outcome: per number, its state and the gateway's answer"
)
def proof_outcome(ctx: Ctx, user: ApiUser, campaign_id: CampaignId) -> dict[str, Any]:
    actions.require(user, Role.SENDER, N_("seeing a proof (phone numbers)"))
    with ctx.sessions() as session:
        return proofs.outcome(session, campaign_id)


@router.get("/optouts", summary="The opt-out list (sender)")
def list_optouts(ctx: Ctx, user: ApiUser, limit: Limit = 1000, offset: Offset = 0) -> list[dict[str, Any]]:
    actions.require(user, Role.SENDER, N_("seeing the opt-out list (phone numbers)"))
    with ctx.sessions() as session:
        rows = session.execute(
            select(OptOut).order_by(OptOut.id.desc()).offset(offset).limit(min(limit, MAX_LIMIT))
        ).scalars()
        return [
            {"mobile": o.mobile, "source": o.source, "added_at": o.added_at.isoformat(), "note": o.note}
            for o in rows
        ]


@router.post("/optouts", summary="Add numbers to the opt-out list (admin)")
def add_optouts(ctx: Ctx, user: ApiUser, body: OptOutsIn) -> dict[str, Any]:
    added, invalid = actions.add_optouts(ctx, user, body.mobiles, body.note)
    return {"added": added, "invalid": invalid}


@router.delete("/optouts/{mobile}", summary="Remove a number from the opt-out list (admin)")
def remove_optout(ctx: Ctx, user: ApiUser, mobile: str) -> dict[str, str]:
    actions.remove_optout(ctx, user, mobile)
    return {"removed": mobile}


@router.get("/replies", summary="Replies (MO), newest first (sender)")
def list_replies(ctx: Ctx, user: ApiUser, limit: Limit = 200, offset: Offset = 0) -> list[dict[str, Any]]:
    actions.require(user, Role.SENDER, N_("seeing replies (phone numbers)"))
    with ctx.sessions() as session:
        rows = session.execute(
            select(ReplyRow).order_by(ReplyRow.id.desc()).offset(offset).limit(min(limit, MAX_LIMIT))
        ).scalars()
        return [
            {
                "account": r.account,
                "mobile": r.mobile,
                "text": r.text,
                "received_at": r.received_at.isoformat() if r.received_at else None,
                "campaign_id": r.campaign_id,
                "is_optout": r.is_optout,
            }
            for r in rows
        ]


@router.get("/accounts", summary="Configured vendor accounts (no secrets)")
def list_accounts(ctx: Ctx, user: ApiUser) -> list[dict[str, Any]]:
    return [
        {
            "name": a.name,
            "vendor": a.vendor,
            "rate_limit": a.rate_limit,
            "price_per_segment": str(a.price_per_segment) if a.price_per_segment is not None else None,
            "push": bool(a.push_token),
        }
        for a in ctx.settings.accounts.values()
    ]


@router.get("/accounts/{name}/balance", summary="Balance (throttled per vendor; cached otherwise)")
def account_balance(ctx: Ctx, user: ApiUser, name: str) -> dict[str, Any]:
    actions.require(user, Role.SENDER, N_("asking a vendor for the balance"))
    return actions.balance(ctx, name)


@router.get("/users", summary="Users and roles (admin)")
def list_users(ctx: Ctx, user: ApiUser) -> list[dict[str, str]]:
    actions.require(user, Role.ADMIN, N_("managing users"))
    with ctx.sessions() as session:
        return [
            {"name": u.name, "role": u.role}
            for u in session.execute(select(User).order_by(User.name)).scalars()
        ]


@router.post("/users", status_code=201, summary="Add a user (admin)")
def add_user(ctx: Ctx, user: ApiUser, body: UserIn) -> dict[str, str]:
    actions.require(user, Role.ADMIN, N_("managing users"))
    with ctx.sessions() as session:
        auth.add_user(session, body.name, body.password, body.role.value, actor=user.name)
    return {"name": body.name, "role": body.role.value}
