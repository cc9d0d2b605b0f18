"""``campaign status --watch``: one line within 80 columns, the state never cut, the time still counting."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
from rich.console import Console
from rich.progress import Progress

from dispatcher import campaigns
from dispatcher.cli.campaign import watch_columns
from tests.helpers import run_dispatcher
from tests.stack import Stack, write_contacts


def _render(state: str, done: int, total: int, started: float) -> str:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False, color_system=None)
    with Progress(*watch_columns(), console=console, auto_refresh=False) as progress:
        progress.add_task("send", total=total, completed=done, cid=123456, state=state,
                          delivered=999_999, failed=1_000_000, started=started)  # fmt: skip
    return out.getvalue()


def test_given_a_million_recipients_then_the_watch_line_fits_80_columns_with_its_state() -> None:
    shown = _render("completed", 1_000_000, 1_000_000, time.monotonic())
    lines = [line for line in shown.splitlines() if line.strip()]
    assert len(lines) == 1 and len(lines[0]) <= 80, shown
    assert "#123456 completed" in lines[0] and "100%" in lines[0] and "…" not in lines[0]


def test_given_every_message_sent_while_reports_are_awaited_then_the_elapsed_time_keeps_counting() -> None:
    # The bar is full (rich's own elapsed column would stop here); the watch began 65 s ago
    assert "0:01:05" in _render("sent", 10, 10, time.monotonic() - 65)


def test_given_a_campaign_when_watched_in_80_columns_then_no_line_is_longer_and_the_state_shows(
    make_stack: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [("13900000002", "王"), ("13900000003", "李")])
    created = campaigns.create(
        stack.sessions,
        stack.settings,
        path,
        "{姓名}您好，回T退订【测试】",
        stack.accounts["yunxin"],
        actor="t",
    )
    campaigns.cancel(stack.sessions, created.campaign_id, "t")
    monkeypatch.setenv("COLUMNS", "80")
    done = run_dispatcher("campaign", "status", str(created.campaign_id), "--watch")
    assert done.returncode == 0, done.stderr
    assert "cancelled" in done.stdout
    assert all(len(line) <= 80 for line in done.stdout.splitlines()), done.stdout
