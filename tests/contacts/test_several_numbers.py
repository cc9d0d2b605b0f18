"""A phone cell holding two numbers: said, sent to the first by default, to each with --each-number."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatcher.contacts import ingest
from dispatcher.contacts.phones import several_mobiles
from dispatcher.store import Recipient
from tests.contacts.files import write_xlsx
from tests.helpers import run_dispatcher
from tests.stack import Stack

TEMPLATE = "{姓名}您好，回T退订【店】"


def _list(tmp_path: Path) -> Path:
    rows = [
        ["姓名", "手机号码", "城市"],
        ["张三", "13712345678(南)13912345678(北)", "北京"],
        ["李四", "13700000001/13900000001", "上海"],
        ["王五", "13700000002 13900000002", "广州"],
        ["赵六", "13700000003", "深圳"],
        ["钱七", "13712345678 (2)", "杭州"],  # a digit that belongs to no number: not read as two
    ]
    return write_xlsx(tmp_path / "list.xlsx", {"名单": rows})


def test_given_cells_of_two_numbers_then_each_is_read_in_order() -> None:
    assert several_mobiles("13712345678(南)13912345678(北)") == ("13712345678", "13912345678")
    assert several_mobiles("+86 137-1234-5678；+86 139 1234 5678") == ("13712345678", "13912345678")
    assert several_mobiles("137 1234 5678 139 1234 5678") == ("13712345678", "13912345678")
    assert several_mobiles("13712345678/13712345678") == ("13712345678",)
    assert several_mobiles("13712345678 (2)") is None
    assert several_mobiles("13712345678、0755-1234567") is None


def test_given_cells_of_two_numbers_when_ingested_then_the_first_is_sent_and_the_others_named(
    tmp_path: Path,
) -> None:
    result = ingest(_list(tmp_path), TEMPLATE)
    assert result.messages.mobiles == ["13712345678", "13700000001", "13700000002", "13700000003"]
    assert result.several == [
        (2, ("13712345678", "13912345678")),
        (3, ("13700000001", "13900000001")),
        (4, ("13700000002", "13900000002")),
    ]
    (warning,) = [w for w in result.warnings if "two numbers" in w]
    assert "手机号码" in warning and "2: 13712345678/13912345678" in warning and "--each-number" in warning
    # Every input row is either sent or rejected with its reason
    assert [(r.row, r.code) for r in result.rejected] == [(6, "not_mobile")]


def test_given_each_number_and_a_second_number_seen_before_then_it_is_a_duplicate_of_that_row(
    tmp_path: Path,
) -> None:
    rows = [
        ["姓名", "手机号码"],
        ["张三", "13900000001"],
        ["李四", "13700000001/13900000001"],
        ["王五", "13900000001/13700000001"],  # both numbers taken before: two rejections of one row
        ["赵六", "13700000003"],
    ]
    result = ingest(write_xlsx(tmp_path / "d.xlsx", {"名单": rows}), TEMPLATE, each_number=True)
    assert list(zip(result.messages.rows, result.messages.mobiles, strict=True)) == [
        (2, "13900000001"),
        (3, "13700000001"),
        (5, "13700000003"),
    ]
    assert [(r.row, r.mobile, r.code) for r in result.rejected] == [
        (3, "13900000001", "duplicate_other_text"),  # {姓名} differs
        (4, "13900000001", "duplicate_other_text"),
        (4, "13700000001", "duplicate_other_text"),
    ]


def test_given_cells_of_two_numbers_when_check_runs_then_json_lists_them_and_each_number_sends_to_each(
    tmp_path: Path,
) -> None:
    path = _list(tmp_path)
    first = run_dispatcher("check", str(path), "--template", TEMPLATE, "--vendor", "yunxin", "--json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["messages"] == 4
    assert data["several_numbers"][0] == {
        "row": 2,
        "column": "手机号码",
        "numbers": ["13712345678", "13912345678"],
        "sent_to": ["13712345678"],
    }
    each = run_dispatcher(
        "check", str(path), "--template", TEMPLATE, "--vendor", "yunxin", "--each-number", "--json"
    )
    assert each.returncode == 0, each.stderr
    data = json.loads(each.stdout)
    assert data["messages"] == 7
    assert data["several_numbers"][1]["sent_to"] == ["13700000001", "13900000001"]
    plain = run_dispatcher("check", str(path), "--template", TEMPLATE, "--vendor", "yunxin")
    assert "two numbers" in plain.stdout and "--each-number" in plain.stdout


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
def test_given_each_number_when_a_campaign_is_created_then_each_number_is_a_recipient_of_its_row(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = make_stack(worker=False)
    path = _list(tmp_path)
    done = run_dispatcher(
        "campaign", "create", str(path), "--template", TEMPLATE, "--account", stack.accounts["yunxin"],
        "--each-number", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    campaign_id = json.loads(done.stdout)["id"]
    with stack.sessions() as session:
        stored = session.execute(
            select(Recipient.row_number, Recipient.mobile, Recipient.state)
            .where(Recipient.campaign_id == campaign_id)
            .order_by(Recipient.position)
        ).all()
    assert [(r, m) for r, m, _ in stored] == [
        (2, "13712345678"),
        (2, "13912345678"),
        (3, "13700000001"),
        (3, "13900000001"),
        (4, "13700000002"),
        (4, "13900000002"),
        (5, "13700000003"),
        (6, None),
    ]
    # Without the flag, the CLI warns on stderr and sends to the first
    plain = run_dispatcher(
        "campaign", "create", str(path), "--template", TEMPLATE, "--account", stack.accounts["yunxin"]
    )
    assert plain.returncode == 0, plain.stderr
    assert "two numbers" in plain.stderr
    # The export gives each number of the row the row's own cells
    out = tmp_path / "o.csv"
    assert run_dispatcher("campaign", "export", str(campaign_id), str(out)).returncode == 0
    with out.open(encoding="utf-8-sig", newline="") as handle:
        read = list(csv.reader(handle))
    name = read[0].index("姓名")
    assert [r[name] for r in read[1:]] == ["张三", "张三", "李四", "李四", "王五", "王五", "赵六", "钱七"]


def test_given_a_cell_of_many_numbers_then_the_row_is_rejected_rather_than_fanned_out(tmp_path: Path) -> None:
    many = "/".join(f"1370000000{i}" for i in range(5))
    rows = [["姓名", "手机号码"], ["张三", many], ["李四", "13900000001"]]
    result = ingest(write_xlsx(tmp_path / "m.xlsx", {"名单": rows}), TEMPLATE, each_number=True)
    assert result.messages.mobiles == ["13900000001"]
    (rejected,) = result.rejected
    assert (rejected.row, rejected.code, rejected.reason) == (
        2,
        "too_many_numbers",
        "5 numbers in one cell: at most 4 are read",
    )
