"""What every ``dispatcher`` command shares: the settings, the store, the Celery app, how errors end."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from dispatcher.errors import ConfigError

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy.orm import Session, sessionmaker

    from dispatcher.config import Settings

ACTOR = "cli"  # who the audit log says acted, for every command


def fail(exc: Exception) -> typer.Exit:
    """Print ``exc`` as the command's error; raise what this returns (exit status 2)."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def load_settings() -> Settings:
    from dispatcher.config import Settings  # the config reads the contacts layer: not for --help

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
