"""`dispatcher db upgrade` says what it did; JSON logs carry the ids of the work being done; the web app
keeps uploads in ``upload_dir`` when one is set."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatcher.cli import app
from dispatcher.config import Settings
from dispatcher.operations import logs


def test_given_an_empty_database_then_db_upgrade_says_it_created_the_schema_and_then_that_it_is_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPATCHER_DATABASE_URL", f"sqlite:///{tmp_path / 'new.sqlite3'}")
    first = CliRunner().invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0 and "created the schema (revision " in first.output, first.output
    again = CliRunner().invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0 and "database is at the latest schema" in again.output


def test_given_json_logs_then_each_line_is_an_object_with_the_ids_of_the_work() -> None:
    record = logging.LogRecord("dispatcher.dispatch", logging.ERROR, __file__, 1, "sent %s", ("ok",), None)
    formatter = logs.JsonFormatter()
    with logs.context(campaign_id=7, account="yx", chunk_ids=[1, 2]):
        line = json.loads(formatter.format(record))
    assert line["message"] == "sent ok" and line["level"] == "ERROR"
    assert (line["campaign_id"], line["account"], line["chunk_ids"]) == (7, "yx", [1, 2])
    outside = json.loads(formatter.format(record))
    assert "campaign_id" not in outside and outside["process"].count(":") == 2
    record.chunk_ids = [9]  # extra={"chunk_ids": ...}
    assert json.loads(formatter.format(record))["chunk_ids"] == [9]


def test_given_an_upload_dir_then_the_web_app_keeps_uploads_there(tmp_path: Path) -> None:
    from dispatcher.web import create_app

    shared = tmp_path / "shared-uploads"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 's.sqlite3'}", broker_url="memory://", redis_url="memory://",
        secret_key=secrets.token_urlsafe(32), upload_dir=str(shared),
    )  # fmt: skip
    assert create_app(settings).state.ctx.upload_dir == shared
