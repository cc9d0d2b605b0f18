"""Exports and the results CLI against a sent campaign (simulator, real worker, SQLite)."""

from __future__ import annotations

import csv
import json

import openpyxl
from typer.testing import CliRunner

from dispatcher.cli import app
from dispatcher.results.inbox import process_pending
from tests.results.scenario import drain_account, send, wait_sent
from tests.stack import write_contacts

TEMPLATE = "={姓名}，会员日8折【测试】"  # a text a spreadsheet would take for a formula


def test_given_a_reported_campaign_when_exported_then_rows_follow_the_input_and_formulas_stay_text(
    make_stack, tmp_path
) -> None:
    stack = make_stack()
    rows = [("13900000002", "张三"), ("not a phone", "李四"), ("+86 139-0000-0001", "王五")]
    path = write_contacts(stack.tmp / "c.xlsx", rows)
    from dispatcher import campaigns
    from workers.tasks import enqueue

    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.accounts["yunxin"], actor="t"
    )
    enqueue(campaigns.start(stack.sessions, created.campaign_id, "t"), app=stack.app)
    wait_sent(stack, created.campaign_id)
    drain_account(stack, "yunxin")
    process_pending(stack.sessions, stack.settings)

    result = CliRunner().invoke(
        app, ["campaign", "export", str(created.campaign_id), str(tmp_path / "o.xlsx"), "--lang", "en"]
    )
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(tmp_path / "o.xlsx").active
    assert sheet is not None
    cells = list(sheet.iter_rows(values_only=False))
    header = [c.value for c in cells[0]]
    assert header[:5] == ["row", "mobile", "text", "segments", "state"]
    body = [[c.value for c in row] for row in cells[1:]]
    assert [r[0] for r in body] == [2, 3, 4]  # input order
    assert body[0][1:5] == ["13900000002", "=张三，会员日8折【测试】", 1, "delivered"]
    assert cells[1][2].data_type == "s"  # a formula-looking text is written as text
    assert body[0][5] == "DELIVRD" and body[0][7] and body[0][8] and body[0][9]
    assert body[1][4] == "rejected" and body[1][10]  # the reject reason
    assert (
        body[2][1] == "13900000001"
        and body[2][2] == "=王五，会员日8折【测试】"
        and cells[3][2].data_type == "s"
    )

    assert (
        CliRunner()
        .invoke(app, ["campaign", "export", str(created.campaign_id), str(tmp_path / "o.csv")])
        .exit_code
        == 0
    )
    with (tmp_path / "o.csv").open(encoding="utf-8-sig", newline="") as handle:
        read = list(csv.reader(handle))
    assert read[1][2] == "'=张三，会员日8折【测试】" and len(read) == 4

    status = json.loads(
        CliRunner().invoke(app, ["campaign", "status", str(created.campaign_id), "--json"]).output
    )
    assert status["delivered"] == 2 and status["delivery_rate"] == 1.0 and status["orphans"] == 0
    assert status["segments_sent"] == 2 and status["cost"] is None


def test_given_the_optout_commands_then_numbers_are_added_listed_imported_and_removed(
    make_stack, tmp_path
) -> None:
    make_stack(worker=False)
    runner = CliRunner()
    assert runner.invoke(app, ["optout", "add", "+86 139 0000 0001"]).exit_code == 0
    (tmp_path / "list.csv").write_text("13900000002\n13900000003,x\nbad\n", encoding="utf-8")
    assert "2 number(s) added" in runner.invoke(app, ["optout", "import", str(tmp_path / "list.csv")]).output
    listed = json.loads(runner.invoke(app, ["optout", "list", "--json"]).output)
    assert sorted((e["mobile"], e["source"]) for e in listed) == [
        ("13900000001", "manual"), ("13900000002", "import"), ("13900000003", "import")
    ]  # fmt: skip
    assert "1 number(s) removed" in runner.invoke(app, ["optout", "remove", "13900000002"]).output
    assert len(json.loads(runner.invoke(app, ["optout", "list", "--json"]).output)) == 2


def test_given_reports_at_the_vendor_when_reports_pull_runs_then_they_are_drained_and_applied(
    make_stack,
) -> None:
    stack = make_stack()
    campaign_id = send(stack, "webservice", write_contacts(stack.tmp / "c.xlsx", [("13900000009", "张三")]))
    wait_sent(stack, campaign_id)
    result = CliRunner().invoke(app, ["reports", "pull"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["matched"] == 1
    assert "not pulled (entinfo)" in result.output


def test_given_rows_rejected_for_any_reason_when_exported_then_each_keeps_its_number_and_says_why_in_chinese(
    make_stack, tmp_path
) -> None:
    # Given a list with a bad number, a row without a value for the template, a duplicate and a good row
    stack = make_stack()
    rows = [("13900000002", "张三"), ("12345", "李四"), ("13900000003", None), ("13900000002", "赵六")]
    path = write_contacts(stack.tmp / "c.xlsx", rows)
    from dispatcher import campaigns, scheduler
    from workers.tasks import enqueue

    created = campaigns.create(
        stack.sessions,
        stack.settings,
        path,
        "{姓名}您好，回T退订【测试】",
        stack.accounts["entinfo"],
        actor="t",
    )
    enqueue(campaigns.start(stack.sessions, created.campaign_id, "t"), app=stack.app)
    wait_sent(stack, created.campaign_id)
    scheduler.complete_finished(stack.sessions)

    # When it is exported to xlsx without a language
    result = CliRunner().invoke(
        app, ["campaign", "export", str(created.campaign_id), str(tmp_path / "o.xlsx")]
    )
    assert result.exit_code == 0, result.output

    # Then the headers, states and reasons are Chinese, times are China time, and every row keeps its number
    book = openpyxl.load_workbook(tmp_path / "o.xlsx")
    sheet = book.active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    assert header == [
        "行号",
        "手机号码",
        "短信内容",
        "计费条数",
        "状态",
        "供应商代码",
        "含义",
        "批次号",
        "提交时间（北京时间）",
        "送达时间（北京时间）",
        "未发送原因",
        "发送账户",
        "A/B 版本",
        "手机号",
        "姓名",
    ]  # fmt: skip (then the list's own columns)
    body = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert [r[1] for r in body] == ["13900000002", "12345", "13900000003", "13900000002"]
    assert [r[4] for r in body] == ["已提交", "未通过", "未通过", "未通过"]
    assert body[0][6] == "供应商已接收（entinfo 没有状态报告）"
    assert body[1][10] == "第 3 行，手机号列：不是大陆手机号"
    assert body[2][10] == "第 4 行，姓名列：{姓名} 没有值"
    assert body[3][10] == "第 5 行，手机号列：与第 2 行重复，短信内容不同（只发送第 2 行的）"
    # ... and the sheet is one a person can work with: frozen header, a filter, sized columns
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:O5"
    assert sheet.column_dimensions["C"].width >= 40 and sheet.column_dimensions["B"].width >= 12

    # And in English on request, the same rows
    assert (
        CliRunner()
        .invoke(
            app, ["campaign", "export", str(created.campaign_id), str(tmp_path / "o.csv"), "--lang", "en"]
        )
        .exit_code
        == 0
    )
    with (tmp_path / "o.csv").open(encoding="utf-8-sig", newline="") as handle:
        read = list(csv.reader(handle))
    assert read[0][:2] == ["row", "mobile"] and [r[1] for r in read[1:]] == [r[1] for r in body]
    assert read[3][10] == "row 4, column 姓名: no value for {姓名}"
    assert (
        CliRunner()
        .invoke(
            app, ["campaign", "export", str(created.campaign_id), str(tmp_path / "x.csv"), "--lang", "fr"]
        )
        .exit_code
        == 2
    )
