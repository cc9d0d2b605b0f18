"""The habits the repository keeps: pre-commit runs what CI runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def ci_checks() -> list[str]:
    """The lint and type checks of ``.ci/run``: its ``log "..."; COMMAND`` lines before the tests."""
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    return [m.group(1).strip() for m in re.finditer(r'^log "[^"]*";\s*(.+)$', text, re.M)]


def hook_commands() -> list[str]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    return [
        shlex.join([*shlex.split(hook["entry"]), *hook.get("args", [])])
        for repo in config["repos"]
        for hook in repo["hooks"]
    ]


def test_given_the_ci_script_then_pre_commit_runs_each_of_its_checks() -> None:
    checks = ci_checks()
    assert {"ruff check .", "ruff format --check .", "mypy dispatcher workers"} <= set(checks)
    assert [c for c in checks if c not in hook_commands()] == []


def test_given_the_tests_then_none_imports_another_test_module() -> None:
    imported = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for m in re.finditer(
            r"^\s*from (tests(?:\.\w+)*\.test_\w+) import", path.read_text(encoding="utf-8"), re.M
        ):
            imported[str(path.relative_to(ROOT))] = m.group(1)
    assert imported == {}


def test_given_a_test_package_then_none_of_its_files_imports_another_packages_conftest() -> None:
    # The shared stack is in the root tests/conftest.py and tests/stack.py; a package's conftest.py is its own.
    reaching = []
    for path in sorted((ROOT / "tests").glob("*/**/*.py")):
        package = path.relative_to(ROOT / "tests").parts[0]
        for m in re.finditer(
            r"^\s*from tests\.(\w+)\.conftest import", path.read_text(encoding="utf-8"), re.M
        ):
            if m.group(1) != package:
                reaching.append(f"{path.relative_to(ROOT)}: tests.{m.group(1)}.conftest")
    assert reaching == []
