"""The export gives back the list's own columns, names its sheet, and says what each code means."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import openpyxl
from sqlalchemy import update

from dispatcher import campaigns
from dispatcher.results.campaign_export import download_name
from dispatcher.store import Recipient, Upload
from tests.helpers import run_dispatcher
from tests.stack import Stack, write_contacts

TEMPLATE = "{姓名}您好，回T退订【测试】"


def _campaign(stack: Stack) -> int:
    rows = [
        ("13900000002", "张三", "北京", 462),
        ("13900000003", "李四", "上海", 12.5),
        ("13900000004", "王五", "广州", None),
        ("不是号码", "赵六", "深圳", 1),
        ("13700000001(南)13700000002(北)", "钱七", "杭州", 3),
    ]
    path = write_contacts(stack.tmp / "c.xlsx", rows, header=("手机号", "姓名", "城市", "积分"))
    account = stack.accounts["yunxin"]
    created = campaigns.create(stack.sessions, stack.settings, path, TEMPLATE, account, actor="t")
    outcomes = {
        2: {"state": "delivered", "report_status": "DELIVRD"},
        3: {"state": "failed", "vendor_code": "-30"},
        4: {"state": "undelivered", "report_status": "MK:0001"},
    }
    with stack.sessions() as session:
        for row, values in outcomes.items():
            session.execute(
                update(Recipient)
                .where(Recipient.campaign_id == created.campaign_id, Recipient.row_number == row)
                .values(**values)
            )
        session.commit()
    return created.campaign_id


def test_given_a_campaign_when_exported_then_its_own_columns_follow_and_codes_are_explained(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = make_stack(worker=False)
    account = stack.accounts["yunxin"]
    config = tmp_path / "dispatcher.toml"  # this account's gateway has a code its vendor's table lacks
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\n[accounts."{account}".extra_codes]\n"-30" = ["bad_content", "模板未报备", "template not filed"]\n',
        encoding="utf-8",
    )
    campaign_id = _campaign(stack)

    done = run_dispatcher("campaign", "export", str(campaign_id), str(tmp_path / "o.xlsx"))
    assert done.returncode == 0, done.stderr
    book = openpyxl.load_workbook(tmp_path / "o.xlsx")
    assert book.sheetnames == ["发送结果"]
    table = [list(r) for r in book["发送结果"].iter_rows(values_only=True)]
    header, body = table[0], table[1:]
    assert header[13:] == ["手机号", "姓名", "城市", "积分"]
    assert [r[13:] for r in body] == [
        ["13900000002", "张三", "北京", "462"],
        ["13900000003", "李四", "上海", "12.5"],
        ["13900000004", "王五", "广州", None],
        ["不是号码", "赵六", "深圳", "1"],
        ["13700000001(南)13700000002(北)", "钱七", "杭州", "3"],
    ]
    meaning = header.index("含义")
    assert [r[meaning] for r in body[:3]] == ["成功送达手机", "模板未报备", "运营商网关代码 MK:0001"]
    assert body[0][header.index("发送账户")] == f"{account}（云信）"

    done = run_dispatcher("campaign", "export", str(campaign_id), str(tmp_path / "o.csv"))
    assert done.returncode == 0, done.stderr
    with (tmp_path / "o.csv").open(encoding="utf-8-sig", newline="") as handle:
        read = list(csv.reader(handle))
    assert read[0][13:] == ["手机号", "姓名", "城市", "积分"]
    assert [r[read[0].index("meaning")] for r in read[1:4]] == [
        "delivered to the phone",
        "template not filed",
        "operator gateway code MK:0001",
    ]
    assert read[1][read[0].index("account")] == f"{account} (Yunxin)"


def test_given_an_export_then_its_download_name_is_in_its_language() -> None:
    assert download_name(12, Path("x.xlsx")) == "活动12-发送结果.xlsx"
    assert download_name(12, Path("x.csv")) == "campaign-12-results.csv"


def test_given_a_list_whose_own_header_and_cells_look_like_formulas_when_exported_then_they_stay_text(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = make_stack(worker=False)
    long = "长" * 40_000  # more than a spreadsheet cell holds
    # A CSV list: its cells are text as typed, formulas included
    path = stack.tmp / "list.csv"
    path.write_text(
        f'手机号,姓名,=1+1,备注\n13900000002,张三,"=HYPERLINK(""http://x"")",{long}\n', encoding="utf-8"
    )
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.accounts["yunxin"], actor="t"
    )
    assert (
        run_dispatcher("campaign", "export", str(created.campaign_id), str(tmp_path / "f.xlsx")).returncode
        == 0
    )
    sheet = openpyxl.load_workbook(tmp_path / "f.xlsx")["发送结果"]
    header, first = list(sheet.iter_rows(max_row=2))
    assert (header[15].value, header[15].data_type) == ("=1+1", "s")
    assert (first[15].value, first[15].data_type) == ('=HYPERLINK("http://x")', "s")
    assert first[16].value == "长" * 32_767
    assert (
        run_dispatcher("campaign", "export", str(created.campaign_id), str(tmp_path / "f.csv")).returncode
        == 0
    )
    with (tmp_path / "f.csv").open(encoding="utf-8-sig", newline="") as handle:
        header_row, first_row = list(csv.reader(handle))
    assert (header_row[15], first_row[15]) == ("'=1+1", '\'=HYPERLINK("http://x")')


def test_given_the_kept_list_unreadable_when_exported_then_the_results_still_come_without_its_columns(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = make_stack(worker=False)
    campaign_id = _campaign(stack)
    with stack.sessions() as session:
        session.execute(
            update(Upload).where(Upload.campaign_id == campaign_id).values(content=b"not a workbook")
        )
        session.commit()
    done = run_dispatcher("campaign", "export", str(campaign_id), str(tmp_path / "o.csv"))
    assert done.returncode == 0, done.stderr
    with (tmp_path / "o.csv").open(encoding="utf-8-sig", newline="") as handle:
        read = list(csv.reader(handle))
    assert len(read) == 6 and read[0][-1] == "variant"
