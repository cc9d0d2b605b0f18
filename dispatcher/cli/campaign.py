"""Campaign commands, and ``dispatcher db`` for the store."""

from __future__ import annotations

import typer

from dispatcher.config import Settings, redact_url
from dispatcher.errors import ConfigError


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The store (database).", no_args_is_help=True)

    @db.command("upgrade")
    def db_upgrade() -> None:
        """Create or migrate the configured database to the latest schema."""
        # Imported here so `dispatcher --help` does not load SQLAlchemy and Alembic.
        from dispatcher.store import upgrade

        try:
            settings = Settings.load()
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        upgrade(settings.database_url)
        typer.echo(f"database is at the latest schema: {redact_url(settings.database_url)}")

    app.add_typer(db, name="db")
