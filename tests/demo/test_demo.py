"""The newcomer's first command, as a newcomer runs it: a subprocess in an empty directory."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import openpyxl
import pytest


@pytest.mark.slow  # real processes, a minute and more on two cores: CI runs it (-m slow)
@pytest.mark.parametrize("broker", [None, "redis://127.0.0.1:6379/0"], ids=["embedded", "redis"])
def test_given_a_fresh_directory_when_running_the_demo_then_it_sends_reports_and_exports(
    tmp_path: Path, broker: str | None
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env["DISPATCHER_QUEUE"] = f"demo-test-{uuid.uuid4().hex[:8]}"
    args = [sys.executable, "-m", "dispatcher", "demo", "--rows", "600", "--timeout", "90"]
    if broker:
        args += ["--broker", broker]
    done = subprocess.run(
        args, cwd=tmp_path, env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=240
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "did not arrive in time" not in done.stdout
    exports = sorted((tmp_path / "dispatcher-demo").glob("campaign-*.xlsx"))
    assert len(exports) == 2  # one per vendor
    for path in exports:
        sheet = openpyxl.load_workbook(path, read_only=True).active
        assert sheet is not None
        states = [row[4] for row in sheet.iter_rows(min_row=2, values_only=True)]
        assert len(states) == 600  # one row per input row
        assert states.count("已送达") > 500  # the xlsx speaks Chinese by default
        assert "未通过" in states  # the generated list has bad rows, listed with their reason
    if broker is None:  # embedded: nothing but files in the working directory
        assert (tmp_path / "dispatcher-demo" / "demo-broker.sqlite3").exists()


def _demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", "demo", "--rows", "50", "--timeout", "5", *args],
        cwd=cwd, env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_given_a_directory_the_demo_did_not_make_when_running_the_demo_there_then_it_refuses_and_deletes_nothing(
    tmp_path: Path,
) -> None:
    # Given a directory of the user's own
    mine = tmp_path / "sub"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes", encoding="utf-8")
    # When the demo is pointed at it
    done = _demo(tmp_path, "--dir", "sub")
    # Then it refuses, naming the directory, and the user's file is still there
    assert done.returncode == 2
    assert "not empty and was not made by `dispatcher demo`" in done.stderr
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "my notes"
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_given_a_directory_an_earlier_demo_made_when_running_the_demo_again_then_it_starts_afresh(
    tmp_path: Path,
) -> None:
    from dispatcher.cli.demo import MARKER, prepare_workdir

    # An empty directory of the user's own is fine: the demo marks it as its own
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_workdir(empty)
    assert (empty / MARKER).is_file()
    # A directory the demo made is emptied on the next run
    (empty / "campaign-1-yunxin.xlsx").write_bytes(b"old")
    prepare_workdir(empty)
    assert sorted(p.name for p in empty.iterdir()) == [MARKER]
    # A new one is made
    prepare_workdir(tmp_path / "new" / "deeper")
    assert (tmp_path / "new" / "deeper" / MARKER).is_file()
