"""``dispatcher db upgrade``."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from dispatcher.cli import app
from tests.store.conftest import PG_URL, pg_schema_url

runner = CliRunner()


def test_given_no_configuration_when_db_upgrade_then_sqlite_file_in_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.delenv("DISPATCHER_DATABASE_URL", raising=False)
    # When
    result = runner.invoke(app, ["db", "upgrade"])
    # Then
    assert result.exit_code == 0, result.output
    db = tmp_path / "dispatcher.sqlite3"
    assert str(db) in result.output
    engine = create_engine(f"sqlite:///{db}")
    try:
        assert "campaigns" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_given_bad_configuration_when_db_upgrade_then_exit_2_with_reason(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env={"DISPATCHER_CONFIG": str(tmp_path / "none.toml")})
    assert result.exit_code == 2
    assert "cannot read config file" in result.output


@pytest.mark.skipif(not PG_URL, reason="DISPATCHER_TEST_POSTGRES_URL is not set")
def test_given_postgres_url_with_password_when_db_upgrade_then_migrated_and_password_not_printed() -> None:
    assert PG_URL
    schema = f"test_cli_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        # Given a URL with a password (the test server trusts any)
        url = make_url(pg_schema_url(schema)).set(password="Sup3rS3cret")
        # When
        result = runner.invoke(
            app, ["db", "upgrade"], env={"DISPATCHER_DATABASE_URL": url.render_as_string(hide_password=False)}
        )
        # Then
        assert result.exit_code == 0, result.output
        assert "Sup3rS3cret" not in result.output and "postgres:***@" in result.output
        assert "campaigns" in inspect(admin).get_table_names(schema=schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
