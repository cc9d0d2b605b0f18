"""The balance guard: a campaign does not start (by hand, from the web, or by the beat) unless its
accounts' balance covers its cost; the figures say why. Against the simulator's balances (in segments,
so ``price_per_segment = 1``), over real HTTP, with the real Redis gate."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from dispatcher import balance_guard, campaigns
from dispatcher.cli import app as cli_app
from dispatcher.store import AuditEntry, utcnow
from tests.routing.conftest import Acct, RoutingStack
from tests.stack import write_contacts
from workers import tasks

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"  # one segment
CST = ZoneInfo("Asia/Shanghai")


def contacts(stack: RoutingStack, count: int, first: int = 13900000000) -> str:
    return str(write_contacts(stack.tmp / "c.xlsx", [(str(first + i), "张三") for i in range(count)]))


def status(stack: RoutingStack, campaign_id: int) -> dict[str, Any]:
    with stack.sessions() as session:
        return campaigns.status(session, campaign_id)


# ---- pure: the plan --------------------------------------------------------------------------------


def test_given_balances_when_planned_then_each_account_takes_what_it_pays_for_and_the_rest_is_short() -> None:
    one = Decimal("0.05")
    p = balance_guard.plan(1000, [("a", one, Decimal("20"), None), ("b", one, Decimal("10"), None)])
    assert [(s.account, s.segments) for s in p.shares] == [("a", 400), ("b", 200)]
    assert p.short == 400 and p.refused and p.cost == Decimal("50.00")
    covered = balance_guard.plan(1000, [("a", one, Decimal("20"), None), ("b", one, Decimal("100"), None)])
    assert [s.segments for s in covered.shares] == [400, 600] and not covered.refused
    # No price: not costed, never refused; an unknown balance is not a reason to refuse either
    assert not balance_guard.plan(10, [("a", None, Decimal("0"), None)]).refused
    assert not balance_guard.plan(10, [("a", one, None, "timeout")]).refused


# ---- by hand -----------------------------------------------------------------------------------------


def test_given_too_little_balance_when_started_by_hand_then_refused_with_the_figures_and_nothing_sent(
    routing_stack: Any,
) -> None:
    # Given an account holding 50 segments (price 1: the simulator counts segments) and 120 recipients
    stack = routing_stack([Acct("yx", "yunxin", "poor", balance=50)])
    created = campaigns.create(
        stack.sessions, stack.settings, contacts(stack, 120), TEMPLATE, stack.names["yx"], actor="t"
    )

    # When it is started by hand
    result = CliRunner().invoke(cli_app, ["campaign", "start", str(created.campaign_id)])

    # Then the start is refused with the figures, and nothing was sent
    assert result.exit_code == 2, result.output
    assert (
        f"campaign {created.campaign_id} not started: it costs 120 (120 segments × 1) but account "
        f"{stack.names['yx']} holds 50; 70 segments are not covered"
    ) in result.output
    assert status(stack, created.campaign_id)["state"] == "draft"
    assert stack.ledger() == []


def test_given_enough_balance_when_started_by_hand_then_it_starts_and_says_the_figures(
    routing_stack: Any,
) -> None:
    stack = routing_stack([Acct("yx", "yunxin", "rich", balance=500)])
    created = campaigns.create(
        stack.sessions, stack.settings, contacts(stack, 120), TEMPLATE, stack.names["yx"], actor="t"
    )
    result = CliRunner().invoke(cli_app, ["campaign", "start", str(created.campaign_id)])
    assert result.exit_code == 0, result.output
    assert (
        f"balance check: 120 segments, cost 120: {stack.names['yx']} 120 segments (120 of 500)"
        in result.output
    )
    assert status(stack, created.campaign_id)["state"] == "running"


def test_given_a_fallback_when_the_first_account_is_short_then_the_plan_puts_the_rest_on_the_fallback(
    routing_stack: Any,
) -> None:
    stack = routing_stack(
        [Acct("yx", "yunxin", "poor", balance=50), Acct("tg", "trigger", "spare", balance=1000)]
    )
    created = campaigns.create(
        stack.sessions, stack.settings, contacts(stack, 120), TEMPLATE, stack.names["yx"], actor="t",
        fallbacks=[stack.names["tg"]],
    )  # fmt: skip
    plan = balance_guard.check(stack.sessions, stack.settings, stack.redis, created.campaign_id, wait=12)
    assert not plan.refused
    assert [(s.account, s.segments) for s in plan.shares] == [
        (stack.names["yx"], 50),
        (stack.names["tg"], 70),
    ]


def test_given_balance_asked_twice_within_the_vendors_interval_then_the_gateway_is_asked_once(
    routing_stack: Any,
) -> None:
    # yunxin allows one balance query per 10 s (-23 otherwise): the second check uses the first answer
    stack = routing_stack([Acct("yx", "yunxin", "rich", balance=500)])
    first = balance_guard.read_balance(stack.settings, stack.redis, stack.names["yx"])
    second = balance_guard.read_balance(stack.settings, stack.redis, stack.names["yx"], wait=1.0)
    assert (first.value, first.cached) == ("500", False)
    assert (second.value, second.cached, second.error) == ("500", True, None)
    assert not [r for r in stack.sim.ledger()["rejected"] if r["code"] == -23]


def test_given_an_entinfo_account_when_its_balance_is_read_then_the_simulator_answers_it(
    routing_stack: Any,
) -> None:
    # entinfo's `balance` (the vendor's client: sn and the MD5 pwd) is simulated: the guard reads it.
    stack = routing_stack([Acct("en", "entinfo", "SDK-DEMO-010-00007", balance=321)], worker=False)
    reading = balance_guard.read_balance(stack.settings, stack.redis, stack.names["en"])
    assert (reading.value, reading.cached, reading.error) == ("321", False, None)


def test_given_a_scheduled_campaign_without_the_money_then_the_beat_leaves_it_scheduled_and_says_why(
    routing_stack: Any,
) -> None:
    stack = routing_stack([Acct("yx", "yunxin", "poor", balance=50)])
    at = datetime.now(CST) - timedelta(seconds=1)
    created = campaigns.create(
        stack.sessions,
        stack.settings,
        contacts(stack, 120),
        TEMPLATE,
        stack.names["yx"],
        actor="t",
        start_at=at,
    )
    # When the beat ticks, twice
    tasks.run_tick(stack.app)
    tasks.run_tick(stack.app)

    # Then it is still scheduled, waiting for the balance, with the figures; audited once
    data = status(stack, created.campaign_id)
    assert data["state"] == "scheduled" and data["waiting"] == "balance"
    hold = data["balance_hold"]
    assert (hold["segments"], hold["cost"], hold["balance"], hold["short_segments"]) == (120, "120", "50", 70)
    with stack.sessions() as session:
        holds = session.query(AuditEntry).filter_by(
            campaign_id=created.campaign_id, action="campaign.balance_hold"
        )
        assert holds.count() == 1
    assert stack.ledger() == []

    # When the account is topped up, the next tick launches it (the gate's interval having passed)
    stack.sim.call(lambda state: [setattr(a, "balance", 1000) for a in state.accounts.values()])
    deadline = time.monotonic() + 20
    while status(stack, created.campaign_id)["state"] == "scheduled" and time.monotonic() < deadline:
        tasks.run_tick(stack.app)
        time.sleep(0.5)
    data = status(stack, created.campaign_id)
    assert data["state"] != "scheduled" and "balance_hold" not in data
    assert utcnow() > at


def test_waiting_for_the_balance_is_said_in_words_in_chinese_and_english() -> None:
    from dispatcher import i18n, labels

    status = {"waiting": "balance", "balance_hold": {"cost": "120", "balance": "50", "short_segments": 70}}
    with i18n.use("en"):
        assert labels.waiting_text(status) == (
            "Not started: it costs 120 but the account holds 50 (70 segments not covered); top up the account"
        )
    with i18n.use("zh_CN"):
        assert (
            labels.waiting_text(status) == "未启动：预计费用 120，账户余额仅 50（尚差 70 条）；请为账户充值"
        )


def test_given_a_day_old_balance_then_doctor_reads_it_again_within_the_vendors_interval_and_says_its_age(
    routing_stack: Any,
) -> None:
    from dispatcher.operations.doctor import Doctor, balance_reader
    from dispatcher.ratelimit import BalanceGate

    stack = routing_stack([Acct("en", "entinfo", "SDK-DEMO-010-00007", balance=321)], worker=False)
    name = stack.names["en"]
    # The gate was just used (another process read it), and the last answer kept is a day old
    assert balance_guard.read_balance(stack.settings, stack.redis, name).value == "321"
    BalanceGate(stack.redis, name, 5.0).remember("999", at=time.time() - 86400)
    doctor = Doctor(stack.settings, "q", stack.redis, balance_reader(stack.settings, stack.redis))
    check = doctor.account(name)
    # Then doctor waited for the gate (entinfo: 5 s) and read it fresh, saying how old its figure is
    assert check.ok and check.params["value"] == "321", check.detail
    assert float(check.params["age"]) < 5 and re.search(r"read \d+ s ago", check.detail)
    # Without waiting, the day-old figure does not pass, and says its age
    stale = Doctor(stack.settings, "q", stack.redis, balance_reader(stack.settings, stack.redis, wait=False))
    BalanceGate(stack.redis, name, 5.0).remember("999", at=time.time() - 86400)
    old = stale.account(name)
    assert not old.ok and re.search(r"read 864\d\d s ago", old.detail), old.detail
