"""Push mode (``--push-url``): due reports and queued replies are POSTed in each vendor's push format
instead of waiting to be pulled. Webservice and yunxin: form ``account=XXX&GetReport=<GetReport format>``
(replies: ``account=XXX&GetMo=<GetMo format>``, the document says "same format as GetMo"). Trigger: JSON
``{"account","type":1|2,"list":[...]}`` for reports, ``type`` 3|4 for replies (Trigger API v1.8 sections 5, 6).
Entinfo has neither. A push that fails is put back and tried again on the next round."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from urllib.parse import quote, urlencode

import httpx

from dispatcher.simulator.family import report_record
from dispatcher.simulator.gateway import china_time
from dispatcher.simulator.state import PULL_LIMIT, AccountState, PendingReply, PendingReport, SimState

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


@dataclass(frozen=True)
class Push:
    url: str
    content_type: str
    body: bytes
    give_back: Callable[[], None]  # re-queue the records when the push failed


def report_payloads(
    vendor: str, user: str, records: list[PendingReport], rng: Random
) -> list[tuple[str, bytes, list[PendingReport]]]:
    """(content type, body, the records in it); trigger needs one post per ``type``. Webservice and
    yunxin push the ``GetReport`` records (a voice code's record is the voice one)."""
    if vendor != "trigger":
        value = "".join(report_record(r, rng, with_time=False, with_ref=False) for r in records)
        return [(_FORM, urlencode({"account": user, "GetReport": value}).encode(), records)]
    out: list[tuple[str, bytes, list[PendingReport]]] = []
    for kind, group in ((1, False), (2, True)):
        subset = [r for r in records if r.group is group]
        items = [
            {
                "phone": r.mobile,
                "receive_status": r.status,
                "receive_time": int(r.due * 1000),
                "sub_no": r.batch_id,
                "customer_uuid": r.ref,
            }
            for r in subset
        ]
        if items:
            out.append((_JSON, json.dumps({"account": user, "type": kind, "list": items}).encode(), subset))
    return out


def reply_payloads(
    vendor: str, user: str, records: list[PendingReply]
) -> list[tuple[str, bytes, list[PendingReply]]]:
    if vendor != "trigger":
        value = "".join(f"{r.mobile}|,|{r.text}|,|{china_time(r.at)}|;|" for r in records)
        return [(_FORM, urlencode({"account": user, "GetMo": value}).encode(), records)]
    out: list[tuple[str, bytes, list[PendingReply]]] = []
    for kind, group in ((3, False), (4, True)):
        subset = [r for r in records if r.group is group]
        items = [
            {
                "dest_phone": r.mobile,
                "show_num": r.show_num,
                "resp_content": r.text,
                "resp_time": int(r.at * 1000),
                "customer_uuid": r.ref,
            }
            for r in subset
        ]
        if items:
            out.append((_JSON, json.dumps({"account": user, "type": kind, "list": items}).encode(), subset))
    return out


def push_url(template: str, vendor: str, user: str, kind: str = "reports") -> str:
    """``{vendor}``, ``{account}`` and ``{kind}`` (reports / replies) filled in: receivers that take
    reports and replies on separate paths (``/push/{account}/{kind}``) get one template."""
    return (
        template.replace("{vendor}", vendor)
        .replace("{account}", quote(user, safe=""))
        .replace("{kind}", kind)
    )


def collect(state: SimState, template: str, now: float) -> list[Push]:
    """Take every account's due reports and queued replies (500 per push) out of the queues."""
    pushes: list[Push] = []
    for (vendor, user), acct in state.accounts.items():
        if vendor == "entinfo":
            continue
        url = push_url(template, vendor, user, "reports")
        while True:
            reports = state.pull_reports(acct, now, PULL_LIMIT)
            if not reports:
                break
            for content_type, body, subset in report_payloads(vendor, user, reports, state.rng):
                pushes.append(Push(url, content_type, body, _give_back_reports(acct, subset)))
        while True:
            replies = state.pull_replies(acct, PULL_LIMIT)
            if not replies:
                break
            for content_type, body, taken in reply_payloads(vendor, user, replies):
                replies_url = push_url(template, vendor, user, "replies")
                pushes.append(Push(replies_url, content_type, body, _give_back_replies(acct, taken)))
    return pushes


def _give_back_reports(acct: AccountState, records: list[PendingReport]) -> Callable[[], None]:
    return lambda: acct.reports.extendleft(reversed(records))


def _give_back_replies(acct: AccountState, records: list[PendingReply]) -> Callable[[], None]:
    return lambda: acct.replies.extendleft(reversed(records))


async def push_forever(state: SimState, template: str, interval: float) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        while True:
            await asyncio.sleep(interval)
            for push in collect(state, template, time.time()):
                try:
                    response = await client.post(
                        push.url, content=push.body, headers={"content-type": push.content_type}
                    )
                    delivered = response.status_code < 300
                except httpx.HTTPError:
                    delivered = False
                if not delivered:
                    push.give_back()
