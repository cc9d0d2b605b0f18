"""What the beat does with the schedules: each due firing is claimed once, then creates one campaign
from the newest file of its source, scheduled to start at once (the beat's launch step then applies the
balance guard and the send window, as for any scheduled campaign). Every firing that sends nothing is
recorded with its reason: missed past the grace, not a working day, the same file as last time, a
check that refused it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import Settings
from dispatcher.errors import DispatcherError
from dispatcher.i18n import N_
from dispatcher.schedules import records, timing
from dispatcher.schedules import source as sources
from dispatcher.store.models import Schedule, ScheduleRun
from dispatcher.store.types import RunOutcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fired:
    """One firing this process recorded."""

    schedule: str
    fire_at: datetime
    outcome: RunOutcome
    campaign_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class _Snapshot:
    id: int
    name: str
    cron: str
    source: str
    template: str
    account: str
    fallbacks: tuple[str, ...]
    window: str | None
    workdays: bool


def _snapshot(schedule: Schedule) -> _Snapshot:
    return _Snapshot(
        schedule.id,
        schedule.name,
        schedule.cron,
        schedule.source,
        schedule.template,
        schedule.account,
        tuple(schedule.fallbacks or ()),
        schedule.window,
        schedule.workdays,
    )


def fire_due(
    sessions: sessionmaker[Session], settings: Settings, *, now: datetime | None = None
) -> list[Fired]:
    """Look at every active schedule's firings since it was last looked at, up to ``now`` (the
    database's clock unless given: tests inject it)."""
    with sessions() as session:
        if now is None:
            now = records.database_now(session)
        schedules = session.execute(select(Schedule).where(Schedule.paused.is_(False))).scalars().all()
        looks = [(_snapshot(s), s.cursor, records.grace(s)) for s in schedules]
    fired: list[Fired] = []
    for schedule, cursor, grace in looks:
        plan = timing.plan(schedule.cron, cursor, now, grace)
        for moment in plan.missed:
            more = plan.more_missed if moment == plan.missed[0] else 0
            if off := _day_off(sessions, schedule, moment):  # would not have fired anyway: say why
                fired.extend([off] if isinstance(off, Fired) else [])
                continue
            fired.extend(_record_missed(sessions, schedule, moment, grace.total_seconds(), more))
        for moment in plan.due:
            result = fire(sessions, settings, schedule, moment)
            if result is not None:
                fired.append(result)
        with sessions() as session:  # only forwards: an older look finishing late moves nothing back
            session.execute(
                update(Schedule).where(Schedule.id == schedule.id, Schedule.cursor < now).values(cursor=now)
            )
            session.commit()
    return fired


def run_now(sessions: sessionmaker[Session], settings: Settings, name: str) -> Fired:
    """``dispatcher schedule run NAME``: one firing now, whatever the rhythm and the calendar."""
    with sessions() as session:
        schedule = _snapshot(records.get(session, name))
        now = records.database_now(session)
    result = fire(sessions, settings, schedule, now, manual=True)
    assert result is not None  # a firing at this instant cannot have been claimed by another
    return result


def fire(
    sessions: sessionmaker[Session],
    settings: Settings,
    schedule: _Snapshot,
    fire_at: datetime,
    *,
    manual: bool = False,
) -> Fired | None:
    """One firing, if this process claims it (None: another beat or tick has it)."""
    if not manual and (off := _day_off(sessions, schedule, fire_at)):
        return off if isinstance(off, Fired) else None
    try:
        found = sources.newest(schedule.source)
    except (DispatcherError, OSError) as exc:
        return _record(sessions, schedule, fire_at, RunOutcome.FAILED, error=exc)
    run_id = _claim(sessions, schedule, fire_at, found)
    if run_id is None:
        return None
    if earlier := _same_file_before(sessions, schedule, fire_at, found.sha256):
        msgid = N_("%(file)s has not changed since the firing of %(then)s")
        params = {"file": found.path.name, "then": timing.local_label(earlier)}
        return _settle(sessions, schedule, run_id, fire_at, RunOutcome.UNCHANGED, said=(msgid, params))
    return _create(sessions, settings, schedule, run_id, fire_at, found)


def _day_off(sessions: sessionmaker[Session], schedule: _Snapshot, fire_at: datetime) -> Fired | bool:
    """For a working-days schedule, a firing on a day off (or past the calendar) recorded as such: the
    record, or True when another look recorded it first; False when the firing goes ahead."""
    if not schedule.workdays:
        return False
    day = fire_at.astimezone(timing.CHINA).date()
    try:
        workday = timing.is_workday(day)
    except DispatcherError as exc:
        return _record(sessions, schedule, fire_at, RunOutcome.FAILED, error=exc) or True
    if workday:
        return False
    msgid = N_("%(day)s is not a working day in China (%(why)s)")
    params = {"day": day.isoformat(), "why": timing.holiday_name(day) or "weekend"}
    return _record(sessions, schedule, fire_at, RunOutcome.NOT_WORKDAY, said=(msgid, params)) or True


def _create(
    sessions: sessionmaker[Session],
    settings: Settings,
    schedule: _Snapshot,
    run_id: int,
    fire_at: datetime,
    found: sources.SourceFile,
) -> Fired:
    from dispatcher import campaigns

    try:
        created = campaigns.create(
            sessions,
            settings,
            found.path,
            schedule.template,
            schedule.account,
            actor=actor(schedule.name),
            start_at=fire_at,  # already due: the launch step starts it (balance guard, window)
            window=schedule.window,
            name=f"{schedule.name} {timing.local_label(fire_at)}",
            fallbacks=schedule.fallbacks,
        )
    except (DispatcherError, OSError) as exc:
        logger.warning("schedule %s: the firing of %s created nothing: %s", schedule.name, fire_at, exc)
        return _settle(sessions, schedule, run_id, fire_at, RunOutcome.FAILED, error=exc)
    return _settle(sessions, schedule, run_id, fire_at, RunOutcome.CREATED, campaign_id=created.campaign_id)


def actor(name: str) -> str:
    """Who a schedule's campaigns are created by, in the audit log."""
    return f"schedule:{name}"[:64]


def _claim(
    sessions: sessionmaker[Session], schedule: _Snapshot, fire_at: datetime, found: sources.SourceFile
) -> int | None:
    with sessions() as session:
        try:
            run_id: int = session.execute(
                insert(ScheduleRun)
                .values(
                    schedule_id=schedule.id,
                    fire_at=fire_at,
                    outcome=RunOutcome.FIRING.value,
                    source_file=str(found.path),
                    source_sha256=found.sha256,
                )
                .returning(ScheduleRun.id)
            ).scalar_one()
            session.commit()
        except IntegrityError:
            return None  # another beat or an overlapping tick fires it
    return run_id


def _same_file_before(
    sessions: sessionmaker[Session], schedule: _Snapshot, fire_at: datetime, sha256: str
) -> datetime | None:
    """The latest earlier firing that made (or is making) its campaign, if from this very file."""
    with sessions() as session:
        latest = session.execute(
            select(ScheduleRun.fire_at, ScheduleRun.source_sha256)
            .where(
                ScheduleRun.schedule_id == schedule.id,
                ScheduleRun.fire_at < fire_at,
                ScheduleRun.outcome.in_((RunOutcome.CREATED.value, RunOutcome.FIRING.value)),
            )
            .order_by(ScheduleRun.fire_at.desc())
            .limit(1)
        ).first()
    if latest is not None and latest.source_sha256 == sha256:
        moment: datetime = latest.fire_at
        return moment
    return None


def _said(
    error: BaseException | None, said: tuple[str, dict[str, Any]] | None
) -> tuple[str | None, dict[str, Any] | None]:
    if said is not None:
        return said[0] % said[1], {"msgid": said[0], "params": said[1]}
    if error is None:
        return None, None
    msgid = getattr(error, "msgid", None)
    detail = {"msgid": msgid, "params": getattr(error, "params", None) or {}} if msgid else None
    return str(error) or error.__class__.__name__, detail


def _settle(
    sessions: sessionmaker[Session],
    schedule: _Snapshot,
    run_id: int,
    fire_at: datetime,
    outcome: RunOutcome,
    *,
    campaign_id: int | None = None,
    error: BaseException | None = None,
    said: tuple[str, dict[str, Any]] | None = None,
) -> Fired:
    reason, detail = _said(error, said)
    with sessions() as session:
        session.execute(
            update(ScheduleRun)
            .where(ScheduleRun.id == run_id)
            .values(outcome=outcome.value, reason=reason, detail=detail, campaign_id=campaign_id)
        )
        session.commit()
    return Fired(schedule.name, fire_at, outcome, campaign_id, reason)


def _record(
    sessions: sessionmaker[Session],
    schedule: _Snapshot,
    fire_at: datetime,
    outcome: RunOutcome,
    *,
    error: BaseException | None = None,
    said: tuple[str, dict[str, Any]] | None = None,
) -> Fired | None:
    """A firing that ends at once (nothing to create), recorded once."""
    reason, detail = _said(error, said)
    with sessions() as session:
        try:
            session.execute(
                insert(ScheduleRun).values(
                    schedule_id=schedule.id,
                    fire_at=fire_at,
                    outcome=outcome.value,
                    reason=reason,
                    detail=detail,
                )
            )
            session.commit()
        except IntegrityError:
            return None
    if outcome is RunOutcome.FAILED:
        logger.warning("schedule %s: the firing of %s failed: %s", schedule.name, fire_at, reason)
    return Fired(schedule.name, fire_at, outcome, None, reason)


def _record_missed(
    sessions: sessionmaker[Session], schedule: _Snapshot, fire_at: datetime, grace_s: float, more: int
) -> list[Fired]:
    msgid = N_("missed: no beat ran within %(grace)s of %(time)s; not sent late")
    params: dict[str, Any] = {"grace": _grace_words(grace_s), "time": timing.local_label(fire_at)}
    if more:
        msgid = N_(
            "missed: no beat ran within %(grace)s of %(time)s; not sent late (and %(more)s earlier firings)"
        )
        params["more"] = more
    fired = _record(sessions, schedule, fire_at, RunOutcome.MISSED, said=(msgid, params))
    if fired is not None:
        logger.warning("schedule %s: %s", schedule.name, fired.reason)
    return [fired] if fired is not None else []


def _grace_words(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
