"""The schedules and their runs in the store: add, list, pause, resume, remove."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import routing
from dispatcher.config import Settings, validate_window
from dispatcher.errors import InputError, StoreError
from dispatcher.i18n import N_
from dispatcher.schedules import source as sources
from dispatcher.schedules import timing
from dispatcher.store import audit
from dispatcher.store.models import Schedule, ScheduleRun
from dispatcher.store.types import db_now
from dispatcher.text import parse_template

RUNS_SHOWN = 5


@dataclass(frozen=True)
class NewSchedule:
    """What a person asks for (``dispatcher schedule add``, the 定时任务 page)."""

    name: str
    cron: str
    source: str
    template: str
    account: str
    fallbacks: tuple[str, ...] = ()
    window: str | None = None
    workdays: bool = False
    grace: str = "1h"


def database_now(session: Session) -> datetime:
    """The database's clock: firings are compared with it, whichever host's beat asks."""
    moment: datetime = session.execute(select(db_now())).scalar_one()
    return moment


def add(sessions: sessionmaker[Session], settings: Settings, new: NewSchedule, actor: str) -> dict[str, Any]:
    """Store a schedule after checking everything that can be checked now; returns it as :func:`describe`
    does. The source may still be empty (a CRM's first export comes later): that is a warning."""
    name = new.name.strip()
    if not name or len(name) > 100:
        raise InputError.say(N_("a schedule needs a name of 1-100 characters"))
    cron = timing.parse_cron(new.cron)
    grace = timing.parse_duration(new.grace)
    settings.account(new.account)  # ConfigError naming the known accounts
    fallbacks = routing.check_fallbacks(settings, new.account, new.fallbacks)
    if new.window:
        validate_window(new.window)
    parse_template(new.template)
    with sessions() as session:
        now = database_now(session)
        try:
            session.execute(
                insert(Schedule).values(
                    name=name,
                    cron=cron,
                    source=new.source,
                    template=new.template,
                    account=new.account,
                    fallbacks=fallbacks,
                    window=new.window or None,
                    workdays=new.workdays,
                    grace_seconds=int(grace.total_seconds()),
                    paused=False,
                    cursor=now,
                    created_by=actor,
                )
            )
        except IntegrityError:
            raise StoreError.say(N_("a schedule named %(name)s already exists"), name=name) from None
        audit(session, actor, "schedule.add", name=name, cron=cron, account=new.account)
        session.commit()
        described = describe(session, get(session, name), now)
    warnings = []
    try:
        sources.newest(new.source)
    except InputError as exc:
        warnings.append(str(exc))
    if new.workdays:
        first, last = timing.calendar_years()
        warnings.append(f"working days are known for {first}-{last}")
    return {**described, "warnings": warnings}


def get(session: Session, name: str) -> Schedule:
    schedule = session.execute(select(Schedule).where(Schedule.name == name)).scalar_one_or_none()
    if schedule is None:
        raise StoreError.say(N_("no schedule named %(name)s"), name=name)
    return schedule


def describe(session: Session, schedule: Schedule, now: datetime) -> dict[str, Any]:
    """A schedule as the CLI's ``--json`` and the page show it: its settings, next firing, last runs."""
    runs = session.execute(
        select(ScheduleRun)
        .where(ScheduleRun.schedule_id == schedule.id)
        .order_by(ScheduleRun.fire_at.desc(), ScheduleRun.id.desc())
        .limit(RUNS_SHOWN)
    ).scalars()
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "source": schedule.source,
        "template": schedule.template,
        "account": schedule.account,
        "fallbacks": schedule.fallbacks or [],
        "window": schedule.window,
        "workdays": schedule.workdays,
        "grace_seconds": schedule.grace_seconds,
        "paused": schedule.paused,
        "next_fire_at": None
        if schedule.paused
        else timing.next_firing(schedule.cron, max(schedule.cursor, now)).isoformat(),
        "runs": [run_dict(run) for run in runs],
    }


def run_dict(run: ScheduleRun) -> dict[str, Any]:
    return {
        "fire_at": run.fire_at.isoformat(),
        "outcome": run.outcome,
        "reason": run.reason,
        "detail": run.detail,
        "campaign_id": run.campaign_id,
        "source_file": run.source_file,
    }


def listing(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    with sessions() as session:
        now = database_now(session)
        schedules = session.execute(select(Schedule).order_by(Schedule.name)).scalars().all()
        return [describe(session, schedule, now) for schedule in schedules]


def set_paused(sessions: sessionmaker[Session], name: str, paused: bool, actor: str) -> None:
    """Pause or resume. A resumed schedule looks at firings from now on: those that fell while it was
    paused are not sent late."""
    with sessions() as session:
        schedule = get(session, name)
        values: dict[str, Any] = {"paused": paused}
        if not paused:
            values["cursor"] = db_now()
        session.execute(update(Schedule).where(Schedule.id == schedule.id).values(**values))
        audit(session, actor, "schedule.pause" if paused else "schedule.resume", name=name)
        session.commit()


def remove(sessions: sessionmaker[Session], name: str, actor: str) -> None:
    """Delete a schedule and its runs' records; the campaigns it created stay."""
    with sessions() as session:
        schedule = get(session, name)
        session.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == schedule.id))
        session.execute(delete(Schedule).where(Schedule.id == schedule.id))
        audit(session, actor, "schedule.remove", name=name)
        session.commit()


def grace(schedule: Schedule) -> timedelta:
    return timedelta(seconds=schedule.grace_seconds)
