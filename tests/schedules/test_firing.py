"""Recurring schedules on a real store (SQLite, and PostgreSQL when configured), with the clock injected:
each firing creates exactly one campaign from the newest file, and every firing that sends nothing is
recorded with its reason."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from dispatcher.errors import InputError
from dispatcher.schedules import firing, records, timing
from dispatcher.store import Campaign, CampaignState
from dispatcher.store.models import Schedule, ScheduleRun
from dispatcher.store.types import RunOutcome
from tests.stack import Stack, write_contacts

CHINA = timing.CHINA
TEMPLATE = "{姓名}您好，会员日八折，回T退订【测试】"


def china(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA).astimezone(UTC)  # type: ignore[misc]


# ---- pure ------------------------------------------------------------------------------------------


def test_given_a_cron_when_planned_then_firings_within_the_grace_are_due_and_older_ones_missed() -> None:
    # Given: 10:00 every day; last looked at 3 days ago at 09:00; now 10:20, grace 1h
    after = china(2026, 12, 4, 9, 0)
    now = china(2026, 12, 7, 10, 20)
    plan = timing.plan("0 10 * * *", after, now, timedelta(hours=1))
    # Then: today's 10:00 is due, the three earlier ones were missed (never sent late)
    assert plan.due == [china(2026, 12, 7, 10, 0)]
    assert plan.missed == [china(2026, 12, 4, 10, 0), china(2026, 12, 5, 10, 0), china(2026, 12, 6, 10, 0)]
    assert plan.more_missed == 0


def test_given_a_beat_down_for_weeks_when_planned_then_only_the_newest_missed_are_listed() -> None:
    plan = timing.plan("0 * * * *", china(2026, 11, 1, 0, 30), china(2026, 12, 1, 0, 30), timedelta(hours=1))
    assert len(plan.missed) == timing.MAX_MISSED_LISTED
    assert plan.more_missed == 30 * 24 - 1 - timing.MAX_MISSED_LISTED
    assert plan.due == [china(2026, 12, 1, 0, 0)]


def test_given_the_calendar_then_adjusted_weekends_work_and_holiday_weekdays_do_not() -> None:
    assert timing.is_workday(date(2026, 2, 14))  # a Saturday, worked for the Spring Festival (调休)
    assert not timing.is_workday(date(2026, 10, 1))  # a Thursday, National Day
    assert timing.is_workday(date(2026, 12, 7))  # an ordinary Monday
    first, last = timing.calendar_years()
    with pytest.raises(timing.CalendarGap, match=f"{first}-{last}"):
        timing.is_workday(date(last + 1, 3, 1))


@pytest.mark.parametrize("bad", ["", "* * * *", "61 * * * *", "every day"])
def test_given_a_bad_cron_then_it_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(InputError, match="cron"):
        timing.parse_cron(bad)


# ---- on the store ----------------------------------------------------------------------------------


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(worker=False)


def _add(stack: Stack, source: Path | str, *, cron: str = "0 10 * * *", **kwargs: object) -> None:
    new = records.NewSchedule(
        "会员日",
        cron,
        str(source),
        str(kwargs.pop("template", TEMPLATE)),
        stack.accounts["yunxin"],
        **kwargs,  # type: ignore[arg-type]
    )
    records.add(stack.sessions, stack.settings, new, "test")


def _look_from(stack: Stack, moment: datetime) -> None:
    with stack.sessions() as session:
        session.execute(update(Schedule).values(cursor=moment))
        session.commit()


def _runs(stack: Stack) -> list[ScheduleRun]:
    with stack.sessions() as session:
        return list(session.execute(select(ScheduleRun).order_by(ScheduleRun.fire_at)).scalars())


def _campaigns(stack: Stack) -> list[Campaign]:
    with stack.sessions() as session:
        return list(session.execute(select(Campaign).order_by(Campaign.id)).scalars())


def _drop(folder: Path, name: str, rows: list[tuple[str, str]], age: float = 0.0) -> Path:
    path = write_contacts(folder / name, rows)
    stamp = path.stat().st_mtime - age
    os.utime(path, (stamp, stamp))
    return path


def test_given_a_due_firing_then_one_campaign_is_made_from_the_newest_file_and_scheduled_at_once(
    stack: Stack, tmp_path: Path
) -> None:
    # Given: a CRM's export folder with an older and a newer list
    folder = tmp_path / "exports"
    folder.mkdir()
    _drop(folder, "old.xlsx", [("13900000001", "旧")], age=3600)
    _drop(folder, "new.xlsx", [("13900000002", "王"), ("13900000003", "李")])
    _add(stack, folder)
    _look_from(stack, china(2026, 12, 7, 9, 0))
    # When: the beat looks at 10:00:05
    fired = firing.fire_due(stack.sessions, stack.settings, now=china(2026, 12, 7, 10, 0, 5))
    # Then: one campaign, named after the firing, from the newest file, scheduled for the firing time
    assert [f.outcome for f in fired] == [RunOutcome.CREATED]
    (campaign,) = _campaigns(stack)
    assert campaign.name == "会员日 2026-12-07 10:00"
    assert campaign.state == CampaignState.SCHEDULED
    assert campaign.start_at == china(2026, 12, 7, 10, 0)
    assert campaign.created_by == "schedule:会员日"
    (run,) = _runs(stack)
    assert run.campaign_id == campaign.id and run.source_file and run.source_file.endswith("new.xlsx")


def test_given_an_unchanged_source_then_the_next_firing_sends_nothing_and_says_why(
    stack: Stack, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    _drop(folder, "a.xlsx", [("13900000002", "王")], age=60)
    _add(stack, folder)
    _look_from(stack, china(2026, 12, 7, 9, 0))
    firing.fire_due(stack.sessions, stack.settings, now=china(2026, 12, 7, 10, 0, 1))
    # When: the next day's firing finds the same file
    fired = firing.fire_due(stack.sessions, stack.settings, now=china(2026, 12, 8, 10, 0, 1))
    # Then: recorded as unchanged, no second campaign
    assert [f.outcome for f in fired] == [RunOutcome.UNCHANGED]
    assert "has not changed since the firing of 2026-12-07 10:00" in (fired[0].reason or "")
    assert len(_campaigns(stack)) == 1
    # When: a new export is dropped in the folder before the third firing
    _drop(folder, "b.xlsx", [("13900000005", "赵")])
    fired = firing.fire_due(stack.sessions, stack.settings, now=china(2026, 12, 9, 10, 0, 1))
    # Then: it is picked up
    assert [f.outcome for f in fired] == [RunOutcome.CREATED]
    assert _runs(stack)[-1].source_file.endswith("b.xlsx")  # type: ignore[union-attr]
    assert len(_campaigns(stack)) == 2


def test_given_a_beat_down_past_the_grace_then_the_firing_is_skipped_and_recorded(
    stack: Stack, tmp_path: Path
) -> None:
    source = _drop(tmp_path, "list.xlsx", [("13900000002", "王")])
    _add(stack, source, grace="30m")
    _look_from(stack, china(2026, 12, 7, 9, 0))
    # When: the beat comes back at 10:45, 45 minutes after the firing
    fired = firing.fire_due(stack.sessions, stack.settings, now=china(2026, 12, 7, 10, 45))
    # Then: nothing is sent late; the firing is recorded as missed, with the grace
    assert [f.outcome for f in fired] == [RunOutcome.MISSED]
    assert "30m" in (fired[0].reason or "")
    assert _campaigns(stack) == []
    assert [r.outcome for r in _runs(stack)] == [RunOutcome.MISSED]


def test_given_workdays_then_an_adjusted_saturday_fires_and_a_holiday_weekday_does_not(
    stack: Stack, tmp_path: Path
) -> None:
    source = _drop(tmp_path, "list.xlsx", [("13900000002", "王")])
    _add(stack, source, workdays=True)
    # When: the firing on 2026-10-01 (Thursday, National Day)
    _look_from(stack, china(2026, 10, 1, 9, 0))
    holiday = firing.fire_due(stack.sessions, stack.settings, now=china(2026, 10, 1, 10, 0, 1))
    # Then: not sent, recorded with the holiday's name
    assert [f.outcome for f in holiday] == [RunOutcome.NOT_WORKDAY]
    assert "National Day" in (holiday[0].reason or "")
    # When: the firing on 2026-02-14 (Saturday worked for the Spring Festival)
    _look_from(stack, china(2026, 2, 14, 9, 0))
    worked = firing.fire_due(stack.sessions, stack.settings, now=china(2026, 2, 14, 10, 0, 1))
    # Then: it fires
    assert [f.outcome for f in worked] == [RunOutcome.CREATED]
    assert len(_campaigns(stack)) == 1


def test_given_a_firing_whose_checks_fail_then_it_is_recorded_with_the_reason(
    stack: Stack, tmp_path: Path
) -> None:
    source = _drop(tmp_path, "list.xlsx", [("13900000002", "王")])
    _add(stack, source, template="{会员号}您好，回T退订【测试】")  # no such column
    _look_from(stack, china(2026, 12, 7, 9, 0))
    fired = firing.fire_due(stack.sessions, stack.settings, now=china(2026, 12, 7, 10, 0, 1))
    assert [f.outcome for f in fired] == [RunOutcome.FAILED]
    assert "{会员号}" in (fired[0].reason or "")
    (run,) = _runs(stack)
    assert run.detail and run.detail["msgid"]  # said in the reader's language on the page
    assert _campaigns(stack) == []


def test_given_a_source_that_matches_nothing_then_the_firing_fails_naming_it(
    stack: Stack, tmp_path: Path
) -> None:
    _add(stack, str(tmp_path / "exports" / "members-*.xlsx"))
    _look_from(stack, china(2026, 12, 7, 9, 0))
    fired = firing.fire_due(stack.sessions, stack.settings, now=china(2026, 12, 7, 10, 0, 1))
    assert [f.outcome for f in fired] == [RunOutcome.FAILED]
    assert "members-*.xlsx" in (fired[0].reason or "")


def test_given_overlapping_ticks_then_each_firing_makes_exactly_one_campaign(
    stack: Stack, tmp_path: Path
) -> None:
    # Given: four beats (or overlapping ticks) looking at the same firing at once, none having moved
    # the cursor yet
    source = _drop(tmp_path, "list.xlsx", [("13900000002", "王"), ("13900000003", "李")])
    _add(stack, source)
    _look_from(stack, china(2026, 12, 7, 9, 0))
    now = china(2026, 12, 7, 10, 0, 1)
    results: list[list[firing.Fired]] = []
    start = threading.Barrier(4)

    def look() -> None:
        start.wait()
        results.append(firing.fire_due(stack.sessions, stack.settings, now=now))

    threads = [threading.Thread(target=look) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then: one of them fired it; one campaign, one run
    assert sum(len(r) for r in results) == 1
    assert len(_campaigns(stack)) == 1
    assert len(_runs(stack)) == 1


def test_given_a_paused_schedule_then_resuming_does_not_send_the_firings_it_slept_through(
    stack: Stack, tmp_path: Path
) -> None:
    source = _drop(tmp_path, "list.xlsx", [("13900000002", "王")])
    _add(stack, source, cron="* * * * *")
    records.set_paused(stack.sessions, "会员日", True, "test")
    assert firing.fire_due(stack.sessions, stack.settings) == []
    records.set_paused(stack.sessions, "会员日", False, "test")
    (listed,) = records.listing(stack.sessions)
    assert listed["paused"] is False and listed["next_fire_at"]
    # The cursor moved to the resume: what fell while paused is not looked at
    with stack.sessions() as session:
        cursor = session.execute(select(Schedule.cursor)).scalar_one()
    assert datetime.now(UTC) - cursor < timedelta(minutes=1)


def test_given_a_workdays_schedule_and_a_beat_down_over_a_holiday_then_days_off_are_not_called_missed(
    stack: Stack, tmp_path: Path
) -> None:
    source = _drop(tmp_path, "list.xlsx", [("13900000002", "王")])
    _add(stack, source, workdays=True)
    # Given: last looked at on 2026-09-30 (Wednesday) after its firing; the beat comes back on 10-09 12:00
    _look_from(stack, china(2026, 9, 30, 11, 0))
    fired = firing.fire_due(stack.sessions, stack.settings, now=china(2026, 10, 9, 12, 0))
    # Then: the National Day holiday (10-01..10-07) is days off; 10-08 and 10-09 (working days) were missed
    outcomes = [(f.fire_at.astimezone(CHINA).day, f.outcome) for f in fired]
    days_off = [(d, RunOutcome.NOT_WORKDAY) for d in range(1, 8)]
    assert outcomes == [*days_off, (8, RunOutcome.MISSED), (9, RunOutcome.MISSED)]
    assert _campaigns(stack) == []
