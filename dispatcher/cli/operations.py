"""``dispatcher doctor``: is everything this deployment needs alive and agreed (exit 0), or not (1)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from dispatcher.cli.common import load_settings


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Check the store, broker, Redis, workers, beat, accounts, clock, send window and Flower; exit 1
        if any check fails. Run it after a deploy, and on every host when something looks wrong."""
        from dispatcher.operations.doctor import diagnose
        from workers.app import DEFAULT_QUEUE, QUEUE_ENV

        checks = diagnose(load_settings(), os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE)
        if as_json:
            typer.echo(json.dumps({"checks": [c.as_dict() for c in checks]}, ensure_ascii=False))
        else:
            for check in checks:
                typer.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<16} {check.detail}")
        if not all(check.ok for check in checks):
            raise typer.Exit(1)
