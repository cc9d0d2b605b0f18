"""`dispatcher check` honours the store's opt-out list (numbers that replied 退订)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dispatcher.cli import app
from dispatcher.results import optout_store
from dispatcher.store import make_engine, session_factory, upgrade


def _check(tmp_path: Path) -> dict[str, Any]:
    """`dispatcher check --json` on a two-row list (spreadsheet rows 2 and 3)."""
    path = tmp_path / "c.csv"
    path.write_text("手机号,姓名\n13900000001,张三\n13900000002,李四\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["check", str(path), "--template", "{姓名}您好【测试】", "--vendor", "yunxin", "--json"]
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_given_a_number_opted_out_in_the_store_when_checking_then_it_is_counted_and_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    upgrade(url)
    with session_factory(make_engine(url))() as session:
        optout_store.add(session, ["13900000002"], source="reply")
        session.commit()
    monkeypatch.setenv("DISPATCHER_DATABASE_URL", url)
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)

    data = _check(tmp_path)

    assert (data["opted_out"], data["messages"]) == (1, 1)
    assert [(r["row"], r["reason"]) for r in data["rejected"]] == [(3, "opted out")]


def test_given_no_store_yet_when_checking_then_nothing_is_opted_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPATCHER_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.sqlite3'}")
    monkeypatch.delenv("DISPATCHER_CONFIG", raising=False)
    assert _check(tmp_path)["opted_out"] == 0
    assert not (tmp_path / "absent.sqlite3").exists()  # a dry run creates nothing
