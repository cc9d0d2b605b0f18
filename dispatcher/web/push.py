"""Push receivers: vendors configured to push POST their reports and replies here.

    POST /push/{account}/reports?token=SECRET     form account=..&GetReport=..  or trigger JSON type 1|2
    POST /push/{account}/replies?token=SECRET     form account=..&GetMo=..      or trigger JSON type 3|4

The token is the account's ``push_token`` (the vendor's contract only lets us put a secret in the URL).
A wrong or missing token, an unknown account, or an account without a token gets 403 and nothing is
stored. Otherwise the raw body is committed first (:func:`dispatcher.results.inbox.record_raw`) and
only then answered: a vendor that got our answer may drop its copy. Parsing runs after the answer.
"""

from __future__ import annotations

import hmac
import logging
from typing import Literal

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from dispatcher.results.inbox import process_pending, record_raw
from dispatcher.vendors.wire import decode_push
from dispatcher.web.context import WebContext
from dispatcher.web.deps import Ctx

router = APIRouter(prefix="/push", tags=["push"])
log = logging.getLogger(__name__)
MAX_BODY = 5 * 1024 * 1024  # a push carries at most 500 records: far below this
ACK = "ok"  # none of the seeds names an answer; any 2xx with a short body is taken as received


def _authorised(ctx: WebContext, account: str, token: str | None) -> bool:
    config = ctx.settings.accounts.get(account)
    expected = config.push_token if config is not None else None
    # Compare even when there is nothing to compare with, so timing does not tell accounts apart.
    ok = hmac.compare_digest((token or "").encode(), (expected or "\0").encode())
    return ok and bool(expected) and bool(token)


def _process(ctx: WebContext) -> None:
    try:
        # One connection: a push is a few hundred records, and a burst of pushes must not take two of
        # the web app's pooled connections each (the beat's results run drains the bulk with more).
        process_pending(ctx.sessions, ctx.settings, connections=1)
    except Exception:  # the body is stored: the beat's next run parses it; never lose the worker
        log.exception("processing pushed bodies failed; the beat will try again")


async def _receive(
    request: Request,
    ctx: WebContext,
    background: BackgroundTasks,
    account: str,
    kind: Literal["reports", "replies"],
) -> PlainTextResponse:
    if not _authorised(ctx, account, request.query_params.get("token")):
        raise HTTPException(403, "forbidden")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, "body too large")
    if not body.strip():
        raise HTTPException(400, "empty body")

    # Stored as text with the charset it came in: a GBK form's %-escapes are read in GBK at parse time.
    text, charset = decode_push(body, request.headers.get("content-type", ""))

    def store() -> int:
        with ctx.sessions() as session:
            return record_raw(session, account, kind, "push", text, charset=charset)

    raw_id = await run_in_threadpool(store)  # committed before we answer
    log.info("push %s for account %s stored as raw %d (%d bytes)", kind, account, raw_id, len(body))
    if ctx.process_push:
        background.add_task(_process, ctx)
    return PlainTextResponse(ACK)


@router.post(
    "/{account}/reports", summary="Delivery reports pushed by a vendor", response_class=PlainTextResponse
)
async def push_reports(
    request: Request, ctx: Ctx, background: BackgroundTasks, account: str
) -> PlainTextResponse:
    return await _receive(request, ctx, background, account, "reports")


@router.post(
    "/{account}/replies", summary="Replies (MO) pushed by a vendor", response_class=PlainTextResponse
)
async def push_replies(
    request: Request, ctx: Ctx, background: BackgroundTasks, account: str
) -> PlainTextResponse:
    return await _receive(request, ctx, background, account, "replies")
