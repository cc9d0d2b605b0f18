"""``dispatcher campaign list`` as a process: proofs left out unless asked, China time to the second."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from dispatcher import campaigns, proofs
from tests.stack import Stack, write_contacts


def _dispatcher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher", *args],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
def test_given_a_campaign_and_a_proof_then_the_list_shows_the_campaign_and_proofs_only_when_asked(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(worker=False)
    account = stack.accounts["yunxin"]
    source = write_contacts(stack.tmp / "list.xlsx", [("13900000002", "王")])
    created = campaigns.create(
        stack.sessions, stack.settings, source, "{姓名}您好，回T退订【测试】", account, actor="test",
        start_at=datetime(2026, 12, 8, 1, 30, 15, tzinfo=UTC), name="会员日",
    )  # fmt: skip
    proofs.send(
        stack.sessions, stack.settings, account, "您好【测试】", ["13900000009"], actor="test", name="样张"
    )
    # When listed plainly, then the proof is left out and the start is China time to the second
    plain = _dispatcher("campaign", "list")
    assert plain.returncode == 0, plain.stderr
    assert "会员日" in plain.stdout and "样张" not in plain.stdout
    assert "2026-12-08 09:30:15" in plain.stdout
    listed = json.loads(_dispatcher("campaign", "list", "--json").stdout)
    assert [c["id"] for c in listed] == [created.campaign_id]
    # When asked for proofs, then it is there, marked
    with_proofs = _dispatcher("campaign", "list", "--proofs", "--json")
    assert [c["proof"] for c in json.loads(with_proofs.stdout)] == [False, True]
    assert "(proof)" in _dispatcher("campaign", "list", "--proofs").stdout


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
def test_given_a_list_with_no_one_to_send_to_when_create_json_then_refused_with_a_json_error(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(worker=False)
    header_only = write_contacts(stack.tmp / "template.xlsx", [])
    all_bad = write_contacts(stack.tmp / "bad.xlsx", [("12345", "王"), ("not a number", "李")])
    for path, said in ((header_only, "no data rows below the header"), (all_bad, "no recipient left")):
        done = _dispatcher(
            "campaign", "create", str(path), "--template", "{姓名}您好，回T退订【测试】",
            "--account", stack.accounts["yunxin"], "--json",
        )  # fmt: skip
        assert done.returncode == 2
        error = json.loads(done.stdout)["error"]
        assert said in error["message"] and path.name in error["message"]
    assert json.loads(_dispatcher("campaign", "list", "--json").stdout) == []
