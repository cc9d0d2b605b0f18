"""The results tests' shared steps: a contacts file, a campaign sent through the worker, waiting until it
is sent, draining an account's reports or replies from the simulator, a campaign already accepted by the
vendor, each recipient's state."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from dispatcher import campaigns, scheduler
from dispatcher.results.pull import drain
from dispatcher.store import Chunk, ChunkState, Outcome, Recipient, claim_chunk, finish_chunk, utcnow
from dispatcher.vendors.transport import Transport
from tests.stack import Stack, write_contacts
from workers.tasks import enqueue

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"
FIRST = 13900000000


def contacts(tmp: Path, count: int, name: str = "c.xlsx", first: int = FIRST) -> Path:
    rows = [(str(first + i), ["张三", "李四", "王五"][i % 3]) for i in range(count)]
    return write_contacts(tmp / name, rows)


def send(stack: Stack, vendor: str, path: Path) -> int:
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.accounts[vendor], actor="t"
    )
    enqueue(campaigns.start(stack.sessions, created.campaign_id, "t"), app=stack.app)
    return created.campaign_id


def wait_sent(stack: Stack, campaign_id: int) -> None:
    def done() -> bool:
        scheduler.complete_finished(stack.sessions)
        with stack.sessions() as session:
            return campaigns.status(session, campaign_id)["state"] in ("sent", "completed")

    stack.wait_for(done, timeout=60)


def drain_account(stack: Stack, vendor: str, kind: str = "reports") -> int:
    account = stack.settings.account(stack.accounts[vendor])
    with Transport([account.base_url]) as transport:
        return drain(stack.sessions, transport, account, kind).bodies  # type: ignore[arg-type]


def states(stack: Stack, campaign_id: int) -> dict[str, tuple[str, str | None]]:
    with stack.sessions() as session:
        rows = session.execute(
            select(Recipient.mobile, Recipient.state, Recipient.report_status).where(
                Recipient.campaign_id == campaign_id
            )
        ).all()
    return {m: (s, r) for m, s, r in rows}


def accepted_campaign(
    stack: Stack,
    numbers: int,
    batch_prefix: str = "7770003",
    *,
    vendor: str = "webservice",
    first: int = FIRST,
) -> int:
    """A started campaign of ``numbers`` recipients from ``first`` on (webservice: one chunk each),
    every chunk accepted with batch id ``<batch_prefix><n>`` (n in chunk order); returns its id."""
    path = contacts(stack.tmp, numbers, name=f"c{first}.xlsx", first=first)
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.accounts[vendor], actor="t"
    )
    campaigns.start(stack.sessions, created.campaign_id, "t")
    mine = select(Chunk.id).where(Chunk.campaign_id == created.campaign_id).order_by(Chunk.id)
    with stack.sessions() as session:
        for n, chunk_id in enumerate(session.execute(mine).scalars().all()):
            assert claim_chunk(session, chunk_id, "w", 60)
            now = utcnow()
            finish_chunk(
                session, chunk_id, "w", Outcome(ChunkState.ACCEPTED, now, now, batch_id=f"{batch_prefix}{n}")
            )
    return created.campaign_id
