"""Fixtures of the process tests: a store (SQLite, and PostgreSQL when configured) and a
:class:`~tests.processes.harness.Processes` whose logs are printed when the test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes.harness import Processes, environment


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    """Processes started by the test (environment without the caller's DISPATCHER_* settings; the test
    adds its own to ``env``); all stopped afterwards, their logs printed if the test failed."""
    procs = Processes(tmp_path, environment(tmp_path, {}))
    try:
        yield procs
    finally:
        procs.close()
        if request.node.stash.get(FAILED, True):
            print(procs.logs(lines=200))
