"""The dispatch tests' shared steps: a campaign of given numbers, a worker's send, the vendor's ledger,
the store's view of recipients and chunks, whether a campaign has finished sending."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from dispatcher import campaigns, scheduler
from dispatcher.dispatch import AccountRuntime, Next, Result, build_request, load_group, send_group
from dispatcher.store import Chunk, Recipient, sweep_expired_leases, utcnow
from dispatcher.store.chunks import claim_chunks
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import Transport
from tests.stack import Stack, write_contacts

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"
SAME = "会员日全场8折，回T退订【测试】"  # one text for every number: one same-text request
FIRST = 13900000000


def numbers(count: int, first: int = FIRST) -> list[str]:
    return [str(first + i) for i in range(count)]


def create(stack: Stack, vendor: str, mobiles: list[str], template: str = TEMPLATE) -> int:
    path = write_contacts(stack.tmp / f"c{time.monotonic_ns()}.xlsx", [(m, "张三") for m in mobiles])
    created = campaigns.create(
        stack.sessions, stack.settings, path, template, stack.accounts[vendor], actor="t"
    )
    return created.campaign_id


def finished(stack: Stack, campaign_id: int) -> bool:
    scheduler.complete_finished(stack.sessions)
    with stack.sessions() as session:
        return campaigns.status(session, campaign_id)["state"] in ("sent", "completed")


def runtime_for(
    stack: Stack, vendor: str, base_url: str | None = None, clock: Callable[[], datetime] = utcnow
) -> AccountRuntime:
    account = stack.settings.account(stack.accounts[vendor])
    transport = Transport([base_url or account.base_url], timeout=10)
    return AccountRuntime(account, vendor_module(vendor), transport, None, clock=clock)


def send(stack: Stack, runtime: AccountRuntime, ids: list[int], worker: str = "w1") -> list[Result]:
    return send_group(stack.sessions, runtime, load_group(stack.sessions, ids), worker)


def queued(stack: Stack, campaign_id: int) -> list[int]:
    with stack.sessions() as session:
        query = select(Chunk.id).where(Chunk.campaign_id == campaign_id, Chunk.state == "queued")
        return list(session.execute(query).scalars())


def drive(stack: Stack, runtime: AccountRuntime, campaign_id: int, timeout: float = 60.0) -> None:
    """Send the campaign's queued chunks (splits included) until none is left, as workers would."""
    deadline = time.monotonic() + timeout
    while ids := queued(stack, campaign_id):
        assert time.monotonic() < deadline, "chunks still queued"
        results = send(stack, runtime, ids)
        if all(r.next is Next.LATER for r in results):
            time.sleep(min(r.delay for r in results) + 0.05)


def ledger(stack: Stack) -> Counter[str]:
    return Counter(e["mobile"] for e in stack.sim.ledger()["accepted"])


def recipients(stack: Stack, campaign_id: int) -> dict[str, tuple[str, str | None, str | None]]:
    with stack.sessions() as session:
        rows = session.execute(
            select(Recipient.mobile, Recipient.state, Recipient.error_class, Recipient.vendor_code).where(
                Recipient.campaign_id == campaign_id
            )
        ).all()
    return {m: (s, c, v) for m, s, c, v in rows}


def chunks(stack: Stack, campaign_id: int) -> list[Chunk]:
    with stack.sessions() as session:
        return list(session.scalars(select(Chunk).where(Chunk.campaign_id == campaign_id)))


def sent_then_worker_died(stack: Stack, runtime: AccountRuntime, ids: list[int]) -> list[str]:
    """Claim ``ids``, send their requests to the vendor, and record nothing (the worker died); the
    sweep then makes them ``unknown``. Returns the vendor's answers."""
    with stack.sessions() as session:
        claimed = claim_chunks(session, ids, "dead-worker", -1)  # a lease already over
    answers = [
        runtime.transport.send(build_request(runtime, row, claimed[row.id].pairs)).text
        for row in load_group(stack.sessions, ids)
    ]
    with stack.sessions() as session:
        assert sweep_expired_leases(session) == sorted(ids)
    return answers
