"""The commands a person types to look something up start at once: they import none of the heavy
libraries (the web stack, the store, HTTP, spreadsheet and phone-number parsing); the commands that need
them import them inside. Checked by what a real process imports (``python -X importtime``), not by a
stopwatch: the machines that run the tests are too noisy to time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Top-level packages a look-up command must not load, and the part of this project that brings them.
HEAVY = (
    "fastapi",
    "starlette",
    "jinja2",
    "sqlalchemy",
    "httpx",
    "python_calamine",
    "phonenumbers",
    "pandas",
    "dispatcher.web",
    "dispatcher.store",
    "dispatcher.contacts",
)

LOOK_UPS = [
    ["--help"],
    ["vendors"],
    ["explain", "yunxin", "-16"],
    ["explain", "entinfo", "-6", "--json"],
    ["campaign", "--help"],
    ["check", "--help"],
    ["db", "--help"],
]


def imported_by(
    args: list[str], cwd: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``dispatcher ARGS`` as a process; what it printed, and every module it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dispatcher", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},  # help lines unwrapped
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # importtime writes one line per module to stderr: "import time: self | cumulative | name".
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return done, modules


def heavy_among(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("args", LOOK_UPS, ids=" ".join)
def test_given_a_look_up_command_when_run_as_a_process_then_it_imports_no_heavy_library(
    args: list[str],
) -> None:
    done, modules = imported_by(args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()  # it answered
    assert "dispatcher.cli" in modules  # the measure saw the command's own imports
    assert heavy_among(modules) == []


def test_given_the_check_command_when_run_then_it_imports_what_it_needs_inside(tmp_path: Path) -> None:
    # The same measure sees the heavy imports where a command needs them: the test above is not blind.
    contacts = tmp_path / "list.csv"
    contacts.write_text("手机号,姓名\n13800138000,张三\n12345,坏号码\n", encoding="utf-8")
    template = "{姓名}您好【店】"
    done, modules = imported_by(
        ["check", str(contacts), "--vendor", "yunxin", "--template", template, "--json"], cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"valid": 1' in done.stdout and '"invalid": 1' in done.stdout
    assert {"phonenumbers", "dispatcher.contacts"} <= modules


def test_given_commands_that_import_inside_when_listed_then_each_keeps_its_help_line() -> None:
    # An import placed above a command's docstring makes it no docstring: the command loses its help.
    done, _ = imported_by(["db", "--help"])
    assert "Create or migrate the configured database" in done.stdout
    done, _ = imported_by(["--help"])
    assert "Dry run: read, validate and render a contact list" in done.stdout
