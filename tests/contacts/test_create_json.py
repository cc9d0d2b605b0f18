"""``dispatcher campaign create --json`` on a list with many bad rows: the counts, a bounded sample of the
rejected rows, and where every one of them is listed (the export), not one JSON entry per bad row."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from dispatcher.cli import app
from tests.stack import Stack, write_contacts

SHOWN = 20


@pytest.mark.parametrize("bad", [3, 45])
def test_given_a_list_with_bad_rows_when_created_with_json_then_counts_a_sample_and_the_export(
    make_stack: Callable[..., Stack], bad: int
) -> None:
    stack = make_stack(worker=False)
    rows = [(f"1380013{i:04d}", f"客户{i}") for i in range(10)] + [(f"12{i:03d}", "坏") for i in range(bad)]
    path = write_contacts(stack.tmp / "名单.xlsx", rows)
    args = [
        "campaign",
        "create",
        str(path),
        "--template",
        "{姓名}您好【店】",
        "--account",
        stack.accounts["yunxin"],
    ]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["valid"], data["invalid"], data["rejected_count"]) == (10, bad, bad)
    # the first rows, in the list's order (header on row 1, good rows 2-11), each naming its column and why
    assert [r["row"] for r in data["rejected"]] == list(range(12, 12 + min(bad, SHOWN)))
    assert all(r["reason"] and r["column"] == "手机号" for r in data["rejected"])
    if bad > SHOWN:  # the rest: where to read every one of them
        assert data["rejected_export"] == f"dispatcher campaign export {data['id']} FILE.xlsx"
    else:
        assert "rejected_export" not in data

    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0, plain.output
    assert f"{bad} rows rejected" in plain.output
