from __future__ import annotations

from datetime import date, datetime, time

import pytest

from dispatcher.errors import TemplateError
from dispatcher.text import (
    check_fields,
    display,
    forbidden_keyword,
    gb2312_problem,
    has_opt_out_hint,
    has_signature,
    parse_template,
    segments,
)


def test_given_a_template_when_parsed_then_fields_and_literals_render_in_order() -> None:
    template = parse_template("{姓名}您好，{{活动}}券号{券码}【店】")
    assert template.fields == ("姓名", "券码")
    assert template.render(["张三", "A1"]) == "张三您好，{活动}券号A1【店】"
    assert template.format_string.format("张三", "A1") == "张三您好，{活动}券号A1【店】"


@pytest.mark.parametrize("source", ["", "  ", "{}您好", "您好{姓名", "您好}"])
def test_given_a_malformed_template_when_parsed_then_template_error(source: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(source)


def test_given_an_unknown_placeholder_when_checked_then_error_lists_columns() -> None:
    with pytest.raises(TemplateError, match=r"\{性别\}.*姓名, 手机"):
        check_fields(parse_template("{性别}【店】"), ["姓名", "手机"])


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (462.0, "462"),
        (12.5, "12.5"),
        (0.1 + 0.2, "0.3"),
        (462, "462"),
        (" 张三 ", "张三"),
        (None, ""),
        (True, "TRUE"),
        (date(2024, 5, 1), "2024-05-01"),
        (datetime(2024, 5, 1), "2024-05-01"),
        (datetime(2024, 5, 1, 14, 30), "2024-05-01 14:30"),
        (time(9, 5), "09:05"),
    ],
)
def test_given_a_cell_when_displayed_then_as_a_person_reads_it(value: object, shown: str) -> None:
    assert display(value) == shown  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("中" * 134, 2),
        ("中" * 135, 3),
        ("a" * 140, 1),
        ("a" * 141, 3),  # pure single-byte above 140: 67 per segment
        ("😀" * 35, 1),  # an emoji counts two characters
        ("😀" * 36, 2),
    ],
)
def test_given_a_text_when_counted_then_billing_segments_follow_documented(text: str, count: int) -> None:
    assert segments(text) == count


def test_signature_gb2312_keywords_and_opt_out_hint() -> None:
    assert has_signature("您好【饿了么】")
    assert not has_signature("【饿了么】您好")
    assert not has_signature("您好【】")
    assert gb2312_problem("您好【店】") == ""
    assert gb2312_problem("您好😀【店】") == "😀"
    # The gateways' "GB2312" is code page 936 (GBK): names with 喆, 镕, 珺, 昇 go through encrypted methods.
    assert gb2312_problem("喆镕珺昇您好【店】") == ""
    assert forbidden_keyword("限时促销【店】", ["免费", "促销"]) == "促销"
    assert forbidden_keyword("您好【店】", ["促销"]) == ""
    assert has_opt_out_hint("大促，回T退订【店】")
    assert has_opt_out_hint("拒收请回复R【店】")
    assert not has_opt_out_hint("大促【店】")
