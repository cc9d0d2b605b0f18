"""Pure timing rules of recurring schedules: cron firings in China time, the grace, the working days.

A cron expression has the usual five fields (minute hour day month weekday), read in the schedule's
time zone (China time); a sixth field gives seconds (``* * * * * */10``), for tests and demos.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from dispatcher.errors import InputError
from dispatcher.i18n import N_

CHINA = ZoneInfo("Asia/Shanghai")
DEFAULT_GRACE = timedelta(hours=1)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class CalendarGap(InputError):
    """The working-day calendar does not cover a date (its data ends with the year it was released)."""


def parse_cron(expression: str) -> str:
    """``expression`` normalised (single spaces); raises :class:`InputError` naming it if invalid."""
    normalised = " ".join(expression.split())
    if len(normalised.split()) not in (5, 6) or not croniter.is_valid(normalised):
        raise InputError.say(
            N_("--cron %(cron)r is not a cron expression (five fields: minute hour day month weekday)"),
            cron=expression,
        )
    return normalised


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"30m"``, ``"1h"``, ``"2d"`` as a timedelta; raises :class:`InputError` otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise InputError.say(N_("%(value)r is not a duration such as 30m, 1h or 2d"), value=text)
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def firings(expression: str, after: datetime, until: datetime, zone: ZoneInfo = CHINA) -> Iterator[datetime]:
    """The firing times of ``expression`` in ``(after, until]``, as UTC datetimes, oldest first."""
    times = croniter(expression, after.astimezone(zone))
    while (moment := times.get_next(datetime).astimezone(UTC)) <= until:
        yield moment


def next_firing(expression: str, after: datetime, zone: ZoneInfo = CHINA) -> datetime:
    """The first firing of ``expression`` after ``after`` (UTC)."""
    result: datetime = croniter(expression, after.astimezone(zone)).get_next(datetime)
    return result.astimezone(UTC)


@dataclass(frozen=True)
class Plan:
    """What one look at a schedule finds: firings to run now and firings missed past the grace."""

    due: list[datetime]
    missed: list[datetime]
    more_missed: int  # missed firings older than those listed (a beat down for days)


MAX_MISSED_LISTED = 20


def plan(expression: str, after: datetime, now: datetime, grace: timedelta, zone: ZoneInfo = CHINA) -> Plan:
    """The firings in ``(after, now]``: within ``grace`` of ``now`` they are due, older ones missed (a
    beat that was down never sends late). Only the newest :data:`MAX_MISSED_LISTED` missed firings are
    listed; the rest are counted."""
    due: list[datetime] = []
    missed: list[datetime] = []
    count = 0
    for moment in firings(expression, after, now, zone):
        if now - moment > grace:
            count += 1
            missed.append(moment)
            if len(missed) > MAX_MISSED_LISTED:
                missed.pop(0)
        else:
            due.append(moment)
    return Plan(due, missed, count - len(missed))


def calendar_years() -> tuple[int, int]:
    """The first and last year the working-day calendar knows (its official 调休 data)."""
    from chinese_calendar.constants import holidays

    years = {day.year for day in holidays}
    return min(years), max(years)


def is_workday(day: date) -> bool:
    """Whether ``day`` is an official working day in China: weekdays except public holidays, plus the
    weekends adjusted to working days (调休). Raises :class:`CalendarGap` for a year the calendar lacks."""
    import chinese_calendar

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        first, last = calendar_years()
        raise CalendarGap.say(
            N_(
                "the working-day calendar covers %(first)s-%(last)s, not %(day)s: upgrade the "
                "chinesecalendar package once the State Council publishes that year's holidays"
            ),
            first=first,
            last=last,
            day=day.isoformat(),
        ) from None


# The calendar's holiday names, marked so that a firing's reason is said in the reader's language.
HOLIDAY_NAMES = (
    N_("New Year's Day"),
    N_("Spring Festival"),
    N_("Tomb-sweeping Day"),
    N_("Labour Day"),
    N_("Dragon Boat Festival"),
    N_("National Day"),
    N_("Mid-autumn Festival"),
    N_("Anti-Fascist 70th Day"),
    N_("weekend"),
)


def holiday_name(day: date) -> str | None:
    """The holiday ``day`` belongs to, in English (``National Day``), or None."""
    import chinese_calendar

    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    return str(name) if on_holiday and name else None


def local_label(moment: datetime, zone: ZoneInfo = CHINA) -> str:
    """``YYYY-MM-DD HH:MM`` in China time: how a firing names its campaign."""
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M") + (f":{local.second:02d}" if local.second else "")
