"""Trigger (Trigger API v1.8): requests, answers, reports, replies and pushes, with the document's examples."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlencode

import pytest

from dispatcher.errors import TextEncodingError, UnsupportedMethodError
from dispatcher.vendors import crypto, trigger
from dispatcher.vendors.wire import CHINA_TZ, AnswerKind, Credentials, ErrorClass, Separators

CREDS = Credentials("zhangsan", "123")
DOC_TEXT = "你的验证码是:2345【饿了么】"
# Trigger API v1.8 section 2.8: submitInfo for userPass=123&DesNo=18616300000&Msg=...&smsType=101&Channel=0
DOC_SUBMIT_INFO = (
    "9ECD998D9F60F7963E137DBC61734970FEE419418FBD2E1622286696AD70D909BF58BB270916073B0464030"
    "D4FC52D4AF06BF97B34D7CCB4D06AD49E87576B30CF629652BD44258CDA49DB959914CE4F951879939D6586AE"
)


def _wrap(value: str) -> str:
    return f'<?xml version="1.0" encoding="utf-8"?>\n<string xmlns="http://tempuri.org/">{value}</string>'


def test_given_one_number_when_building_a_send_then_send_msg_with_customer_uuid_and_sms_type() -> None:
    request = trigger.build_send(CREDS, ["13900000000"], "hi【签】", ref="chunk-7")
    assert request.method == "POST"
    assert request.path == "/winnerrxd/api/trigger/SendMsg"
    assert request.ref == "chunk-7"
    assert request.form == {
        "userCode": "zhangsan",
        "userPass": "123",
        "DesNo": "13900000000",
        "Msg": "hi【签】",
        "autograph": "",
        "customerUuid": "chunk-7",
        "smsType": "101",
    }
    assert "123" not in repr(request)


def test_given_many_numbers_when_building_a_send_then_send_batch_msg_joined_by_commas() -> None:
    mobiles = [f"139000000{i:02d}" for i in range(50)]
    request = trigger.build_send(CREDS, mobiles, "hi【签】", ref="c1")
    assert request.path == "/winnerrxd/api/trigger/SendBatchMsg"
    assert request.form["DesNo"] == ",".join(mobiles)
    assert set(request.form) == {"userCode", "userPass", "DesNo", "Msg", "autograph", "smsType"}
    assert request.ref == "c1"


def test_given_51_numbers_or_none_when_building_a_send_then_value_error() -> None:
    with pytest.raises(ValueError, match="50"):
        trigger.build_send(CREDS, ["13900000000"] * 51, "hi【签】")
    with pytest.raises(ValueError):
        trigger.build_send(CREDS, [], "hi【签】")


def test_given_a_61_character_ref_when_building_then_value_error() -> None:
    trigger.build_send(CREDS, ["13900000000"], "hi", ref="x" * 60)
    with pytest.raises(ValueError, match="60"):
        trigger.build_send(CREDS, ["13900000000"], "hi", ref="x" * 61)


def test_given_the_document_example_when_building_an_encrypted_send_then_the_document_submit_info() -> None:
    request = trigger.build_send(CREDS, ["18616300000"], DOC_TEXT, encrypted=True, ref="r")
    assert request.path == "/winnerrxd/api/trigger/sendMsgByEncrypt"
    assert request.form == {"userCode": "zhangsan", "submitInfo": DOC_SUBMIT_INFO, "autograph": ""}
    assert request.ref == "r"


def test_given_an_emoji_when_building_an_encrypted_send_then_text_encoding_error() -> None:
    with pytest.raises(TextEncodingError) as info:
        trigger.build_send(CREDS, ["18616300000"], "生日快乐🎂【签】", encrypted=True)
    assert info.value.characters == "🎂"


def test_given_encrypted_batch_or_encrypted_ext_when_building_then_value_error() -> None:
    with pytest.raises(ValueError):
        trigger.build_send(CREDS, ["13900000000", "13900000001"], "hi", encrypted=True)
    with pytest.raises(ValueError):
        trigger.build_send(CREDS, ["13900000000"], "hi", encrypted=True, ext="12")


def test_given_an_extension_number_when_building_then_send_msg_ext_with_exe_no() -> None:
    request = trigger.build_send(CREDS, ["13900000000"], "hi", ext="1234567890123456", ref="c")
    assert request.path == "/winnerrxd/api/trigger/sendMsgExt"
    assert request.form["ExeNo"] == "1234567890123456"
    assert request.form["customerUuid"] == "c"
    assert request.form["smsType"] == "101"
    for bad in ("12345678901234567", "12a", "１２３"):  # full-width digits: the gateway answers -44
        with pytest.raises(ValueError, match="ExeNo"):
            trigger.build_send(CREDS, ["13900000000"], "hi", ext=bad)
    with pytest.raises(ValueError):
        trigger.build_send(CREDS, ["13900000000", "13900000001"], "hi", ext="1")


def test_given_messages_when_building_personalised_then_the_account_separators_are_used() -> None:
    messages = [("13900000000", "张三你好【签】"), ("13900000001", "李四你好【签】")]
    default = trigger.build_personalised(CREDS, messages, ref="c9")
    assert default.path == "/winnerrxd/api/trigger/SendIndividualMsg"
    # The default: "|~|" between number and text, "|-|" between messages (see the module's notes).
    assert default.form["Msg"] == "13900000000|~|张三你好【签】|-|13900000001|~|李四你好【签】"
    assert default.form["customerUuid"] == "c9"
    assert default.form["smsType"] == "101"
    own = trigger.build_personalised(CREDS, messages, separators=Separators("|!|", "|^|"))
    assert own.form["Msg"] == "13900000000|!|张三你好【签】|^|13900000001|!|李四你好【签】"


def test_given_a_text_with_the_separator_or_too_many_when_building_personalised_then_value_error() -> None:
    with pytest.raises(ValueError, match="separator"):
        trigger.build_personalised(CREDS, [("13900000000", "a|-|b")])
    # The same text is fine with the other separators.
    trigger.build_personalised(CREDS, [("13900000000", "a|-|b")], separators=Separators("|!|", "|^|"))
    with pytest.raises(ValueError, match="50"):
        trigger.build_personalised(CREDS, [("13900000000", "a")] * 51)


def test_given_document_answers_when_parsing_a_send_then_batch_id_or_code() -> None:
    ok = trigger.parse_send(_wrap("2200001476358475197"))
    assert ok.kind is AnswerKind.OK and ok.value == "2200001476358475197"
    err = trigger.parse_send(_wrap("-16"))
    assert err.kind is AnswerKind.ERROR and err.code == -16
    assert trigger.classify(err.code).error_class is ErrorClass.RATE_LIMITED


def test_given_balance_when_building_and_parsing_then_get_balance_connect_and_value() -> None:
    request = trigger.build_balance(CREDS)
    assert request.path == "/winnerrxd/api/trigger/GetBalanceConnect"
    assert request.form == {"userCode": "zhangsan", "userPass": "123"}
    assert trigger.parse_balance(_wrap("100")).value == "100"
    assert trigger.parse_balance(_wrap("-3")).code == -3
    with pytest.raises(UnsupportedMethodError):
        trigger.build_balance(CREDS, encrypted=True)


def test_given_pull_builders_then_the_document_commands_and_fields() -> None:
    assert trigger.build_pull_reports(CREDS).path == "/winnerrxd/api/trigger/GetReport2Connect"
    legacy = trigger.build_report_legacy(CREDS)
    assert legacy.path == "/winnerrxd/api/trigger/GetReportConnect"
    assert legacy.form == {"userCode": "zhangsan", "userPass": "123", "batchNumber": ""}
    encrypted = trigger.build_pull_reports(CREDS, encrypted=True)
    assert encrypted.path == "/winnerrxd/api/trigger/GetReport2ByEncrypt"
    assert crypto.des_decrypt(encrypted.form["submitInfo"], "123") == "userPass=123"
    assert "userPass" not in encrypted.form
    assert trigger.build_pull_replies(CREDS).path == "/winnerrxd/api/trigger/GetMo2Connect"
    assert trigger.build_replies_legacy(CREDS).path == "/winnerrxd/api/trigger/GetMoConnect"
    mo_enc = trigger.build_pull_replies(CREDS, encrypted=True)
    assert mo_enc.path == "/winnerrxd/api/trigger/GetMo2ByEncrypt"
    assert crypto.des_decrypt(mo_enc.form["submitInfo"], "123") == "userPass=123"


DOC_REPORT2 = (
    "2314357620085030624,13900000000, 2014/06/10 15:34:11, DELIVRD,yj001 | "
    "2314357620085030665, 13900000004, 2014/06/10 15:34:11, UNDELIVRD,yj005 | "
    "2314357620085030629, 13900000005, 2014/06/10 15:34:11, DELIVRD,yj006 | "
)


def test_given_the_document_report2_list_when_parsing_then_time_status_and_customer_uuid() -> None:
    reports = trigger.parse_reports(_wrap(DOC_REPORT2))
    assert [(r.batch_id, r.mobile, r.status, r.ref) for r in reports] == [
        ("2314357620085030624", "13900000000", "DELIVRD", "yj001"),
        ("2314357620085030665", "13900000004", "UNDELIVRD", "yj005"),
        ("2314357620085030629", "13900000005", "DELIVRD", "yj006"),
    ]
    assert reports[0].at == datetime(2014, 6, 10, 15, 34, 11, tzinfo=CHINA_TZ)
    assert reports[0].delivered and not reports[1].delivered


def test_given_the_document_report_list_and_odd_records_when_parsing_then_lenient() -> None:
    body = (
        "2314357620085030624, 139000000000,DELIVRD,yj001  |2314357620085030665,,13900000004, UNDELIVRD ,|"
        "2314357620085030666,13900000006,MK:0001|"
    )
    reports = trigger.parse_reports(_wrap(body))
    assert [(r.batch_id, r.mobile, r.status, r.ref, r.at) for r in reports] == [
        ("2314357620085030624", "139000000000", "DELIVRD", "yj001", None),
        ("2314357620085030665", "13900000004", "UNDELIVRD", "", None),
        ("2314357620085030666", "13900000006", "MK:0001", "", None),
    ]
    assert trigger.parse_reports(_wrap("")) == []
    assert trigger.parse_reports('<string xmlns="http://tempuri.org/" />') == []


def test_given_the_document_mo2_example_when_parsing_replies_then_show_number_and_customer_id() -> None:
    body = "13816025285 , 宋超测试的 MO 信息! 12345 , 2016/10/13 13:51:08 , 106911378882931 , yj001"
    (reply,) = trigger.parse_replies(_wrap(body))
    assert reply.mobile == "13816025285"
    assert reply.text == "宋超测试的 MO 信息! 12345"
    assert reply.at == datetime(2016, 10, 13, 13, 51, 8, tzinfo=CHINA_TZ)
    assert reply.channel == "106911378882931"
    assert reply.ref == "yj001"


def test_given_pipe_separated_replies_with_commas_in_text_when_parsing_then_text_kept_whole() -> None:
    body = (
        "13816025285|,|好的, 谢谢|,|2016/10/13 13:51:08|,|106911378882930|,|yj001|;|"
        "13816025286|,|TD|,|2016/10/13 13:52:08|,|106911378882931|,|yj002|;|"
    )
    first, second = trigger.parse_replies(body, datetime(2016, 10, 13, 14, tzinfo=CHINA_TZ))
    assert (first.mobile, first.text, first.channel, first.ref) == (
        "13816025285",
        "好的, 谢谢",
        "106911378882930",
        "yj001",
    )
    assert (second.text, second.channel, second.ref) == ("TD", "106911378882931", "yj002")
    assert trigger.parse_replies(_wrap("")) == []


def test_given_the_document_report_push_when_parsing_then_account_and_epoch_ms_time() -> None:
    body = {
        "list": [
            {
                "phone": "15021750000",
                "receive_status": "DELIVRD",
                "receive_time": 1529466210680,
                "sub_no": "2400350000122303487",
                "customer_uuid": "0000a8ae8c1544e8b5723d77882d1280",
            }
        ],
        "account": "zhangsan",
        "type": 1,
    }
    account, (report,) = trigger.parse_push_reports(json.dumps(body).encode(), "application/json")
    assert account == "zhangsan"
    assert (report.mobile, report.status, report.batch_id) == (
        "15021750000",
        "DELIVRD",
        "2400350000122303487",
    )
    assert report.ref == "0000a8ae8c1544e8b5723d77882d1280"
    assert report.at == datetime(2018, 6, 20, 11, 43, 30, 680000, tzinfo=CHINA_TZ)


def test_given_reply_pushes_with_either_time_field_when_parsing_then_both_accepted() -> None:
    item = {"dest_phone": "15021750000", "resp_content": "回复内容", "show_num": "10690835400387"}
    seed = {
        "list": [item | {"receive_time": 1529466210680, "customer_uuid": "u1"}],
        "account": "z",
        "type": 3,
    }
    account, (reply,) = trigger.parse_push_replies(json.dumps(seed).encode(), "application/json")
    assert account == "z"
    assert (reply.mobile, reply.text, reply.channel, reply.ref) == (
        "15021750000",
        "回复内容",
        "10690835400387",
        "u1",
    )
    assert reply.at is not None and reply.at.year == 2018
    spec = {"list": [item | {"resp_time": "2018-06-20 11:43:30"}], "type": 4}
    form_body = urlencode({"json_str": json.dumps(spec)}).encode()
    account, (reply,) = trigger.parse_push_replies(form_body, "application/x-www-form-urlencoded")
    assert account == ""
    assert reply.at == datetime(2018, 6, 20, 11, 43, 30, tzinfo=CHINA_TZ)


def test_given_a_bad_push_body_when_parsing_then_value_error() -> None:
    with pytest.raises(ValueError, match="JSON"):
        trigger.parse_push_reports(b"account=x", "application/json")
    with pytest.raises(ValueError):
        trigger.parse_push_replies(b"[1, 2]", "application/json")


def test_given_the_documented_code_list_then_every_code_has_the_documented_class() -> None:
    expected = {
        ErrorClass.RATE_LIMITED: [-16],
        ErrorClass.RETRY_LATER: [-1, -8],
        ErrorClass.BAD_RECIPIENT: [-9, -12, -20, -46, -47, -48],
        ErrorClass.BAD_CONTENT: [-4, -5, -10, -18, -24, -41, -54],
        ErrorClass.BAD_REQUEST: [-19, -26, -27, -28, -44],
        ErrorClass.ACCOUNT: [-3, -7, -11, -17, -23, -25, -51],
    }
    assert sorted(trigger.CODES) == sorted(c for codes in expected.values() for c in codes)
    for cls, codes in expected.items():
        for code in codes:
            assert trigger.classify(code).error_class is cls, code
    assert trigger.classify(-999).error_class is ErrorClass.UNKNOWN
    assert trigger.classify(-23).meaning == "解密失败"


def test_given_an_empty_extension_when_building_then_send_msg_ext_with_an_empty_exe_no() -> None:
    # Trigger API v1.8 section 2.11: ExeNo "可为空，非必填".
    request = trigger.build_send(CREDS, ["13900000000"], "hi", ext="", ref="c")
    assert request.path == "/winnerrxd/api/trigger/sendMsgExt"
    assert request.form["ExeNo"] == ""


@pytest.mark.parametrize(
    "body", ["<html><body>502 Bad Gateway</body></html>", _wrap("维护中"), _wrap("１００")]
)
def test_given_an_answer_that_is_no_number_when_parsing_a_balance_then_unexpected(body: str) -> None:
    answer = trigger.parse_balance(body)
    assert answer.kind is AnswerKind.UNEXPECTED and not answer.ok
    assert trigger.parse_balance(_wrap("100.50")).value == "100.50"


def test_given_full_width_digits_when_parsing_a_send_answer_then_unexpected() -> None:
    assert trigger.parse_send(_wrap("２２００００１４７６３５８４７５１９７")).kind is AnswerKind.UNEXPECTED
    assert trigger.parse_send(_wrap("-１６")).kind is AnswerKind.UNEXPECTED


@pytest.mark.parametrize(
    ("code", "cls"),
    [("-16", ErrorClass.RATE_LIMITED), ("-3", ErrorClass.ACCOUNT), ("-17", ErrorClass.ACCOUNT),
     ("-1", ErrorClass.RETRY_LATER), ("-99", ErrorClass.UNKNOWN)],
)  # fmt: skip
def test_given_an_error_code_as_a_pull_answer_then_it_is_classified_not_taken_for_records(
    code: str, cls: ErrorClass
) -> None:
    body = _wrap(code)
    info = trigger.pull_error(body)
    assert info is not None and info.code == int(code) and info.error_class is cls
    assert trigger.parse_reports(body) == [] and trigger.parse_replies(body) == []


def test_given_records_or_nothing_as_a_pull_answer_then_no_pull_error() -> None:
    assert trigger.pull_error(_wrap("2314357620085030624,13900000000,DELIVRD,yj001|")) is None
    assert trigger.pull_error(_wrap("")) is None
    assert trigger.pull_error("") is None
