"""The 定时任务 page: recurring schedules, their next firing and last runs (with the campaigns they made),
pause and resume. For senders and admins; schedules are added with ``dispatcher schedule add``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from dispatcher.errors import DispatcherError
from dispatcher.i18n import N_
from dispatcher.i18n import gettext as _
from dispatcher.labels import describe, say
from dispatcher.schedules import records
from dispatcher.store import Role
from dispatcher.web import actions
from dispatcher.web.deps import Ctx, PageUser, check_csrf, flash, render

router = APIRouter(include_in_schema=False)

OUTCOMES = {
    "firing": N_("firing"),
    "created": N_("campaign created"),
    "unchanged": N_("same file as last time: not sent"),
    "missed": N_("missed: not sent late"),
    "not_workday": N_("not a working day: not sent"),
    "failed": N_("failed"),
}


def _shown(schedule: dict[str, Any]) -> dict[str, Any]:
    runs = [
        {
            **run,
            "fire_at": datetime.fromisoformat(run["fire_at"]),
            "outcome_label": _(OUTCOMES.get(run["outcome"], run["outcome"])),
            "reason_shown": say(run["reason"] or "", *(_detail(run["detail"]))) if run["reason"] else "",
        }
        for run in schedule["runs"]
    ]
    next_fire = schedule["next_fire_at"]
    return {
        **schedule,
        "runs": runs,
        "next_fire_at": datetime.fromisoformat(next_fire) if next_fire else None,
    }


def _detail(detail: dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
    if not detail:
        return None, None
    return detail.get("msgid"), detail.get("params")


@router.get("/schedules")
def schedule_list(request: Request, ctx: Ctx, user: PageUser) -> Response:
    actions.require(user, Role.SENDER, N_("seeing the schedules"))
    schedules = [_shown(s) for s in records.listing(ctx.sessions)]
    return render(request, "schedules.html", user, schedules=schedules)


@router.post("/schedules/pause")
def schedule_pause(
    request: Request,
    ctx: Ctx,
    user: PageUser,
    name: Annotated[str, Form()] = "",
    paused: Annotated[str, Form()] = "1",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    actions.require(user, Role.SENDER, N_("pausing or resuming a schedule"))
    pause = paused == "1"
    try:
        records.set_paused(ctx.sessions, name, pause, user.name)
    except DispatcherError as exc:
        flash(request, describe(exc), "error")
    else:
        said = N_("Schedule %(name)s paused.") if pause else N_("Schedule %(name)s resumed.")
        flash(request, _(said) % {"name": name})
    return RedirectResponse("/schedules", status_code=303)
