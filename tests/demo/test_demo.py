"""The newcomer's first command, as a newcomer runs it: a subprocess in an empty directory."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import openpyxl
import pytest


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
        assert states.count("delivered") > 500
        assert "rejected" in states  # the generated list has bad rows, listed with their reason
    if broker is None:  # embedded: nothing but files in the working directory
        assert (tmp_path / "dispatcher-demo" / "demo-broker.sqlite3").exists()
