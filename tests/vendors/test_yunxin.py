"""yunxin requests: exact paths and form fields, as 云信 API v8.3 names them."""

from __future__ import annotations

import pytest

from dispatcher.errors import ConfigError, TextEncodingError, VendorError
from dispatcher.vendors import yunxin as yx
from dispatcher.vendors.crypto import des_decrypt
from dispatcher.vendors.wire import AnswerKind, Credentials, Request, Separators
from tests.vendors.examples import DOC_DES_PLAINTEXT, DOC_SUBMIT_INFO

CREDS = Credentials("admin1", "s3cret-pw", channel="37")
TEXT = "王某某, 明天记得要开会【123】"
LOGIN = {"userCode": "admin1", "userPass": "s3cret-pw"}


def numbers(n: int) -> list[str]:
    return [f"139{i:08d}" for i in range(n)]


def test_given_two_numbers_when_building_a_send_then_sendmsg_with_desno_joined_by_commas() -> None:
    req = yx.build_send(CREDS, ["13900000000", " 13900000001 "], TEXT, ref="c1")
    assert (req.method, req.path, req.ref) == ("POST", "/api/MsgSend.asmx/SendMsg", "c1")
    assert req.form == {**LOGIN, "DesNo": "13900000000,13900000001", "Msg": TEXT, "Channel": "37"}


def test_given_500_numbers_when_building_then_one_request_and_501_is_refused() -> None:
    assert yx.build_send(CREDS, numbers(500), TEXT).form["DesNo"].count(",") == 499
    with pytest.raises(ValueError):
        yx.build_send(CREDS, numbers(501), TEXT)


@pytest.mark.parametrize("mobiles", [[], [""], ["13900000000,13900000001"]])
def test_given_empty_or_comma_numbers_when_building_then_value_error(mobiles: list[str]) -> None:
    with pytest.raises(ValueError):
        yx.build_send(CREDS, mobiles, TEXT)


def test_given_no_channel_when_building_a_send_then_config_error_without_password() -> None:
    with pytest.raises(ConfigError) as err:
        yx.build_send(Credentials("admin1", "s3cret-pw"), ["13900000000"], TEXT)
    assert "s3cret-pw" not in str(err.value)


def test_given_an_extension_when_building_then_sendmesext_with_exeno() -> None:
    req = yx.build_send(CREDS, ["13900000000"], TEXT, ext="88")
    assert req.path == "/api/MsgSend.asmx/sendMesExt"
    assert req.form == {**LOGIN, "DesNo": "13900000000", "Msg": TEXT, "Channel": "37", "ExeNo": "88"}
    # The document: "扩展号，可为空" (may be empty).
    assert yx.build_send(CREDS, ["13900000000"], TEXT, ext="").form["ExeNo"] == ""
    with pytest.raises(ValueError):
        yx.build_send(CREDS, ["13900000000"], TEXT, ext="８８")


def test_given_the_document_example_when_sending_encrypted_then_submitinfo_is_the_documents_exact_hex() -> (
    None
):
    creds = Credentials("admin1", "123", channel="67")
    req = yx.build_send(creds, ["18616300000"], "你的验证码是:2345【饿了么】", encrypted=True)
    assert req.path == "/api/MsgSend.asmx/sendMsgByEncrypt"
    assert req.form == {"userCode": "admin1", "submitInfo": DOC_SUBMIT_INFO}
    assert des_decrypt(req.form["submitInfo"], "123") == DOC_DES_PLAINTEXT


def test_given_several_numbers_when_sending_encrypted_then_desno_list_is_inside_submitinfo() -> None:
    req = yx.build_send(
        Credentials("u", "123", channel="5"), ["13900000000", "13900000001"], "好【签】", encrypted=True
    )
    plain = des_decrypt(req.form["submitInfo"], "123")
    assert plain == "userPass=123&DesNo=13900000000,13900000001&Msg=好【签】&Channel=5"


def test_given_bad_encrypted_combinations_then_refused() -> None:
    with pytest.raises(TextEncodingError):
        yx.build_send(CREDS, ["13900000000"], "😀【签】", encrypted=True)
    with pytest.raises(ValueError):
        yx.build_send(CREDS, ["13900000000"], "a&b【签】", encrypted=True)
    with pytest.raises(ValueError):
        yx.build_send(CREDS, ["13900000000"], TEXT, ext="1", encrypted=True)


def test_given_the_documents_three_messages_when_building_personalised_then_individualsm_form() -> None:
    # Given the document's example (its garbled "13900000000!|" read as the stated "|!|" separator)
    messages = [
        ("13800000000", "王某某, 明天记得要开会【123】"),
        ("13900000000", "张某某, 明天记得要开会【123】"),
        ("18600000000", "李某某, 明天记得要开会【123】"),
    ]
    req = yx.build_personalised(Credentials("admin1", "123", channel="37"), messages, ref="c9")
    assert (req.method, req.path, req.ref) == ("POST", "/api/IndividualSm.aspx", "c9")
    assert req.form == {
        "account": "admin1",
        "pwd": "123",
        "channel": "37",
        "msg": "13800000000|!|王某某, 明天记得要开会【123】|^|13900000000|!|张某某, 明天记得要开会【123】"
        "|^|18600000000|!|李某某, 明天记得要开会【123】",
    }
    assert "123" not in repr(req).replace("【123】", "")


def test_given_other_separators_when_building_personalised_then_they_are_used() -> None:
    req = yx.build_personalised(CREDS, [("1", "a"), ("2", "b")], separators=Separators("|~|", "|-|"))
    assert req.form["msg"] == "1|~|a|-|2|~|b"


def test_given_1000_messages_then_one_request_and_1001_is_refused() -> None:
    assert yx.build_personalised(CREDS, [(m, "t") for m in numbers(1000)]).form["msg"].count("|^|") == 999
    with pytest.raises(ValueError):
        yx.build_personalised(CREDS, [(m, "t") for m in numbers(1001)])


@pytest.mark.parametrize("text", ["a|!|b", "a|^|b"])
def test_given_a_text_with_a_separator_when_building_personalised_then_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        yx.build_personalised(CREDS, [("13900000000", "ok"), ("13900000001", text)])


def test_given_a_text_with_the_default_separator_but_other_separators_in_use_then_accepted() -> None:
    req = yx.build_personalised(CREDS, [("1", "a|!|b")], separators=Separators("|~|", "|-|"))
    assert req.form["msg"] == "1|~|a|!|b"


def test_given_no_messages_or_empty_number_then_value_error() -> None:
    with pytest.raises(ValueError):
        yx.build_personalised(CREDS, [])
    with pytest.raises(ValueError):
        yx.build_personalised(CREDS, [(" ", "t")])


def test_given_credentials_when_building_balance_and_pulls_then_document_methods() -> None:
    assert (yx.build_balance(CREDS).path, yx.build_balance(CREDS).form) == (
        "/api/MsgSend.asmx/GetBalance",
        LOGIN,
    )
    assert (yx.build_pull_reports(CREDS).path, yx.build_pull_reports(CREDS).form) == (
        "/api/MsgSend.asmx/GetReport2", LOGIN)  # fmt: skip
    legacy = yx.build_report_legacy(CREDS, batch_number="")
    assert (legacy.path, legacy.form) == ("/api/MsgSend.asmx/GetReport", {**LOGIN, "batchNumber": ""})
    assert (yx.build_pull_replies(CREDS).path, yx.build_pull_replies(CREDS).form) == (
        "/api/MsgSend.asmx/GetMo2",
        LOGIN,
    )
    assert (yx.build_replies_legacy(CREDS).path, yx.build_replies_legacy(CREDS).form) == (
        "/api/MsgSend.asmx/GetMo",
        LOGIN,
    )
    creds = Credentials("admin1", "123", channel="37")
    for build, method in (
        (yx.build_balance, "GetBalanceByEncrypt"),
        (yx.build_pull_reports, "GetReport2ByEncrypt"),
        (yx.build_pull_replies, "GetMo2ByEncrypt"),
    ):
        req = build(creds, encrypted=True)
        assert req.path == f"/api/MsgSend.asmx/{method}"
        assert set(req.form) == {"userCode", "submitInfo"}
        assert des_decrypt(req.form["submitInfo"], "123") == "userPass=123"


def test_given_a_channel_when_building_keywords_then_getkeywords_with_channel() -> None:
    req = yx.build_keywords(CREDS)
    assert (req.path, req.form) == ("/api/MsgSend.asmx/GetKeyWords", {**LOGIN, "Channel": "37"})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("|促销|优惠|免费|", ["促销", "优惠", "免费"]),
        (
            '<string xmlns="http://tempuri.org/">|关键字 1|关键字 2|关键字 3</string>',
            ["关键字 1", "关键字 2", "关键字 3"],
        ),
        ("", []),
        ("||", []),
        ("赌博", ["赌博"]),
    ],
)
def test_given_a_keyword_answer_when_parsed_then_the_words(body: str, words: list[str]) -> None:
    assert yx.parse_keywords(body) == words


@pytest.mark.parametrize("body", ["-3", "-8", "<html><body>502 Bad Gateway</body></html>"])
def test_given_a_keyword_error_when_parsed_then_vendor_error_not_an_empty_list(body: str) -> None:
    with pytest.raises(VendorError):
        yx.parse_keywords(body)


def test_given_document_send_answers_when_parsed_then_batch_or_code_with_keyword() -> None:
    ok = yx.parse_send("2114355899380234221")
    assert ok.kind is AnswerKind.OK and ok.value == "2114355899380234221"
    kw = yx.parse_send('<string xmlns="http://tempuri.org/">-6:促销</string>')
    assert (kw.kind, kw.code, kw.detail) == (AnswerKind.ERROR, -6, "促销")
    assert yx.classify(kw.code or 0).error_class.value == "bad_content"


@pytest.mark.parametrize(
    "req",
    [
        yx.build_send(CREDS, ["13900000000"], TEXT),
        yx.build_send(CREDS, ["13900000000"], TEXT, ext="1"),
        yx.build_send(CREDS, ["13900000000"], TEXT, encrypted=True),
        yx.build_personalised(CREDS, [("13900000000", TEXT)]),
        yx.build_balance(CREDS),
        yx.build_balance(CREDS, encrypted=True),
        yx.build_pull_reports(CREDS),
        yx.build_pull_replies(CREDS, encrypted=True),
        yx.build_keywords(CREDS),
    ],
    ids=lambda r: r.path.rsplit("/", 1)[-1],
)
def test_given_any_request_then_post_and_password_never_in_its_repr(req: Request) -> None:
    assert req.method == "POST" and req.path.startswith("/api/")
    assert "s3cret-pw" not in repr(req)
