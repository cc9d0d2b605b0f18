"""``dispatcher user add|list`` and the web app's refusal to run without a signing key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatcher.cli import app
from dispatcher.config import Settings
from dispatcher.errors import ConfigError
from dispatcher.store import make_engine, session_factory
from dispatcher.web import create_app
from dispatcher.web.auth import authenticate

runner = CliRunner()


def test_given_a_password_on_stdin_when_adding_a_user_then_it_can_sign_in_with_that_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 's.sqlite3'}"
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    monkeypatch.setenv("DISPATCHER_DATABASE_URL", db)
    r = runner.invoke(
        app, ["user", "add", "mei", "--role", "sender", "--password-stdin"], input="pass word 1\n"
    )
    assert r.exit_code == 0, r.output
    assert "pass word 1" not in r.output
    with session_factory(make_engine(db))() as session:
        user = authenticate(session, "mei", "pass word 1")
    assert user is not None and user.role == "sender"
    assert runner.invoke(app, ["user", "list"]).output.split() == ["mei", "sender"]
    # Then a taken name, a short password and an unknown role are refused with exit 2.
    for args, stdin in (
        (["mei"], "another pw 2\n"),
        (["li"], "short\n"),
        (["li", "--role", "boss"], "long enough\n"),
    ):
        r = runner.invoke(app, ["user", "add", *args, "--password-stdin"], input=stdin)
        assert r.exit_code == 2, r.output


def test_given_no_secret_key_when_creating_the_app_then_refused(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite3'}", broker_url="memory://")
    with pytest.raises(ConfigError, match="secret_key"):
        create_app(settings)
