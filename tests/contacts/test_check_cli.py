from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dispatcher.cli import app
from tests.contacts.files import Row, write_xlsx

runner = CliRunner()


def _file(tmp_path: Path) -> Path:
    rows: list[Row] = [
        ["会员名单"],
        ["姓名", "手机号码"],
        ["张三", 13912345678],
        ["李四", "bad"],
        ["王五", "13912345678"],
        ["赵六", "13700000000"],
        ["钱七", "13700000001"],
    ]
    return write_xlsx(tmp_path / "list.xlsx", {"名单": rows})


def test_given_a_list_when_check_json_then_all_contract_fields(tmp_path: Path) -> None:
    opt_outs = tmp_path / "optout.txt"
    opt_outs.write_text("+86 137 0000 0000\n", encoding="utf-8")
    args = ["check", str(_file(tmp_path)), "--template", "{姓名}您好，回T退订【店】", "--vendor", "trigger"]
    result = runner.invoke(app, [*args, "--opt-outs", str(opt_outs), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {k: data[k] for k in ("rows", "valid", "invalid", "duplicates", "opted_out", "messages")} == {
        "rows": 5,
        "valid": 4,
        "invalid": 1,
        "duplicates": 1,
        "opted_out": 1,
        "messages": 2,
    }
    assert (data["segments"], data["requests"], data["by_method"], data["warnings"]) == (
        2,
        1,
        {"SendIndividualMsg": 1},
        [],
    )
    assert {"row": 4, "column": "手机号码", "value": "bad", "reason": "not a phone number"}.items() <= data[
        "rejected"
    ][0].items()
    assert [r["row"] for r in data["rejected"]] == [4, 5, 6]


def test_given_check_without_json_then_a_readable_summary(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["check", str(_file(tmp_path)), "--template", "{姓名}【店】", "--vendor", "yunxin"]
    )
    assert result.exit_code == 0, result.output
    assert "messages" in result.output and "IndividualSm" in result.output and "opt out" in result.output


def test_given_a_bad_file_or_template_then_clean_error_and_non_zero_exit(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a spreadsheet")
    for args in (
        [str(bad), "--template", "x【店】", "--vendor", "entinfo"],
        [str(_file(tmp_path)), "--template", "{性别}【店】", "--vendor", "entinfo"],
        [str(_file(tmp_path)), "--template", "x【店】", "--vendor", "nope"],
        [str(_file(tmp_path)), "--template", "x【店】", "--vendor", "entinfo", "--sheet", "9"],
    ):
        result = runner.invoke(app, ["check", *args, "--json"])
        assert result.exit_code == 2
        assert "error:" in result.output and "Traceback" not in result.output


def test_given_entinfo_without_an_account_when_a_text_is_over_its_length_then_check_rejects_its_row(
    tmp_path: Path,
) -> None:
    # Entinfo SDK API (2017) -10 holds for every account of the vendor: --vendor alone checks it.
    rows: list[Row] = [["姓名", "手机号码"], ["张三", "13912345678"], ["长" * 500, "13912345679"]]
    path = write_xlsx(tmp_path / "list.xlsx", {"名单": rows})
    args = ["check", str(path), "--template", "{姓名}您好【店】", "--vendor", "entinfo", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["messages"] == 1
    assert [(r["row"], r["reason"]) for r in data["rejected"]] == [(3, "text longer than 500 characters")]


def test_given_a_header_only_file_when_check_then_it_fails_saying_there_is_no_one_to_send_to(
    tmp_path: Path,
) -> None:
    # Given: an import template (a header row, no data)
    path = write_xlsx(tmp_path / "template.xlsx", {"名单": [["姓名", "手机号码"]]})
    # When
    result = runner.invoke(app, ["check", str(path), "--template", "{姓名}您好【店】", "--vendor", "trigger"])
    # Then: not a quiet success with 0 messages
    assert result.exit_code == 2
    assert "no data rows below the header" in result.output and "template.xlsx" in result.output


def test_given_every_row_rejected_when_check_then_it_exits_non_zero_and_json_says_why(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "bad.xlsx", {"名单": [["姓名", "手机号码"], ["张三", "bad"], ["李四", "123"]]}
    )
    args = ["check", str(path), "--template", "{姓名}您好【店】", "--vendor", "trigger", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["messages"] == 0 and data["error"]["code"] == "no_recipients"


def test_given_an_error_when_check_json_then_stdout_holds_a_json_error(tmp_path: Path) -> None:
    # Given: a template naming a column the list does not have
    args = [
        "check",
        str(_file(tmp_path)),
        "--template",
        "{会员号}您好【店】",
        "--vendor",
        "trigger",
        "--json",
    ]
    result = runner.invoke(app, args)
    # Then: a script reading stdout gets {"error": {"code", "message"}}
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "template" and "{会员号}" in error["message"]


def test_given_full_width_braces_naming_a_column_when_check_then_refused_with_the_half_width_form(
    tmp_path: Path,
) -> None:
    args = ["check", str(_file(tmp_path)), "--template", "｛姓名｝您好，回T退订【店】", "--vendor", "trigger"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "full-width" in result.output and "{姓名}" in result.output


def test_given_full_width_braces_naming_no_column_when_check_then_a_warning(tmp_path: Path) -> None:
    args = [
        "check",
        str(_file(tmp_path)),
        "--template",
        "{姓名}您好，｛优惠码｝回T退订【店】",
        "--vendor",
        "trigger",
    ]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0
    assert any("｛优惠码｝" in w and "full-width" in w for w in json.loads(result.stdout)["warnings"])
