"""Answers, reports, replies and pushes of both vendors: the documents' examples as known answers, then junk."""

from __future__ import annotations

import json
from datetime import datetime
from types import ModuleType
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.vendors import trigger
from dispatcher.vendors import webservice as ws
from dispatcher.vendors import yunxin as yx
from dispatcher.vendors.wire import CHINA_TZ, AnswerKind, ErrorClass, Report
from tests.vendors import examples

BOTH = pytest.mark.parametrize("vendor", [ws, yx], ids=["webservice", "yunxin"])
DOC_TIME = datetime(2014, 6, 10, 15, 34, 11, tzinfo=CHINA_TZ)
DOC_NOW = datetime(2014, 6, 10, 15, 40, tzinfo=CHINA_TZ)  # when the examples' reply lists were read
FORM = "application/x-www-form-urlencoded"


def triples(reports: list[Report]) -> list[tuple[str, str, str]]:
    return [(r.batch_id, r.mobile, r.status) for r in reports]


# ------------------------------------------------------------------------------------------ answers


@BOTH
@pytest.mark.parametrize(
    "body",
    [
        examples.DOC_BATCH,
        f'<?xml version="1.0" encoding="utf-8"?>\n<string xmlns="http://tempuri.org/">{examples.DOC_BATCH}</string>',
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><SendMsgResponse '
        f'xmlns="http://tempuri.org/"><SendMsgResult>{examples.DOC_BATCH}</SendMsgResult></SendMsgResponse>'
        "</soap:Body></soap:Envelope>",
    ],
    ids=["plain", "asmx", "soap"],
)
def test_given_a_batch_id_in_any_format_when_parsing_a_send_then_ok(vendor: ModuleType, body: str) -> None:
    answer = vendor.parse_send(body)
    assert answer.kind is AnswerKind.OK and answer.value == examples.DOC_BATCH


@BOTH
@pytest.mark.parametrize("body", ["<html><title>500</title></html>", "OK", "", "12ab"])
def test_given_garbage_when_parsing_a_send_then_unexpected_kept_raw(vendor: ModuleType, body: str) -> None:
    answer = vendor.parse_send(body)
    assert answer.kind is AnswerKind.UNEXPECTED and answer.raw == body


def test_given_minus_16_when_parsing_a_send_then_classes_differ_by_vendor() -> None:
    assert ws.classify(ws.parse_send("-16").code or 0).error_class is ErrorClass.RATE_LIMITED
    assert yx.classify(yx.parse_send("-16").code or 0).error_class is ErrorClass.BAD_RECIPIENT


@BOTH
@pytest.mark.parametrize(
    ("body", "kind", "value", "code"),
    [
        ("1234.50", AnswerKind.OK, "1234.50", None),
        ('<string xmlns="http://tempuri.org/">88</string>', AnswerKind.OK, "88", None),
        ("-23", AnswerKind.ERROR, "", -23),
        ("", AnswerKind.UNEXPECTED, "", None),
        ("<html><body>error</body></html>", AnswerKind.UNEXPECTED, "<html><body>error</body></html>", None),
        ("余额", AnswerKind.UNEXPECTED, "余额", None),
    ],
)
def test_given_a_balance_answer_when_parsed_then_a_number_or_code(
    vendor: ModuleType, body: str, kind: AnswerKind, value: str, code: int | None
) -> None:
    answer = vendor.parse_balance(body)
    assert (answer.kind, answer.value, answer.code) == (kind, value, code)


# ------------------------------------------------------------------------------------------ reports


def test_given_the_webservice_getreport_example_when_parsed_then_six_reports() -> None:
    reports = ws.parse_reports(examples.WS_GET_REPORT)
    assert triples(reports) == [
        ("2314357620085030624", "13900000000", "DELIVRD"),
        ("2314357620085030653", "13900000001", "DELIVRD"),
        ("2314357620085030623", "13900000002", "DELIVRD"),
        ("2314357620085030667", "13900000003", "DELIVRD"),
        ("2314357620085030665", "13900000004", "UNDELIVRD"),
        ("2314357620085030629", "13900000005", "DELIVRD"),
    ]
    assert [r.delivered for r in reports] == [True, True, True, True, False, True]
    assert all(r.at is None for r in reports)


def test_given_the_yunxin_getreport_example_with_an_empty_field_when_parsed_then_six_reports() -> None:
    # The document's last record "batch,,mobile,status": a stray empty field, still 13900000005 delivered.
    reports = yx.parse_reports(examples.YX_GET_REPORT)
    assert [r.mobile for r in reports] == [f"1390000000{i}" for i in range(6)]
    assert reports[-1] == Report("13900000005", "DELIVRD", "2114355899380234221")
    assert [r.status for r in reports].count("UNDELIVRD") == 1


@pytest.mark.parametrize(
    ("vendor", "body", "batches"),
    [
        (ws, examples.WS_GET_REPORT2, ["2314355899380234221", "2314355899380234222", "2314355899380234223"]),
        (yx, examples.YX_GET_REPORT2, ["2114355899380234221"] * 3),
    ],
    ids=["webservice", "yunxin"],
)
def test_given_the_getreport2_example_with_padding_when_parsed_then_aware_times(
    vendor: ModuleType, body: str, batches: list[str]
) -> None:
    reports = vendor.parse_reports(body)
    assert [r.batch_id for r in reports] == batches
    assert [r.status for r in reports] == ["DELIVRD", "DELIVRD", "UNDELIVRD"]  # " UNDELIVRD " stripped
    assert all(r.at == DOC_TIME and r.at.utcoffset() is not None for r in reports)
    # The webservice document's 12-digit numbers are kept as given (the reconciler decides).
    assert reports[1].mobile == ("139000000001" if vendor is ws else "13900000001")


def test_given_the_webservice_voice_report_when_parsed_then_talk_ring_hangup_in_extra() -> None:
    (report,) = ws.parse_reports(examples.WS_VOICE_REPORT)
    assert (report.batch_id, report.mobile) == ("2314357620085030623", "13900000000")
    assert report.extra == {"talk_s": "0", "ring_s": "30", "hangup_type": "2"}
    # Nobody talked (0 s, hangup 2 = call timed out): not delivered, raw hangup type kept.
    assert report.status == "VOICE:2" and not report.delivered
    assert "timed out" in ws.VOICE_HANGUP_TYPES["2"]


def test_given_an_answered_voice_call_when_parsed_then_delivered() -> None:
    (report,) = ws.parse_reports("2314357620085030623,13900000000,12,5,4|")
    assert report.delivered and report.extra["talk_s"] == "12"


@BOTH
@pytest.mark.parametrize(
    "body",
    [
        "",
        "   ",
        "|||",
        '<string xmlns="http://tempuri.org/" />',
        '<?xml version="1.0"?><string xmlns="http://tempuri.org/"></string>',
        "<html><body><table><tr><td>2314,13900000000,DELIVRD|</td></tr></table></body></html>",
        "<html><pre>\n|2314357620085030624,13900000000,DELIVRD|</pre></html>",  # a whole record inside
        "Server Error in '/' Application.",
        "-3",
        "\x00\xff garbage ,,,|,|;|",
    ],
)
def test_given_nothing_or_garbage_when_parsing_reports_then_no_reports_and_no_crash(
    vendor: ModuleType, body: str
) -> None:
    assert vendor.parse_reports(body) == []


def test_given_half_records_when_parsing_reports_then_only_whole_ones_kept_and_rejects_listed() -> None:
    body = (
        "2314357620085030624,13900000000,DELIVRD|"
        "2314357620085030625,13900000001|"  # no status
        "2314357620085030626|"  # batch only
        "2314357620085030627,13900000002,2014/06/10 15:34:11|"  # time but no status
        "abc,13900000003,DELIVRD|"  # batch not digits
        "2314357620085030628,13900000004,0,30|"  # half a voice record
        ",13900000005,EXPIRED|"  # empty batch: kept, matched by number
        "2314357620085030629,13900000006,MK:0001|"
    )
    reports, rejects = ws.parse_reports_with_rejects(body)
    assert triples(reports) == [
        ("2314357620085030624", "13900000000", "DELIVRD"),
        ("", "13900000005", "EXPIRED"),
        ("2314357620085030629", "13900000006", "MK:0001"),
    ]
    assert len(rejects) == 5
    assert yx.parse_reports(body) == reports


def test_given_a_dash_time_and_crlf_when_parsing_reports_then_read() -> None:
    (report,) = yx.parse_reports("\r\n2114355899380234221, 13900000000 ,2014-06-10 15:34:11,REJECTD|\r\n")
    assert (report.status, report.at, report.delivered) == ("REJECTD", DOC_TIME, False)


@BOTH
def test_given_a_pull_error_code_then_pull_error_names_it_and_empty_is_not_an_error(
    vendor: ModuleType,
) -> None:
    info = vendor.pull_error('<string xmlns="http://tempuri.org/">-3</string>')
    assert info is not None and info.code == -3 and info.error_class is ErrorClass.ACCOUNT
    assert vendor.pull_error("") is None
    assert vendor.pull_error(examples.WS_GET_REPORT) is None


def test_given_minus_22_on_a_yunxin_pull_then_classified_by_yunxins_table() -> None:
    info = yx.pull_error("-22")
    assert info is not None and "解密失败" in info.meaning


# ------------------------------------------------------------------------------------------ replies


@BOTH
def test_given_getmo_records_when_parsed_then_phone_text_aware_time(vendor: ModuleType) -> None:
    replies = vendor.parse_replies(examples.GET_MO, DOC_NOW)
    assert [(r.mobile, r.text, r.channel) for r in replies] == [
        ("13900000000", "收到，谢谢", ""),
        ("13900000001", "TD", ""),
    ]
    assert replies[0].at == DOC_TIME
    assert replies[1].at == datetime(2014, 6, 10, 15, 35, 2, tzinfo=CHINA_TZ)


@BOTH
def test_given_getmo2_records_ending_with_bar_semicolon_when_parsed_then_channel_kept(
    vendor: ModuleType,
) -> None:
    replies = vendor.parse_replies(examples.GET_MO2, DOC_NOW)
    assert [(r.mobile, r.text, r.channel) for r in replies] == [
        ("13900000000", "收到，谢谢", "106900001234"),
        ("13900000001", "TD", "106900001235"),
    ]
    assert replies[0].at == DOC_TIME


def test_given_a_reply_text_with_the_field_separator_when_parsed_then_text_kept_whole() -> None:
    (reply,) = ws.parse_replies("13900000000|,|a|,|b|,|2014/06/10 15:34:11|,|1069|;|")
    assert (reply.text, reply.channel, reply.at) == ("a|,|b", "1069", DOC_TIME)


def test_given_a_reply_with_an_unreadable_time_when_parsed_then_set_aside_as_a_reject() -> None:
    # The time is what ends a record: without one there is no telling where its text ends.
    assert yx.parse_replies_with_rejects("13900000000|,|退订|,|yesterday") == (
        [],
        ["13900000000|,|退订|,|yesterday"],
    )
    # A record without an end after good ones: the good ones are read, the rest set aside
    body = f"13900000000|,|好|,|{REPLY_TIME}|;|13900000001|,|a|,|yesterday|;|"
    replies, rejects = yx.parse_replies_with_rejects(body)
    assert [r.mobile for r in replies] == ["13900000000"]
    assert rejects == ["13900000001|,|a|,|yesterday|;|"]


# Every separator of every vendor (records, fields, personalised packing), and each alone and bare.
SEPARATORS = ["|;|", "|,|", "|;", ";", ",", "|", "|!|", "|^|", "|~|", "|-|", "\n", "，", "；"]
FORGED = "好的|;|13900000002|,|TD"
REPLY_TIME = "2026/12/07 10:00:00"
REPLY_NOW = datetime(2026, 12, 7, 10, 5, tzinfo=CHINA_TZ)


def _getmo_bodies(text: str) -> list[tuple[ModuleType, str]]:
    """The reply of 13900000001 saying ``text``, in each vendor's pulled list formats, then a real "收到"
    of 13900000003 after it."""
    after = f"13900000003|,|收到|,|{REPLY_TIME}"
    return [
        (ws, f"13900000001|,|{text}|,|{REPLY_TIME}|;|{after}|;|"),  # GetMo
        (ws, f"13900000001|,|{text}|,|{REPLY_TIME}|,|1069|;|{after}|,|1069|;|"),  # GetMo2
        (yx, f"13900000001|,|{text}|,|{REPLY_TIME}|,|1069|;\n{after}|,|1069|;"),  # GetMo2, "|;" ends
        (trigger, f"13900000001|,|{text}|,|{REPLY_TIME}|,|1069|,|c7|;|{after}|,|1069|,|c8|;|"),
        (trigger, f"13900000001|,|{text}|,|{REPLY_TIME}|,|c7|;|{after}|,|c8|;|"),  # GetMoConnect
        (
            trigger,
            f"13900000001 , {text} , {REPLY_TIME} , 1069 , c7 ; 13900000003 , 收到 , {REPLY_TIME} , 1069 , c8",
        ),
    ]


@pytest.mark.parametrize("sep", SEPARATORS)
def test_given_any_separator_in_a_reply_text_when_parsed_then_one_reply_of_its_sender_with_the_whole_text(
    sep: str,
) -> None:
    texts = [FORGED, f"好的{sep}13900000002{sep}TD", f"{sep}TD", f"TD{sep}", f"a{sep}b{sep}{sep}c"]
    for text in texts:
        for vendor, body in _getmo_bodies(text):
            replies, rejects = vendor.parse_replies_with_rejects(body, REPLY_NOW)
            assert [(r.mobile, r.text) for r in replies] == [
                ("13900000001", text.strip()),
                ("13900000003", "收到"),
            ], (vendor.NAME, body)
            assert rejects == []
            assert all(r.at == datetime(2026, 12, 7, 10, tzinfo=CHINA_TZ) for r in replies)


@pytest.mark.parametrize("sep", SEPARATORS)
def test_given_any_separator_in_a_pushed_reply_text_when_parsed_then_one_reply_with_the_whole_text(
    sep: str,
) -> None:
    text = f"好的{sep}13900000002{sep}TD"
    for vendor in (ws, yx):
        value = f"13900000001|,|{text}|,|{REPLY_TIME}|;|"
        form = urlencode({"account": "a", "GetMo": value}).encode()
        _, replies, rejects = vendor.parse_push_replies_with_rejects(
            form, "application/x-www-form-urlencoded"
        )
        assert [(r.mobile, r.text) for r in replies] == [("13900000001", text)] and rejects == []
    pushed = {"type": 3, "list": [{"dest_phone": "13900000001", "resp_content": text, "resp_time": 1}]}
    _, replies, rejects = trigger.parse_push_replies_with_rejects(
        json.dumps(pushed).encode(), "application/json"
    )
    assert [(r.mobile, r.text) for r in replies] == [("13900000001", text)] and rejects == []


@BOTH
@pytest.mark.parametrize(
    "body",
    [
        "",
        '<string xmlns="http://tempuri.org/" />',
        "-3",
        "<html>oops</html>",
        "13900000000|,|half",
        "x|,|y|,|z|;|",
    ],
)
def test_given_nothing_or_garbage_when_parsing_replies_then_empty(vendor: ModuleType, body: str) -> None:
    assert vendor.parse_replies(body) == []


def test_given_a_soap_getmo_answer_when_parsed_then_unwrapped() -> None:
    body = f"<soap:Envelope><soap:Body><GetMoResponse><GetMoResult>{examples.GET_MO}</GetMoResult></GetMoResponse></soap:Body></soap:Envelope>"
    assert len(yx.parse_replies(body, DOC_NOW)) == 2


# --------------------------------------------------------------------------------------------- push


@pytest.mark.parametrize(
    ("vendor", "body", "expected"),
    [
        (ws, examples.WS_PUSH_DEFAULT, ("2314364418256720085", "18000000000", "DELIVRD")),
        (ws, examples.WS_PUSH_WITH_TIME, ("2314355899380234221", "13900000000", "DELIVRD")),
        (yx, examples.YX_PUSH, ("2114364418256720085", "18000000000", "DELIVRD")),
    ],
    ids=["ws-default", "ws-with-time", "yunxin"],
)
def test_given_the_documents_push_examples_raw_when_parsed_then_account_and_report(
    vendor: ModuleType, body: str, expected: tuple[str, str, str]
) -> None:
    account, reports = vendor.parse_push_reports(body.encode(), FORM)
    assert account == "XXX" and triples(reports) == [expected]
    if "2014" in body:  # the document wraps the time over two lines: still read
        assert reports[0].at == DOC_TIME


@BOTH
def test_given_a_url_encoded_push_with_time_when_parsed_then_reports(vendor: ModuleType) -> None:
    body = urlencode({"account": "acme", "GetReport": examples.YX_GET_REPORT2}).encode()
    account, reports = vendor.parse_push_reports(body, FORM + "; charset=utf-8")
    assert account == "acme" and len(reports) == 3 and reports[2].status == "UNDELIVRD"


@BOTH
def test_given_a_reply_push_when_parsed_then_account_and_replies(vendor: ModuleType) -> None:
    body = urlencode({"account": "acme", "GetMo": examples.GET_MO}).encode()
    account, replies = vendor.parse_push_replies(body, FORM, DOC_NOW)
    assert account == "acme" and [r.text for r in replies] == ["收到，谢谢", "TD"]


def test_given_a_gbk_encoded_reply_push_when_parsed_then_chinese_text_read() -> None:
    body = urlencode({"account": "acme", "GetMo2": examples.GET_MO2}, encoding="gbk").encode()
    _, replies = yx.parse_push_replies(body, FORM + "; charset=gbk", DOC_NOW)
    assert replies[0].text == "收到，谢谢" and replies[0].channel == "106900001234"


def test_given_raw_gb18030_bytes_without_charset_when_parsed_then_fallback_reads_them() -> None:
    body = ("account=acme&GetMo=" + examples.GET_MO).encode("gb18030")
    _, replies = ws.parse_push_replies(body, FORM, DOC_NOW)
    assert replies[0].text == "收到，谢谢"


@BOTH
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"account":"x","list":[]}', "application/json"),
        (b"account=acme&foo=bar", FORM),
        (b"", FORM),
        (b"<html>hi</html>", "text/html"),
    ],
)
def test_given_a_push_that_is_not_the_form_when_parsed_then_value_error(
    vendor: ModuleType, body: bytes, content_type: str
) -> None:
    with pytest.raises(ValueError):
        vendor.parse_push_reports(body, content_type)
    with pytest.raises(ValueError):
        vendor.parse_push_replies(body, content_type)


@BOTH
def test_given_an_empty_push_list_when_parsed_then_no_reports(vendor: ModuleType) -> None:
    assert vendor.parse_push_reports(b"account=acme&GetReport=", FORM) == ("acme", [])


@BOTH
def test_given_an_unencoded_push_whose_reply_text_starts_a_second_list_then_refused_not_read(
    vendor: ModuleType,
) -> None:
    # A gateway that posts the form without encoding it: the text "好的|,|<time>|;|&GetMo=..." of
    # 13900000001 would make a second GetMo field, read instead of the real one.
    text = f"好的|,|{REPLY_TIME}|;|&GetMo=13900000002|,|TD"
    body = f"account=a&GetMo=13900000001|,|{text}|,|{REPLY_TIME}|;|".encode()
    with pytest.raises(ValueError, match="not encoded"):
        vendor.parse_push_replies_with_rejects(body, FORM)


def test_given_a_pushed_report_item_without_number_or_status_then_listed_as_a_reject_not_dropped() -> None:
    items = [{"phone": "13900000001", "receive_status": "DELIVRD"}, {"receive_status": "DELIVRD"}, 7,
             {"phone": "13900000002"}]  # fmt: skip
    _, reports, rejects = trigger.parse_push_reports_with_rejects(
        json.dumps({"account": "a", "type": 1, "list": items}).encode(), "application/json"
    )
    assert [r.mobile for r in reports] == ["13900000001"] and len(rejects) == 3
    form = urlencode({"account": "a", "GetReport": "1,13900000001,DELIVRD|x,y|"}).encode()
    _, reports, rejects = ws.parse_push_reports_with_rejects(form, FORM)
    assert [r.mobile for r in reports] == ["13900000001"] and rejects == ["x,y"]


# A text of anything people type, weighted towards every vendor's separators and numbers; no ":", so
# it can never write out a time (what a forged record would need: see dispatcher/vendors/mo.py).
_PIECES = [*"|;,!^~-好的TD 0123456789/\n，；", "|;|", "|,|", "|;", "13900000002"]
_TEXTS = st.lists(st.sampled_from(_PIECES), max_size=20).map("".join)
_NUMBERS = st.sampled_from(["13900000001", "13900000002", "+8613900000003", "1069000"])


@settings(max_examples=300, deadline=None)
@given(
    replies=st.lists(st.tuples(_NUMBERS, _TEXTS), min_size=1, max_size=5),
    shape=st.sampled_from(["getmo", "getmo2", "trigger2", "trigger1", "bare"]),
)
def test_given_any_texts_when_listed_as_the_gateways_write_them_then_each_comes_back_whole_and_alone(
    replies: list[tuple[str, str]], shape: str
) -> None:
    tails = {
        "getmo": [],
        "getmo2": ["1069"],
        "trigger2": ["1069", "c7"],
        "trigger1": ["c7"],
        "bare": ["1069", "c7"],
    }
    fs, rs = (",", ";") if shape == "bare" else ("|,|", "|;|")
    if shape == "bare":  # the bare list's texts hold no bare separator the gateway example shows
        replies = [(m, t.replace(";", "")) for m, t in replies]
    body = "".join(fs.join([m, t, REPLY_TIME, *tails[shape]]) + rs for m, t in replies)
    vendor = ws if shape.startswith("getmo") else trigger
    parsed, rejects = vendor.parse_replies_with_rejects(body, REPLY_NOW)
    assert [(r.mobile, r.text) for r in parsed] == [(m, t.strip()) for m, t in replies]
    assert rejects == []


# ---- what the review of this round found ----------------------------------------------------------


def test_given_an_unencoded_push_whose_text_names_another_list_key_then_the_body_is_refused() -> None:
    # 13900000001's text "hi&GetMo=13900000002|,|TD" in a form the gateway did not encode: GetMo is
    # another name of the GetMo2 list, which would have been read instead, opting out 13900000002
    body = b"account=acc&GetMo2=13900000001|,|hi&GetMo=13900000002|,|TD|,|2026-12-07 10:00:00|,|1234|;|"
    with pytest.raises(ValueError, match="not encoded"):
        ws.parse_push_replies_with_rejects(body, "application/x-www-form-urlencoded")


def test_given_a_time_no_gateway_writes_then_it_is_no_time_and_no_record_boundary() -> None:
    from dispatcher.vendors.wire import parse_china_time

    assert parse_china_time("0001-1-1 0:0") is None and parse_china_time("9999-12-31 23:59:59") is None
    assert parse_china_time("2026-12-07 10:00:00") is not None
    # a reply text forging a record with year 1 (its UTC conversion overflowed and set the body aside)
    body = "13900000001|,|x|,|0001-1-1 0:0|;|13900000005|,|y|,|2026-12-07 10:00:00|;|"
    replies, rejects = ws.parse_replies_with_rejects(body)
    assert [(r.mobile, r.text) for r in replies] == [("13900000001", "x|,|0001-1-1 0:0|;|13900000005|,|y")]
    assert rejects == []


def test_given_a_lone_surrogate_or_nul_in_a_text_then_it_is_made_storable() -> None:
    from dispatcher.results.parsing import storable

    assert storable("hi\ud800\x00") == "hi?\ufffd"
    assert storable("退订") == "退订"


def test_given_a_21_character_number_then_the_record_is_set_aside_at_parse_time() -> None:
    from dispatcher.results.parsing import ReplyRecord, _reply_problem

    assert _reply_problem(ReplyRecord("+12345678901234567890", "y", None, None, None)) == "mobile"
    assert _reply_problem(ReplyRecord("+1234567890123456789", "y", None, None, None)) is None


# ---- issue 22, third round: a boundary inside a body looks exactly like the gateway's last one -------

READ_AT = datetime(2026, 12, 7, 10, 5, tzinfo=CHINA_TZ)  # when the lists below were received
# Each vendor's list formats: (module, field separator, record separator, the gateway's own tail
# after the time, a forged tail of another shape (another field count), the record end at the end)
_FORMATS = [
    (ws, "|,|", "|;|", [], ["1069"], "|;|"),  # GetMo
    (ws, "|,|", "|;|", ["1069"], [], "|;|"),  # GetMo2
    (yx, "|,|", "|;|", ["1069"], [], "|;"),  # GetMo2, "|;" at the end
    (trigger, "|,|", "|;|", ["1069", "c7"], ["c7"], "|;|"),  # GetMo2Connect
    (trigger, "|,|", "|;|", ["c7"], ["1069", "c7"], "|;|"),  # GetMoConnect
    (trigger, ",", ";", ["1069", "c7"], ["c7"], ""),  # the bare list
]


def _forgeries(fs: str, rs: str, own: list[str], other: list[str]) -> list[tuple[str, str]]:
    """Texts of 13900000001 spelling out a record "TD" of 13900000002, each with a tail no boundary
    inside a body may have: (why, text)."""
    good = "2026-12-07 10:00:00"
    return [
        ("another field count", fs.join(["好的", good, *other]) + rs + fs.join(["13900000002", "TD"])),
        (
            "another time layout",
            fs.join(["好的", "2026/12/07 10:00:00", *own]) + rs + "13900000002" + fs + "TD",
        ),
        ("no seconds", fs.join(["好的", "2026-12-07 10:00", *own]) + rs + "13900000002" + fs + "TD"),
        ("days before", fs.join(["好的", "2026-12-03 10:00:00", *own]) + rs + "13900000002" + fs + "TD"),
        ("days after", fs.join(["好的", "2026-12-11 10:00:00", *own]) + rs + "13900000002" + fs + "TD"),
    ]


@pytest.mark.parametrize("sep", SEPARATORS)
@pytest.mark.parametrize(
    "fmt", _FORMATS, ids=["getmo", "getmo2", "yunxin-getmo2", "trigger2", "trigger1", "trigger-bare"]
)
def test_given_a_reply_text_forging_a_record_of_another_shape_or_time_then_it_stays_its_senders_text(
    fmt: tuple[ModuleType, str, str, list[str], list[str], str], sep: str
) -> None:
    vendor, fs, rs, own, other, end = fmt
    for why, forged in _forgeries(fs, rs, own, other):
        text = f"{sep}{forged}" if fs != "," or sep not in (";", ",") else forged
        real = fs.join(["13900000001", text, "2026-12-07 10:01:00", *own])
        after = fs.join(["13900000003", "收到", "2026-12-07 10:02:00", *own])
        body = real + rs + after + end
        replies, rejects = vendor.parse_replies_with_rejects(body, READ_AT)
        assert [(r.mobile, r.text) for r in replies] == [
            ("13900000001", text.strip()),
            ("13900000003", "收到"),
        ], (why, body)
        assert rejects == [], (why, body)


def test_given_a_forgery_of_the_exact_shape_and_a_plausible_time_then_it_reads_as_a_record() -> None:
    # What the shape and time cannot stop (the text guessed both): the inbox then opts out only a
    # number the account sent to (tests/results/test_outside_values.py)
    body = "13900000001|,|好的|,|2026-12-07 10:00:00|;|13900000002|,|TD|,|2026-12-07 10:01:00|;|"
    replies, _ = ws.parse_replies_with_rejects(body, READ_AT)
    assert [r.mobile for r in replies] == ["13900000001", "13900000002"]


def test_given_real_records_of_another_hour_padding_then_they_are_still_apart() -> None:
    # A gateway that does not pad its hours writes "9:05" and "10:05": the same layout
    body = "13900000001|,|好|,|2026-12-07 9:05:00|;|13900000002|,|TD|,|2026-12-07 10:01:00|;|"
    replies, rejects = ws.parse_replies_with_rejects(body, READ_AT)
    assert [(r.mobile, r.text) for r in replies] == [("13900000001", "好"), ("13900000002", "TD")]
    assert rejects == []


def test_given_a_backlog_older_than_the_retention_delivered_late_then_its_records_stay_apart() -> None:
    # A gateway delivering, days late, replies written 80 h, 79 h and 78 h before the list was read:
    # inner boundaries are weighed against the list's own last record, not the clock
    body = (
        "13900000001|,|好|,|2026-12-04 02:05:00|;|"
        "13900000002|,|TD|,|2026-12-04 03:05:00|;|"
        "13900000003|,|收到|,|2026-12-04 04:05:00|;|"
    )
    replies, rejects = ws.parse_replies_with_rejects(body, READ_AT)
    assert [(r.mobile, r.text) for r in replies] == [
        ("13900000001", "好"),
        ("13900000002", "TD"),
        ("13900000003", "收到"),
    ]
    assert rejects == []


@pytest.mark.parametrize(
    "charset", ["rot13", "hex", "base64", "zlib", "uu", "utf-16", "utf-32", "utf-7", "no-such-codec"]
)
def test_given_a_push_declaring_a_bytes_or_ascii_unsafe_charset_then_it_is_read_as_utf8(charset: str) -> None:
    from dispatcher.vendors.wire import decode_push

    body = "13900000001|,|退订|,|2026-12-07 10:01:00|;|".encode()
    text, used = decode_push(body, f"application/x-www-form-urlencoded; charset={charset}")
    assert (text, used) == (body.decode(), None)
