from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from dispatcher.contacts import RejectKind, ingest
from dispatcher.errors import SpreadsheetError, TemplateError
from tests.contacts.files import write_csv, write_xlsx


def _csv(tmp_path: Path, rows: Sequence[Sequence[object]]) -> Path:
    return write_csv(tmp_path / "list.csv", rows)


def test_given_mixed_rows_then_every_row_is_accepted_or_rejected_with_its_reason(tmp_path: Path) -> None:
    rows = [
        ["姓名", "手机号", "券码"],
        ["张三", "13912345678", "A1"],
        ["李四", "bad", "A2"],
        ["", "13912345670", "A3"],  # missing a value the template needs
        ["王五", "+86 139 1234 5678", "A4"],  # duplicate of row 2
        ["赵六", "13700000000", "A5"],  # opted out
        ["", "", ""],  # blank: skipped
        ["钱七", "13700000001", "A6"],
    ]
    result = ingest(_csv(tmp_path, rows), "{姓名}，券{券码}，回T退订【店】", opt_outs={"13700000000"})
    assert result.messages.rows == [2, 8]
    assert [(r.row, r.column, r.value, r.reason, r.kind) for r in result.rejected] == [
        (3, "手机号", "bad", "not a phone number", RejectKind.INVALID),
        (4, "姓名", "", "no value for {姓名}", RejectKind.INVALID),
        # (its name, so its text, differs from row 2's: the reason says which one is sent)
        (
            5,
            "手机号",
            "13912345678",
            "duplicate of row 2 with a different text",
            RejectKind.DUPLICATE,
        ),
        (6, "手机号", "13700000000", "opted out", RejectKind.OPTED_OUT),
    ]
    assert (result.rows, result.valid, result.invalid, result.duplicates, result.opted_out) == (6, 4, 2, 1, 1)
    assert len(result.messages) == result.valid - result.duplicates - result.opted_out
    assert result.messages[1].values == {"姓名": "钱七", "券码": "A6"}


def test_given_an_unknown_placeholder_then_error_before_any_data_row(tmp_path: Path) -> None:
    seen: list[int] = []
    with pytest.raises(TemplateError, match=r"unknown placeholder \{性别\}"):
        ingest(
            _csv(tmp_path, [["手机"], ["13912345678"]]), "{性别}【店】", progress=lambda n, t: seen.append(n)
        )
    assert seen == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["电话", "手机号码"], "手机号码"),
        (["Mobile Phone", "x"], "Mobile Phone"),
        (["联系方式", "x"], "联系方式"),
    ],
)
def test_given_phone_headers_then_the_best_named_column_is_chosen(
    tmp_path: Path, header: list[str], expected: str
) -> None:
    rows = [header, ["13912345678", "13912345679"]]
    assert ingest(_csv(tmp_path, rows), "您好【店】", marketing=False).phone_column == expected


def test_given_no_phone_header_then_the_column_of_mobiles_is_found_by_content(tmp_path: Path) -> None:
    rows = [["客户", "联络"], ["张三", "13912345678"], ["李四", "13912345679"]]
    result = ingest(_csv(tmp_path, rows), "{客户}【店】", marketing=False)
    assert (result.phone_column, result.header_row, result.messages.texts) == (
        "联络",
        1,
        ["张三【店】", "李四【店】"],
    )


def test_given_no_header_at_all_then_columns_are_named_by_letter(tmp_path: Path) -> None:
    rows = [["张三", "13912345678"], ["李四", "13912345679"]]
    result = ingest(_csv(tmp_path, rows), "{A}【店】", marketing=False)
    assert (result.header_row, result.phone_column, result.messages.rows) == (0, "B", [1, 2])


def test_given_phone_column_override_then_it_wins_and_unknown_names_list_headers(tmp_path: Path) -> None:
    rows = [["手机", "备用"], ["13912345678", "13700000000"]]
    path = _csv(tmp_path, rows)
    assert ingest(path, "您好【店】", phone_column="备用", marketing=False).messages.mobiles == [
        "13700000000"
    ]
    with pytest.raises(SpreadsheetError, match=r"no column '微信'; the headers are: row 1: 手机, 备用"):
        ingest(path, "您好【店】", phone_column="微信")


def test_given_no_phone_column_at_all_then_error_lists_the_headers(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "x.xlsx", {"名单": [["姓名", "城市"], ["张三", "北京"]]})
    with pytest.raises(SpreadsheetError, match=r"x\.xlsx, sheet '名单': no phone column found.*姓名, 城市"):
        ingest(path, "您好【店】")


def test_given_text_rules_then_warnings_and_rejections(tmp_path: Path) -> None:
    rows = [
        ["手机", "名", "签"],
        ["13912345678", "促销王", "【店】"],
        ["13912345679", "😀", "店"],
    ]
    path = _csv(tmp_path, rows)
    # Given a keyword list: a text holding a forbidden word is rejected with the word.
    result = ingest(path, "{名}您好{签}", keywords=["促销"])
    assert [(r.row, r.reason) for r in result.rejected] == [
        (2, "forbidden keyword '促销'"),
        (3, "the text does not end with a 【signature】"),  # the template ends with a value: checked per row
    ]
    assert any("opt out" in w for w in result.warnings)  # marketing text without 回T退订
    # An emoji cannot go through an encrypted (GB2312) method: flagged per message and warned.
    flagged = ingest(path, "{名}您好，回T退订【店】")
    assert flagged.not_gb2312 == [1]
    assert any("GB2312" in w for w in flagged.warnings)
    assert not any("opt out" in w for w in flagged.warnings)
    unsigned = ingest(path, "{名}您好，回T退订")
    assert any("signature" in w for w in unsigned.warnings)
    assert not any("signature" in w for w in ingest(path, "{名}您好，回T退订【{名}】").warnings)


def test_given_a_long_text_then_segments_are_counted_per_message(tmp_path: Path) -> None:
    rows = [["手机", "名"], ["13912345678", "张"], ["13912345679", "张" * 70]]
    result = ingest(_csv(tmp_path, rows), "{名}【店】", marketing=False)
    assert result.messages.segments == [1, 2]
    assert result.segments == 3


def test_given_a_progress_callback_then_it_sees_the_rows(tmp_path: Path) -> None:
    rows = [["手机"], *[[f"139{i:08d}"] for i in range(25_000)]]
    calls: list[tuple[int, int | None]] = []
    ingest(_csv(tmp_path, rows), "您好【店】", marketing=False, progress=lambda n, t: calls.append((n, t)))
    assert calls[-1] == (25_000, None) and len(calls) >= 2


def test_given_a_numeric_header_cell_then_it_is_named_as_shown(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "h.xlsx", {"S": [["手机", 2024.0], ["13912345678", 5]]})
    assert ingest(path, "{2024}【店】", marketing=False).messages.texts == ["5【店】"]


def test_given_a_number_half_typed_in_full_width_digits_then_it_is_sent_in_ascii_and_matched_as_such(
    tmp_path: Path,
) -> None:
    # The gateways refuse full-width digits; and an opt-out or a duplicate must match either spelling.
    rows = [
        ["姓名", "手机号"],
        ["张三", "13９１２３４５６７８"],
        ["李四", "13912345678"],
        ["王五", "137００００００００"],
    ]
    result = ingest(_csv(tmp_path, rows), "{姓名}您好，回T退订【店】", opt_outs={"13700000000"})
    assert result.messages.mobiles == ["13912345678"]
    assert [(r.row, r.code, r.params) for r in result.rejected] == [
        (3, "duplicate_other_text", {"row": 2}),
        (4, "opted_out", {}),
    ]


def test_given_one_number_with_several_texts_then_the_reason_says_the_texts_differed(tmp_path: Path) -> None:
    # Given: a 手机号 + 短信内容 sheet, one number three times, twice with another text
    path = _csv(
        tmp_path,
        [
            ["手机号", "短信内容"],
            ["13912345678", "您的订单已发货【店】"],
            ["13912345678", "您的订单已签收【店】"],
            ["13912345678", "您的订单已发货【店】"],
        ],
    )
    result = ingest(path, "{短信内容}")
    # Then: the second row's reason says its text differed; the third is a plain duplicate
    assert [(r.row, r.code) for r in result.rejected] == [(3, "duplicate_other_text"), (4, "duplicate")]
    assert "different text" in result.rejected[0].reason and "row 2" in result.rejected[0].reason
    assert result.rejected[0].kind is RejectKind.DUPLICATE


def test_given_the_header_repeated_inside_the_list_then_the_row_is_said_to_be_a_header(
    tmp_path: Path,
) -> None:
    # Given: two lists pasted one under the other, each with its header
    path = _csv(
        tmp_path,
        [["姓名", "手机号"], ["张三", "13912345678"], ["姓名", "手机号"], ["李四", "13700000001"]],
    )
    result = ingest(path, "{姓名}您好【店】")
    assert [(r.row, r.code) for r in result.rejected] == [(3, "repeated_header")]
    assert "header row repeated" in result.rejected[0].reason
    assert result.messages.mobiles == ["13912345678", "13700000001"]


def test_given_a_form_whose_only_number_header_is_an_id_card_then_the_column_of_mobiles_is_chosen(
    tmp_path: Path,
) -> None:
    # Given: a form-like sheet: 身份证号码 is the only header naming a number; the mobiles are under 联系
    ids = ["110101199003071234", "11010119900307123X", "310101198502141111"]
    rows: list[list[object]] = [["报名表"], ["序号", "姓名", "身份证号码", "联系", "城市"]]
    rows += [[i, f"客户{i}", ids[i % 3], f"1391234567{i}", "北京"] for i in range(8)]
    path = write_xlsx(tmp_path / "form.xlsx", {"报名": rows})
    # When
    result = ingest(path, "{姓名}您好【店】", marketing=False)
    # Then: the content decides, and a warning says the header's choice was overruled
    assert (result.phone_column, result.header_row, len(result.messages)) == ("联系", 2, 8)
    assert any("身份证号码" in w and "联系" in w for w in result.warnings), result.warnings


def test_given_a_phone_header_over_mobiles_then_another_column_of_mobiles_does_not_overrule_it(
    tmp_path: Path,
) -> None:
    rows = [["手机", "备用"], ["13912345678", "13700000000"], ["13912345679", "13700000001"]]
    result = ingest(_csv(tmp_path, rows), "您好【店】", marketing=False)
    assert (result.phone_column, result.warnings) == ("手机", [])


def test_given_a_column_named_for_mobiles_with_blank_first_rows_then_another_column_of_numbers_does_not_take_it(
    tmp_path: Path,
) -> None:
    # Given: 手机 is blank in most first rows; 紧急联系人 holds someone else's numbers on every row
    rows = [["姓名", "手机", "紧急联系人"]]
    rows += [[f"客户{i}", "13912345670" if i == 0 else "", f"1370000000{i}"] for i in range(6)]
    result = ingest(_csv(tmp_path, rows), "您好【店】", marketing=False)
    assert (result.phone_column, result.messages.mobiles) == ("手机", ["13912345670"])
