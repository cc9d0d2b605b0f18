"""What every ``dispatcher`` command shares: the settings, the store, the Celery app, how errors end."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import typer

from dispatcher.config import Settings
from dispatcher.errors import ConfigError, DispatcherError

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy.orm import Session, sessionmaker

ACTOR = "cli"  # who the audit log says acted, for every command


def error_code(exc: BaseException) -> str:
    """A stable word for the kind of error, for scripts reading ``--json``: ``spreadsheet``, ``template``,
    ``config``, ``state`` ... (the exception's class, without ``Error``, in snake case)."""
    if isinstance(exc, OSError):
        return "file"
    if isinstance(exc, ValueError) and not isinstance(exc, DispatcherError):
        return "invalid"
    name = type(exc).__name__.removesuffix("Error") or "dispatcher"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def fail(exc: Exception, *, as_json: bool = False, status: int = 2) -> typer.Exit:
    """Print ``exc`` as the command's error (on stderr; with ``as_json`` also ``{"error": {"code",
    "message"}}`` on stdout, where a script reads); raise what this returns (exit status 2)."""
    typer.echo(f"error: {exc}", err=True)
    if as_json:
        typer.echo(json.dumps({"error": {"code": error_code(exc), "message": str(exc)}}, ensure_ascii=False))
    return typer.Exit(status)


def load_settings() -> Settings:
    try:
        return Settings.load()
    except ConfigError as exc:
        raise fail(exc) from None


def load_sessions(settings: Settings) -> sessionmaker[Session]:
    from dispatcher.store import make_engine, session_factory, upgrade

    upgrade(settings.database_url)  # idempotent: a newcomer need not run `db upgrade` first
    return session_factory(make_engine(settings.database_url))


def celery_app(settings: Settings) -> Celery:
    """The workers' app with its tasks and beat schedule, pointed at the configured broker and Redis."""
    from workers.tasks import celery_app as configured

    return configured(settings)
