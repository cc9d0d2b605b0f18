"""``dispatcher schedule``: recurring campaigns (cron in China time, optionally on working days only)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from dispatcher.cli.common import ACTOR, fail, load_sessions, load_settings
from dispatcher.errors import DispatcherError

CHINA_TIME = "%Y-%m-%d %H:%M:%S"


def _china(iso: str | None) -> str:
    if not iso:
        return "-"
    from dispatcher.schedules.timing import CHINA

    return datetime.fromisoformat(iso).astimezone(CHINA).strftime(CHINA_TIME)


def _last_run(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "-"
    run = runs[0]
    said = f"{_china(run['fire_at'])} {run['outcome']}"
    if run["campaign_id"]:
        said += f" (campaign {run['campaign_id']})"
    if run["reason"]:
        said += f": {run['reason']}"
    return said


def register(app: typer.Typer) -> None:
    schedule = typer.Typer(
        help="Recurring campaigns: each firing creates and starts one campaign from the newest file.",
        no_args_is_help=True,
    )

    @schedule.command("add")
    def add(
        name: Annotated[
            str, typer.Argument(help="The schedule's name; its campaigns are 'NAME YYYY-MM-DD HH:MM'.")
        ],
        cron: Annotated[str, typer.Option("--cron", help='Cron rhythm in China time, e.g. "0 10 * * 1-5".')],
        source: Annotated[
            str, typer.Option("--source", help="A contact list, a folder (its newest list) or a glob.")
        ],
        template: Annotated[
            str, typer.Option("--template", help="Message template with {column} placeholders.")
        ],
        account: Annotated[str, typer.Option("--account", help="Vendor account name from the config.")],
        fallback: Annotated[
            list[str] | None, typer.Option("--fallback", help="Account to fail over to; repeatable.")
        ] = None,
        window: Annotated[str | None, typer.Option("--window", help="Send window HH:MM-HH:MM.")] = None,
        workdays: Annotated[
            bool,
            typer.Option("--workdays", help="Fire only on China's official working days (调休 included)."),
        ] = False,
        grace: Annotated[
            str,
            typer.Option(
                "--grace", help="A firing later than this (no beat ran) is skipped, never sent late."
            ),
        ] = "1h",
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Add a recurring campaign."""
        from dispatcher.schedules import records

        settings = load_settings()
        new = records.NewSchedule(
            name, cron, source, template, account, tuple(fallback or ()), window, workdays, grace
        )
        try:
            added = records.add(load_sessions(settings), settings, new, ACTOR)
        except DispatcherError as exc:
            raise fail(exc, as_json=as_json) from None
        if as_json:
            typer.echo(json.dumps(added, ensure_ascii=False))
            return
        typer.echo(
            f"schedule {added['name']} added; next firing {_china(added['next_fire_at'])} (China time)"
        )
        for warning in added["warnings"]:
            typer.echo(f"warning: {warning}", err=True)

    @schedule.command("list")
    def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """The schedules, their next firing and their last run."""
        from rich.console import Console
        from rich.table import Table

        from dispatcher.schedules import records

        data = records.listing(load_sessions(load_settings()))
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        table = Table("name", "cron", "account", "workdays", "state", "next firing", "last run")
        for s in data:
            table.add_row(
                s["name"],
                s["cron"],
                s["account"],
                "yes" if s["workdays"] else "",
                "paused" if s["paused"] else "active",
                _china(s["next_fire_at"]),
                _last_run(s["runs"]),
            )
        Console().print(table)

    def _pause(name: str, paused: bool) -> None:
        from dispatcher.schedules import records

        try:
            records.set_paused(load_sessions(load_settings()), name, paused, ACTOR)
        except DispatcherError as exc:
            raise fail(exc) from None
        typer.echo(f"schedule {name} {'paused' if paused else 'resumed'}")

    @schedule.command("pause")
    def pause(name: str) -> None:
        """Stop firing (until resumed)."""
        _pause(name, True)

    @schedule.command("resume")
    def resume(name: str) -> None:
        """Fire again, from the next firing on (those while paused are not sent late)."""
        _pause(name, False)

    @schedule.command("remove")
    def remove(name: str) -> None:
        """Delete the schedule (its campaigns stay)."""
        from dispatcher.schedules import records

        try:
            records.remove(load_sessions(load_settings()), name, ACTOR)
        except DispatcherError as exc:
            raise fail(exc) from None
        typer.echo(f"schedule {name} removed")

    @schedule.command("run")
    def run(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Fire once, now (whatever the rhythm and the calendar); the beat starts the campaign."""
        from dispatcher.schedules import firing

        settings = load_settings()
        try:
            fired = firing.run_now(load_sessions(settings), settings, name)
        except DispatcherError as exc:
            raise fail(exc, as_json=as_json) from None
        data = {
            "schedule": fired.schedule,
            "fire_at": fired.fire_at.isoformat(),
            "outcome": fired.outcome.value,
            "campaign_id": fired.campaign_id,
            "reason": fired.reason,
        }
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
        else:
            said = f"schedule {name}: {data['outcome']}"
            if fired.campaign_id:
                said += f", campaign {fired.campaign_id} (the beat starts it)"
            if fired.reason:
                said += f": {fired.reason}"
            typer.echo(said)
        if fired.campaign_id is None:
            raise typer.Exit(1)

    app.add_typer(schedule, name="schedule")
