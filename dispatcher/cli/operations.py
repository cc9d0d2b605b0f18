"""``dispatcher doctor``: is everything this deployment needs alive and agreed (exit 0), or not (1)."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from dispatcher.cli.common import load_settings


def doctor_checks(settings: Any) -> list[Any]:
    """Every check of :mod:`dispatcher.operations.doctor` for ``settings``, as this host sees them."""
    from redis import Redis

    from dispatcher.balance_guard import read_balance
    from dispatcher.operations.doctor import Doctor
    from dispatcher.vendors.registry import get as vendor_module
    from workers.app import DEFAULT_QUEUE, QUEUE_ENV

    redis: Redis[Any] | None = None
    if not settings.redis_url.startswith("memory://"):
        redis = Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)

    def balance(name: str) -> tuple[str | None, str | None]:
        wait = vendor_module(settings.account(name).vendor).BALANCE_INTERVAL_S + 1
        reading = read_balance(settings, redis, name, wait=wait)
        return reading.value, reading.error

    try:
        return Doctor(settings, os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE, redis, balance).run()
    finally:
        if redis is not None:
            redis.close()


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Check the store, broker, Redis, workers, beat, accounts, clock, send window and Flower; exit 1
        if any check fails. Run it after a deploy, and on every host when something looks wrong."""
        checks = doctor_checks(load_settings())
        if as_json:
            typer.echo(json.dumps({"checks": [c.as_dict() for c in checks]}, ensure_ascii=False))
        else:
            for check in checks:
                typer.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<16} {check.detail}")
        if not all(check.ok for check in checks):
            raise typer.Exit(1)
