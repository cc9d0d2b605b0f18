"""Failover between accounts: a campaign whose account fails (wrong password, exhausted balance, an
address that refuses connections) moves what it has not sent to its next account, re-planned to that
vendor's limits, with real workers, the beat's tick and the simulator; its ledger shows every recipient
once, on the account that took it."""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from typing import Any

from sqlalchemy import func, select, update
from typer.testing import CliRunner

from dispatcher import campaigns, failover, scheduler
from dispatcher.cli import app as cli_app
from dispatcher.results import campaign_export, cycle, reconcile
from dispatcher.runtime import Runtime
from dispatcher.store import (
    AuditEntry,
    Campaign,
    CampaignState,
    Chunk,
    ChunkState,
    Recipient,
    RecipientState,
    ReportRow,
)
from tests.helpers import table_rows
from tests.routing.conftest import Acct, RoutingStack
from tests.stack import ENTINFO_SN, write_contacts
from tests.vendors.loopback import dead_url
from workers import tasks
from workers.tasks import enqueue

TEMPLATE = "会员日全场8折，回T退订【测试】"  # the same text for all: packed in same-text requests


def numbers(count: int, first: int = 13900000000) -> list[str]:
    return [str(first + i) for i in range(count)]


def start(stack: RoutingStack, count: int, account: str, fallbacks: list[str]) -> int:
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in numbers(count)])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.names[account], actor="t",
        fallbacks=[stack.names[f] for f in fallbacks],
    )  # fmt: skip
    enqueue(campaigns.start(stack.sessions, created.campaign_id, "t"), app=stack.app)
    return created.campaign_id


def status(stack: RoutingStack, campaign_id: int) -> dict[str, Any]:
    with stack.sessions() as session:
        return campaigns.status(session, campaign_id)


def run_beat(stack: RoutingStack, campaign_id: int, timeout: float = 60.0) -> dict[str, Any]:
    """Tick like the beat until the campaign has sent everything (or the time is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks.run_tick(stack.app)
        data = status(stack, campaign_id)
        if data["state"] in ("sent", "completed"):
            return data
        time.sleep(0.3)
    raise AssertionError(f"campaign did not finish: {status(stack, campaign_id)}")


def ledger_by_account(stack: RoutingStack) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for e in stack.ledger():
        out.setdefault(f"{e['vendor']}:{e['account']}", Counter())[e["mobile"]] += 1
    return out


def failovers(stack: RoutingStack, campaign_id: int) -> list[dict[str, Any]]:
    with stack.sessions() as session:
        rows = session.execute(
            select(AuditEntry.detail).where(
                AuditEntry.campaign_id == campaign_id, AuditEntry.action == "campaign.failover"
            )
        ).scalars()
        return [dict(d or {}) for d in rows]


def test_given_a_wrong_password_when_sending_then_the_campaign_moves_to_the_fallback_in_its_chunk_sizes(
    routing_stack: Any,
) -> None:
    # Given a yunxin account whose password the gateway refuses, and a trigger account as fallback
    stack = routing_stack(
        [
            Acct("yx", "yunxin", "yxuser", password="wrong", sim_password="right"),
            Acct("tg", "trigger", "tguser"),
        ]
    )
    # When a 120-number campaign (one yunxin same-text request) runs with the beat ticking
    campaign_id = start(stack, 120, "yx", ["tg"])
    data = run_beat(stack, campaign_id)

    # Then every number was taken once, all by the trigger account, in 50-number requests
    assert ledger_by_account(stack) == {"trigger:tguser": Counter(numbers(120))}
    with stack.sessions() as session:
        sizes = sorted(
            session.execute(
                select(Chunk.recipient_count).where(
                    Chunk.campaign_id == campaign_id, Chunk.state == ChunkState.ACCEPTED.value
                )
            ).scalars()
        )
    assert sizes == [20, 50, 50]
    # ... the move is audited and shown: the accounts' figures, the failovers, the campaign's account
    (move,) = failovers(stack, campaign_id)
    assert (move["from"], move["to"], move["reason"], move["recipients"], move["chunks"]) == (
        stack.names["yx"], stack.names["tg"], "account", 120, 3
    )  # fmt: skip
    assert data["accounts"][stack.names["tg"]]["accepted"] == 120
    assert data["accounts"][stack.names["yx"]]["accepted"] == 0
    assert data["account"] == stack.names["tg"] and data["vendor"] == "trigger"
    assert data["failovers"][0]["to"] == stack.names["tg"] and data["fallbacks"] == []


def test_given_an_exhausted_balance_mid_campaign_then_the_rest_goes_to_the_fallback_and_nothing_twice(
    routing_stack: Any,
) -> None:
    # Given a webservice account (one number a request) holding 100 segments, and a trigger fallback
    stack = routing_stack(
        [
            Acct("yx", "webservice", "wspoor", balance=100, price=None),
            Acct("tg", "trigger", "tguser"),
        ]
    )
    # When 150 numbers are sent
    campaign_id = start(stack, 150, "yx", ["tg"])
    data = run_beat(stack, campaign_id)

    # Then the first account took 100, the fallback the other 50, and no number went twice
    ledger = ledger_by_account(stack)
    assert sum(ledger["webservice:wspoor"].values()) == 100
    assert sum(ledger["trigger:tguser"].values()) == 50
    assert ledger["webservice:wspoor"] + ledger["trigger:tguser"] == Counter(numbers(150))
    assert data["accounts"][stack.names["yx"]]["accepted"] == 100
    assert data["accounts"][stack.names["tg"]]["accepted"] == 50
    (move,) = failovers(stack, campaign_id)
    assert (move["code"], move["recipients"], move["chunks"]) == ("-7", 50, 1)  # 余额不足; one request
    # ... and the export names, for every number, the account that took it
    path = stack.tmp / "out.csv"
    with stack.sessions() as session:
        campaign_export.export(session, campaign_id, path)
    with path.open(encoding="utf-8-sig", newline="") as f:
        exported = {
            r["mobile"]: r["account"].split(" (")[0] for r in csv.DictReader(f)
        }  # "NAME (its gateway)"
    expected = {m: stack.names["yx"] for m in ledger["webservice:wspoor"]}
    assert exported == expected | {m: stack.names["tg"] for m in ledger["trigger:tguser"]}
    # ... and each account's delivery reports find their recipients (matched on the account that sent)
    runtime = Runtime.from_settings(stack.settings)
    try:
        cycle.run(runtime)
    finally:
        runtime.close()
    reported = status(stack, campaign_id)["accounts"]
    assert (reported[stack.names["yx"]]["delivered"], reported[stack.names["tg"]]["delivered"]) == (100, 50)


def test_given_an_address_that_refuses_connections_then_after_failover_after_the_campaign_moves_on(
    routing_stack: Any,
) -> None:
    # Given an account nobody answers for, failover after 1 s of "try later", two fallbacks
    stack = routing_stack(
        [
            Acct("dead", "yunxin", "nobody", base_url=dead_url()),
            Acct("yx2", "yunxin", "yxgood"),
            Acct("tg", "trigger", "tguser"),
        ],
        top="failover_after = 1",
    )
    campaign_id = start(stack, 80, "dead", ["yx2", "tg"])
    data = run_beat(stack, campaign_id)

    # Then the first fallback took every number once; the second is still in reserve
    assert ledger_by_account(stack) == {"yunxin:yxgood": Counter(numbers(80))}
    (move,) = failovers(stack, campaign_id)
    assert move["reason"] == "retry_later"
    assert data["fallbacks"] == [stack.names["tg"]]
    assert data["accounts"][stack.names["yx2"]]["accepted"] == 80


def test_given_accepted_and_unknown_chunks_when_failing_over_then_only_the_unsent_recipients_move(
    routing_stack: Any,
) -> None:
    # Given (no worker) a 3-chunk trigger campaign (50 numbers a request), a yunxin fallback: one accepted, one unknown, one sent back by an account error
    stack = routing_stack([Acct("tg", "trigger", "tg"), Acct("yx", "yunxin", "yx")], worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in numbers(150)])
    created = campaigns.create(
        stack.sessions,
        stack.settings,
        path,
        TEMPLATE,
        stack.names["tg"],
        actor="t",
        fallbacks=[stack.names["yx"]],
    )
    campaigns.start(stack.sessions, created.campaign_id, "t")
    with stack.sessions() as session:
        ids = list(
            session.execute(
                select(Chunk.id).where(Chunk.campaign_id == created.campaign_id).order_by(Chunk.seq)
            ).scalars()
        )
        for chunk_id, chunk_state, recipient_state, error_class in (
            (ids[0], "accepted", "accepted", None),
            (ids[1], "unknown", "unknown", None),
            (ids[2], "queued", "queued", "account"),
        ):
            session.execute(
                update(Chunk)
                .where(Chunk.id == chunk_id)
                .values(state=chunk_state, error_class=error_class, code="-1" if error_class else None)
            )
            session.execute(
                update(Recipient).where(Recipient.chunk_id == chunk_id).values(state=recipient_state)
            )
        session.commit()
    # A person's pause is theirs to lift: no failover then
    campaigns.pause(stack.sessions, created.campaign_id, "alice")
    assert failover.run(stack.sessions, stack.settings) == []
    assert status(stack, created.campaign_id)["state"] == "paused"
    campaigns.resume(stack.sessions, created.campaign_id, "alice")
    campaigns.pause(stack.sessions, created.campaign_id, "system")  # as the worker pauses on an account error

    # When the beat's failover pass runs
    new = failover.run(stack.sessions, stack.settings)

    # Then only the third chunk's 50 recipients moved, to one new yunxin chunk; the others stay as they were
    assert len(new) == 1
    with stack.sessions() as session:
        moved = session.execute(
            select(Recipient.mobile, Recipient.state, Recipient.account).where(Recipient.chunk_id == new[0])
        ).all()
        assert sorted(m for m, _, _ in moved) == numbers(150)[100:]
        assert {(s, a) for _, s, a in moved} == {(RecipientState.QUEUED.value, None)}
        kept = session.execute(
            select(Recipient.state, Recipient.account).where(Recipient.chunk_id.in_(ids[:2]))
        ).all()
        assert Counter(kept) == Counter(
            {("accepted", stack.names["tg"]): 50, ("unknown", stack.names["tg"]): 50}
        )
        assert session.execute(select(Chunk.state, Chunk.error_class).where(Chunk.id == ids[2])).one() == (
            "failed",
            "moved",
        )
    data = status(stack, created.campaign_id)
    assert data["state"] == CampaignState.RUNNING
    assert data["accounts"][stack.names["tg"]]["unknown"] == 50
    assert data["accounts"][stack.names["yx"]]["queued"] == 50
    # A report from the first account naming an unknown chunk's number still settles that chunk: it is
    # matched on the account the chunk went out on, not the campaign's new one
    with stack.sessions() as session:
        report = ReportRow(
            account=stack.names["tg"], batch_id="77", mobile=numbers(150)[60], status="DELIVRD"
        )
        session.add(report)
        session.flush()
        assert reconcile.settle_unknown(session, ReportRow.id == report.id) == [ids[1]]
        session.commit()


def test_given_fallbacks_on_the_command_line_then_status_json_lists_them_in_order_with_each_accounts_figures(
    routing_stack: Any,
) -> None:
    stack = routing_stack(
        [Acct("a", "yunxin", "a"), Acct("b", "trigger", "b"), Acct("c", "webservice", "c")], worker=False
    )
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in numbers(5)])
    runner = CliRunner()
    base = ["campaign", "create", str(path), "--template", TEMPLATE, "--account", stack.names["a"]]
    result = runner.invoke(
        cli_app, [*base, "--fallback", stack.names["b"], "--fallback", stack.names["c"], "--json"]
    )
    assert result.exit_code == 0, result.output
    campaign_id = json.loads(result.output)["id"]
    shown = json.loads(runner.invoke(cli_app, ["campaign", "status", str(campaign_id), "--json"]).output)
    assert shown["fallbacks"] == [stack.names["b"], stack.names["c"]]
    assert list(shown["accounts"]) == [stack.names["a"], stack.names["b"], stack.names["c"]]
    assert shown["accounts"][stack.names["a"]]["recipients"] == 5
    # and the plain status lists the route too, each account with its figures
    plain = runner.invoke(cli_app, ["campaign", "status", str(campaign_id)], env={"COLUMNS": "200"}).output
    by_account = {row[0]: row[1] for row in table_rows(plain, "by account")}
    assert by_account == {stack.names["a"]: "5", stack.names["b"]: "0", stack.names["c"]: "0"}

    # An unknown fallback, or the campaign's own account again, is refused before anything is stored
    for bad in ("nosuch", stack.names["a"]):
        refused = runner.invoke(cli_app, [*base, "--fallback", bad])
        assert refused.exit_code == 2 and bad in refused.output
    with stack.sessions() as session:
        assert session.execute(select(func.count()).select_from(Campaign)).scalar_one() == 1


def test_given_a_campaign_without_fallbacks_then_its_one_account_has_the_campaigns_figures(
    routing_stack: Any,
) -> None:
    stack = routing_stack([Acct("yx", "yunxin", "yx")], worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in numbers(7)] + [("bad", "x")])
    created = campaigns.create(stack.sessions, stack.settings, path, TEMPLATE, stack.names["yx"], actor="t")
    data = status(stack, created.campaign_id)
    figures = data["accounts"][stack.names["yx"]]
    assert (figures["recipients"], figures["planned"], figures["accepted"]) == (7, 7, 0)
    assert list(data["accounts"]) == [stack.names["yx"]] and data["fallbacks"] == []


def test_given_retries_that_gave_up_on_try_later_then_even_a_finished_campaign_moves_them_to_the_fallback(
    routing_stack: Any,
) -> None:
    # Given (no worker) a trigger campaign whose second request failed for good on "try later" (the
    # backoff ran out before failover_after), and which the beat already called completed
    stack = routing_stack([Acct("tg", "trigger", "tg"), Acct("yx", "yunxin", "yx")], worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in numbers(100)])
    created = campaigns.create(
        stack.sessions,
        stack.settings,
        path,
        TEMPLATE,
        stack.names["tg"],
        actor="t",
        fallbacks=[stack.names["yx"]],
    )
    campaigns.start(stack.sessions, created.campaign_id, "t")
    with stack.sessions() as session:
        ids = list(
            session.execute(
                select(Chunk.id).where(Chunk.campaign_id == created.campaign_id).order_by(Chunk.seq)
            ).scalars()
        )
        session.execute(update(Chunk).where(Chunk.id == ids[0]).values(state="accepted"))
        session.execute(update(Recipient).where(Recipient.chunk_id == ids[0]).values(state="accepted"))
        session.execute(
            update(Chunk)
            .where(Chunk.id == ids[1])
            .values(state="failed", error_class="retry_later", code="-1")
        )
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id == ids[1])
            .values(state="failed", error_class="retry_later")
        )
        session.execute(update(Campaign).where(Campaign.id == created.campaign_id).values(state="completed"))
        session.commit()

    # When the beat's failover pass runs
    new = failover.run(stack.sessions, stack.settings)

    # Then the 50 failed recipients are queued again on the fallback, and the campaign runs again
    assert len(new) == 1
    data = status(stack, created.campaign_id)
    assert data["state"] == "running" and data["account"] == stack.names["yx"]
    assert data["accounts"][stack.names["yx"]]["queued"] == 50
    assert data["accounts"][stack.names["tg"]]["accepted"] == 50
    assert failovers(stack, created.campaign_id)[0]["reason"] == "retry_later"


def test_given_an_ab_campaign_when_it_fails_over_then_each_new_request_still_carries_one_variant(
    routing_stack: Any,
) -> None:
    stack = routing_stack([Acct("tg", "trigger", "tg"), Acct("yx", "yunxin", "yx")], worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [(m, f"客户{i}") for i, m in enumerate(numbers(100))])
    created = campaigns.create(
        stack.sessions, stack.settings, path, "{姓名}您好，周末有礼，回T退订【测试】", stack.names["tg"],
        actor="t", fallbacks=[stack.names["yx"]], variant_templates=["{姓名}您好，到店有礼，回T退订【测试】"],
    )  # fmt: skip
    campaigns.start(stack.sessions, created.campaign_id, "t")
    with stack.sessions() as session:
        session.execute(
            update(Chunk)
            .where(Chunk.campaign_id == created.campaign_id)
            .values(error_class="account", code="-1")
        )
        session.commit()
    campaigns.pause(stack.sessions, created.campaign_id, "system")

    new = failover.run(stack.sessions, stack.settings)

    # 100 personalised messages would fit one yunxin request; one per variant instead
    with stack.sessions() as session:
        per_chunk = session.execute(
            select(Recipient.chunk_id, Recipient.variant).where(Recipient.chunk_id.in_(new))
        ).all()
    by_chunk: dict[int, set[str | None]] = {}
    for chunk_id, variant in per_chunk:
        by_chunk.setdefault(chunk_id, set()).add(variant)
    assert len(new) == 2 and all(len(v) == 1 for v in by_chunk.values())
    assert sorted(next(iter(by_chunk[c])) or "" for c in new) == ["A", "B"]
    assert len(per_chunk) == 100


def test_given_a_campaign_moved_after_its_first_account_sent_then_cost_and_reports_follow_the_account_that_sent(
    routing_stack: Any,
) -> None:
    # Given a yunxin campaign (0.01 a segment, delivery reports) whose three recipients yunxin took,
    # moved since to an entinfo account (1 a segment, no reports)
    stack = routing_stack(
        [Acct("yx", "yunxin", "yx", price="0.01"), Acct("en", "entinfo", ENTINFO_SN, price="1")], worker=False
    )
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in numbers(3)])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.names["yx"], actor="t",
        fallbacks=[stack.names["en"]],
    )  # fmt: skip
    campaign_id = created.campaign_id
    (chunk_id,) = campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == chunk_id).values(state="accepted", batch_id="7"))
        session.execute(
            update(Recipient).where(Recipient.chunk_id == chunk_id).values(state="accepted", batch_id="7")
        )
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    failover.switch(stack.sessions, stack.settings, campaign_id, "account")

    # When the beat finds everything sent
    scheduler.complete_finished(stack.sessions)

    # Then the cost is yunxin's price, and yunxin's reports are still due for them
    data = status(stack, campaign_id)
    assert (data["account"], data["state"], data["cost"]) == (stack.names["en"], "sent", "0.03")
    assert (data["has_reports"], data["waiting"], data["reports_due"]) == (True, "reports", 3)
    assert "note" not in data
