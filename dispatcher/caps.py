"""Frequency caps (contact pressure): how many messages one number may get over a few China calendar
days, across every campaign and account. Pure rules; the store counts (``dispatcher.store.caps``).

    caps = parse_caps(["1/1d", "3/7d"], "setting frequency_caps")
    over(sent_by_day, today, caps, adding=1)   # how many of the new ones go over, and the cap they break

``N/Kd``: at most N messages in the K China calendar days ending today (today and the K-1 before it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from dispatcher.errors import ConfigError

CHINA = ZoneInfo("Asia/Shanghai")
_CAP_RE = re.compile(r"\s*([0-9]{1,6})\s*/\s*([0-9]{1,3})\s*d\s*")
MAX_DAYS = 366


@dataclass(frozen=True, order=True)
class Cap:
    count: int
    days: int

    def __str__(self) -> str:
        return f"{self.count}/{self.days}d"


def parse_caps(raw: object, where: str) -> tuple[Cap, ...]:
    """``["1/1d", "3/7d"]`` as caps; a :class:`ConfigError` naming ``where`` otherwise."""
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise ConfigError(f'{where} must be a list such as ["1/1d", "3/7d"]')
    caps = []
    for item in raw:
        match = _CAP_RE.fullmatch(item)
        if not match or not 1 <= int(match.group(2)) <= MAX_DAYS or int(match.group(1)) < 1:
            raise ConfigError(f"{where}: {item!r} is not N/Kd (at most N messages in K days, K 1-{MAX_DAYS})")
        caps.append(Cap(int(match.group(1)), int(match.group(2))))
    return tuple(sorted(set(caps)))


def china_day(moment: datetime) -> date:
    """The China calendar day of ``moment`` (an aware datetime)."""
    return moment.astimezone(CHINA).date()


def longest(caps: Iterable[Cap]) -> int:
    return max((cap.days for cap in caps), default=0)


def over(
    sent_by_day: Mapping[date, int], today: date, caps: Iterable[Cap], adding: int
) -> tuple[int, Cap | None]:
    """Of ``adding`` new messages to one number, how many would break a cap, given what it already got
    each day (``sent_by_day``, the new ones not included), and the cap that binds most."""
    worst, binding = 0, None
    for cap in caps:
        first = today - timedelta(days=cap.days - 1)
        already = sum(n for day, n in sent_by_day.items() if first <= day <= today)
        excess = min(adding, max(0, already + adding - cap.count))
        if excess > worst:
            worst, binding = excess, cap
    return worst, binding
