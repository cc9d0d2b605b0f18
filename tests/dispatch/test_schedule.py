"""Scheduled campaigns start on time (not before), and a send window holds a campaign's chunks.

The window maths (:func:`in_window`, :func:`next_window_open`) is pure and tested on its own first:
China time whatever the caller's zone, the midnight edge, and ``00:00-24:00`` meaning always.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from dispatcher import campaigns, scheduler
from dispatcher.cli import app as cli_app
from dispatcher.config import validate_window
from dispatcher.dispatch import in_window, next_window_open
from dispatcher.store import Chunk, Recipient, utcnow
from tests.dispatch.scenario import finished
from tests.stack import Stack, write_contacts
from workers import tasks

CST = ZoneInfo("Asia/Shanghai")
TZ = "Asia/Shanghai"
DAY = validate_window("08:00-21:00")
ALWAYS = validate_window("00:00-24:00")


# ---- pure: the window ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now_utc", "expected_utc"),
    [
        # 20:59:59 China time: still inside, send now
        (datetime(2026, 3, 1, 12, 59, 59, tzinfo=UTC), datetime(2026, 3, 1, 12, 59, 59, tzinfo=UTC)),
        # 21:00 China time: the window has closed, it opens tomorrow 08:00 China time (00:00 UTC)
        (datetime(2026, 3, 1, 13, 0, tzinfo=UTC), datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
        # 23:59:59 China time, one second before midnight: tomorrow 08:00
        (datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC), datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
        # 00:00 China time (16:00 UTC the day before): the same China day's 08:00
        (datetime(2026, 3, 1, 16, 0, tzinfo=UTC), datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
        # 07:59:59 China time: opens in one second
        (datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC), datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
        # 08:00 China time exactly: inside
        (datetime(2026, 3, 2, 0, 0, tzinfo=UTC), datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
    ],
)
def test_given_a_daytime_window_when_asked_then_the_next_opening_is_in_china_time(
    now_utc: datetime, expected_utc: datetime
) -> None:
    assert next_window_open(now_utc, DAY, TZ) == expected_utc
    assert in_window(now_utc, DAY, TZ) is (now_utc == expected_utc)


def test_given_a_window_from_midnight_when_just_before_midnight_then_it_opens_at_midnight() -> None:
    window = validate_window("00:00-01:00")
    before = datetime(2026, 3, 1, 23, 59, 30, tzinfo=CST)
    assert not in_window(before, window, TZ)
    assert next_window_open(before, window, TZ) == datetime(2026, 3, 2, 0, 0, tzinfo=CST)
    assert in_window(datetime(2026, 3, 2, 0, 0, tzinfo=CST), window, TZ)
    assert not in_window(datetime(2026, 3, 2, 1, 0, tzinfo=CST), window, TZ)  # the end is exclusive


def test_given_a_caller_in_another_zone_when_asked_then_the_answer_keeps_the_callers_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 3, 1, 14, 30, tzinfo=berlin)  # 21:30 China time: closed
    opening = next_window_open(now, DAY, TZ)
    assert opening.tzinfo is berlin
    assert opening == datetime(2026, 3, 2, 8, 0, tzinfo=CST)


@pytest.mark.parametrize("minute", [0, 1, 8 * 60, 21 * 60, 23 * 60 + 59])
def test_given_the_always_window_when_asked_at_any_minute_then_it_is_open(minute: int) -> None:
    now = datetime(2026, 3, 1, tzinfo=CST) + timedelta(minutes=minute, seconds=59)
    assert ALWAYS == (0, 24 * 60)
    assert in_window(now, ALWAYS, TZ)
    assert next_window_open(now, ALWAYS, TZ) == now


# ---- end to end: the beat's tick and a real worker ------------------------------------------------


def ledger_numbers(stack: Stack) -> Counter[str]:
    return Counter(e["mobile"] for e in stack.sim.ledger()["accepted"])


def test_given_a_campaign_created_for_in_five_seconds_then_the_tick_starts_it_on_time_not_before(
    make_stack: Any,
) -> None:
    stack = make_stack()
    rows = [(str(13500000000 + i), "王五") for i in range(20)]
    path = write_contacts(stack.tmp / "c.xlsx", rows)
    # Five seconds ahead: `campaign create` can take two of them on a loaded 2-core machine
    start_at = datetime.now(CST).replace(microsecond=0) + timedelta(seconds=5)

    # Given `campaign create --at <now + 5 s>` (China time, as a marketer writes it)
    result = CliRunner().invoke(
        cli_app,
        ["campaign", "create", str(path), "--template", "{姓名}您好【测试】", "--account",
         stack.accounts["webservice"], "--at", start_at.isoformat(), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["state"] == "scheduled"

    def state() -> str:
        with stack.sessions() as session:
            return str(campaigns.status(session, created["id"])["state"])

    # When the beat ticks (every 0.2 s here)
    ticks: list[tuple[datetime, datetime, str]] = []
    while state() == "scheduled" and len(ticks) < 100:
        before = utcnow()
        tasks.run_tick(stack.app)
        ticks.append((before, utcnow(), state()))
        time.sleep(0.2)

    # Then it stayed scheduled, with nothing sent, through every tick that ended before its start time
    early = [t for t in ticks if t[1] < start_at]
    assert len(early) >= 3 and all(s == "scheduled" for _, _, s in early)
    # ... and the first tick that began at or after it launched it
    launched = next(t for t in ticks if t[2] != "scheduled")
    assert launched[1] >= start_at
    # (a tick plus the 0.2 s pause; a tick can take most of a second under load)
    assert launched[0] <= start_at + timedelta(seconds=1.5)
    stack.wait_for(lambda: finished(stack, created["id"]))
    assert ledger_numbers(stack) == Counter(r[0] for r in rows)
    with stack.sessions() as session:
        audit_start = campaigns.get(session, created["id"]).start_at
    assert audit_start == start_at


def test_given_a_window_that_excludes_now_when_started_then_chunks_wait_for_the_next_opening(
    make_stack: Any,
) -> None:
    stack = make_stack()
    now = datetime.now(CST)
    # A one-hour window at least six hours away, either later today or tomorrow morning (China time).
    window = "22:00-23:00" if now.hour < 12 else "06:00-07:00"
    opening = next_window_open(now, validate_window(window), TZ)
    assert opening - now > timedelta(hours=6)
    rows = [(str(13400000000 + i), "李四") for i in range(10)]
    created = campaigns.create(
        stack.sessions,
        stack.settings,
        write_contacts(stack.tmp / "c.xlsx", rows),
        "{姓名}您好【测试】",
        stack.accounts["webservice"],
        actor="t",
        window=window,
    )

    # Given a running campaign whose send window excludes now, handed to a worker
    ids = campaigns.start(stack.sessions, created.campaign_id, "t")
    tasks.enqueue(ids, app=stack.app)

    def held() -> list[tuple[str, datetime | None]]:
        with stack.sessions() as session:
            return list(session.execute(select(Chunk.state, Chunk.not_before).where(Chunk.id.in_(ids))).all())

    # When the worker has looked at every chunk
    stack.wait_for(lambda: all(nb is not None for _, nb in held()))

    # Then every chunk is still queued, held until the window's next opening, and nothing was sent
    assert {(s, nb) for s, nb in held()} == {("queued", opening.replace(second=0, microsecond=0))}
    assert ledger_numbers(stack) == Counter()
    # ... the beat does not hand them out again before the opening, and does once it has come
    assert scheduler.requeue_stale(stack.sessions, ahead=timedelta(minutes=5)) == []
    assert scheduler.requeue_stale(stack.sessions, ahead=opening - utcnow() + timedelta(minutes=1)) == sorted(
        ids
    )


def test_given_a_beat_step_that_fails_when_the_tick_runs_then_the_other_steps_still_run(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running campaign whose every chunk has its final answer (the tick's last step completes it)
    stack = make_stack(worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [(str(13500000000 + i), "王五") for i in range(3)])
    created = campaigns.create(
        stack.sessions, stack.settings, path, "{姓名}您好【测试】", stack.accounts["entinfo"], actor="t"
    )
    campaigns.start(stack.sessions, created.campaign_id, "t")
    with stack.sessions() as session:
        session.execute(update(Chunk).values(state="failed", error_class="bad_request"))
        session.execute(update(Recipient).values(state="failed", error_class="bad_request"))
        session.commit()
    # ... and a step before it, the failover, failing (a store error, a campaign it cannot handle)
    from dispatcher import failover

    def broken(*_args: Any, **_kwargs: Any) -> list[int]:
        raise RuntimeError("the failover step failed")

    monkeypatch.setattr(failover, "run", broken)

    # When the beat ticks
    with pytest.raises(RuntimeError, match="failover step failed"):
        tasks.run_tick(stack.app)

    # Then the steps after it ran all the same: the campaign is complete
    with stack.sessions() as session:
        assert campaigns.status(session, created.campaign_id)["state"] == "completed"
