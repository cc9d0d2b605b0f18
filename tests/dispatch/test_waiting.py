"""``status["waiting"]``: what a campaign waits for, said by the store (and the rules, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatcher import campaigns, scheduler
from dispatcher.store import Campaign
from dispatcher.waiting import Pending, waiting
from tests.stack import Stack, write_contacts
from workers.tasks import enqueue

SHANGHAI = ZoneInfo("Asia/Shanghai")
TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"
NOTHING = Pending(0, 0, 0, None, False, False, None, 0)


def campaign(state: str, window: tuple[int, int] = (8 * 60, 21 * 60), vendor: str = "yunxin") -> Campaign:
    return Campaign(
        id=1,
        state=state,
        vendor=vendor,
        window_start=window[0],
        window_end=window[1],
        timezone="Asia/Shanghai",
    )


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(
    ("state", "pending", "now", "expected"),
    [
        # started at 06:40 China time: waits for the window, which opens at 08:00 (00:00 UTC)
        ("running", Pending(4, 0, 4, None, False, False, None, 0), at(6, 40),
         {"waiting": "window", "window_opens_at": "2026-12-01T00:00:00+00:00"}),
        # at 21:30 the next opening is tomorrow's
        ("running", Pending(4, 0, 0, at(22), False, False, None, 0), at(21, 30),
         {"waiting": "window", "window_opens_at": "2026-12-02T00:00:00+00:00"}),
        # inside the window, sending
        ("running", Pending(4, 1, 3, None, False, False, None, 0), at(9), {"waiting": None}),
        # the gateway said "too frequent": nothing is due before the backoff ends
        ("running", Pending(2, 0, 0, at(9, 1), True, False, None, 0), at(9),
         {"waiting": "rate_limit", "retry_at": at(9, 1).isoformat()}),
        # the gateway said "outside sending hours" inside our window: its hours
        ("running", Pending(2, 0, 0, at(10), False, True, None, 0), at(9),
         {"waiting": "window", "window_opens_at": at(10).isoformat()}),
        ("scheduled", NOTHING, at(9), {"waiting": "schedule"}),
        ("paused", Pending(3, 0, 3, None, False, False, None, 0), at(9), {"waiting": None}),  # a person's
        ("sent", Pending(0, 0, 0, None, False, False, None, 12), at(9), {"waiting": "reports", "reports_due": 12}),
        ("completed", NOTHING, at(9), {"waiting": None}),
        ("running", NOTHING, at(6), {"waiting": None}),  # nothing left to send
    ],
)  # fmt: skip
def test_given_a_campaign_and_its_open_work_then_waiting_says_what_it_waits_for(
    state: str, pending: Pending, now: datetime, expected: dict[str, object]
) -> None:
    assert waiting(campaign(state), pending, now) == expected


def test_given_a_campaign_paused_by_an_account_error_then_it_waits_for_the_account_with_code_and_meaning() -> (
    None
):
    paused = Pending(3, 0, 3, None, False, False, "-3", 0)
    found = waiting(campaign("paused", vendor="webservice"), paused, at(9))
    assert found["waiting"] == "account"
    error = found["account_error"]
    assert error["code"] == "-3" and error["meaning"] and error["meaning_zh"]


def _window_excluding(now: datetime) -> tuple[str, datetime]:
    """A one-hour send window that does not hold ``now`` (China time), and when it next opens (UTC)."""
    local = now.astimezone(SHANGHAI)
    if local.hour <= 21:
        opens = local.replace(hour=local.hour + 1, minute=0, second=0, microsecond=0)
        return f"{local.hour + 1:02d}:00-{local.hour + 2:02d}:00", opens.astimezone(UTC)
    opens = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return "00:00-01:00", opens.astimezone(UTC)


def test_given_a_campaign_started_outside_its_window_then_its_status_waits_for_the_window(make_stack) -> None:
    # Given a campaign whose window opens later today (or tomorrow), started now, with a worker running
    stack: Stack = make_stack()
    window, opens = _window_excluding(datetime.now(UTC))
    path = write_contacts(stack.tmp / "c.xlsx", [(str(13900000000 + i), "张三") for i in range(5)])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.accounts["yunxin"], actor="t", window=window
    )
    enqueue(campaigns.start(stack.sessions, created.campaign_id, "t"), app=stack.app)

    # Then the worker leaves its chunks for the window, and the status says what it waits for, and until when
    def status() -> dict[str, object]:
        scheduler.complete_finished(stack.sessions)
        with stack.sessions() as session:
            return campaigns.status(session, created.campaign_id)

    stack.wait_for(lambda: status()["chunks"] == {"queued": 1} and status()["waiting"] == "window")
    found = status()
    assert found["state"] == "running" and found["accepted"] == 0
    assert found["window_opens_at"] == opens.isoformat()
    assert stack.sim.ledger()["accepted"] == []


def test_given_a_wrong_password_when_the_campaign_sends_then_it_waits_for_the_account(make_stack) -> None:
    # Given an account whose password the gateway refuses
    stack: Stack = make_stack(overrides={"webservice": {"password": "wrong"}})
    path = write_contacts(stack.tmp / "c.xlsx", [(str(13900000000 + i), "张三") for i in range(3)])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.accounts["webservice"], actor="t"
    )
    enqueue(campaigns.start(stack.sessions, created.campaign_id, "t"), app=stack.app)

    # Then it is paused, waiting for the account, with the gateway's code and what it means
    def status() -> dict[str, object]:
        with stack.sessions() as session:
            return campaigns.status(session, created.campaign_id)

    stack.wait_for(lambda: status()["state"] == "paused", timeout=60)
    found = status()
    assert found["waiting"] == "account"
    error = found["account_error"]
    assert isinstance(error, dict) and error["code"].startswith("-") and error["meaning_zh"]


def test_given_a_campaign_waiting_for_its_window_then_the_cli_status_says_so_in_words(make_stack) -> None:
    from typer.testing import CliRunner

    from dispatcher.cli import app

    # Given a started campaign whose window is closed (no worker: it stays queued)
    stack: Stack = make_stack(worker=False)
    window, opens = _window_excluding(datetime.now(UTC))
    path = write_contacts(stack.tmp / "c.xlsx", [("13900000000", "张三")])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.accounts["yunxin"], actor="t", window=window
    )
    campaigns.start(stack.sessions, created.campaign_id, "t")
    # When an operator asks for its status
    shown = CliRunner().invoke(app, ["campaign", "status", str(created.campaign_id)])
    # Then it says what it waits for, in English, in China time
    assert shown.exit_code == 0, shown.output
    clock = opens.astimezone(SHANGHAI).strftime("%H:%M")
    assert "Waiting for the send window: sending starts at" in shown.output and clock in shown.output
    assert "(China time)" in shown.output
