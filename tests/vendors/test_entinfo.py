"""Entinfo (Entinfo SDK API (2017)): mdsmssend / mdgxsend forms, rrid, answers and the code table."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest

from dispatcher.errors import UnsupportedMethodError
from dispatcher.vendors import entinfo
from dispatcher.vendors.wire import CHINA_TZ, AnswerKind, Credentials, ErrorClass

SN = "SDK-OFT-010-00001"
CREDS = Credentials(SN, "pa55")
PWD = hashlib.md5(b"SDK-OFT-010-00001pa55").hexdigest().upper()


def test_given_numbers_when_building_a_send_then_mdsmssend_with_md5_pwd_and_rrid() -> None:
    request = entinfo.build_send(
        CREDS, ["13712341021", "13712341022"], "测试【签名】", ref="123456789012345678"
    )
    assert request.method == "POST"
    assert request.path == "/webservice.asmx/mdsmssend"
    assert request.ref == "123456789012345678"
    assert request.form == {
        "sn": SN,
        "pwd": PWD,
        "mobile": "13712341021,13712341022",
        "content": "测试【签名】",
        "ext": "",
        "stime": "",
        "rrid": "123456789012345678",
        "msgfmt": "",
    }
    assert "pa55" not in str(request.form)  # only the MD5 leaves the machine


def test_given_plain_http_and_options_when_building_a_send_then_ashx_path_and_china_time() -> None:
    at = datetime(2010, 12, 29, 8, 27, 3, tzinfo=UTC)
    request = entinfo.build_send(
        CREDS, ["13712341021"], "x", ext="123", stime=at, msgfmt="15", plain_http=True
    )
    assert request.path == "/mdsmssend.ashx"
    assert request.form["stime"] == "2010-12-29 16:27:03"
    assert request.form["ext"] == "123"
    assert request.form["msgfmt"] == "15"
    naive = entinfo.build_send(CREDS, ["13712341021"], "x", stime=datetime(2010, 12, 29, 16, 27, 3))
    assert naive.form["stime"] == "2010-12-29 16:27:03"


@pytest.mark.parametrize("rrid", ["1234567890123456789", "12a", ""])
def test_given_a_bad_rrid_when_building_then_value_error(rrid: str) -> None:
    with pytest.raises(ValueError, match="rrid"):
        entinfo.build_send(CREDS, ["13712341021"], "x", ref=rrid)


@pytest.mark.parametrize("ext", ["1234567890", "12a"])
def test_given_a_bad_ext_when_building_then_value_error(ext: str) -> None:
    with pytest.raises(ValueError, match="ext"):
        entinfo.build_send(CREDS, ["13712341021"], "x", ext=ext)


def test_given_too_many_or_no_numbers_or_encryption_when_building_then_value_error() -> None:
    entinfo.build_send(CREDS, ["13712341021"] * 10_000, "x")
    with pytest.raises(ValueError, match="10000"):
        entinfo.build_send(CREDS, ["13712341021"] * 10_001, "x")
    with pytest.raises(ValueError):
        entinfo.build_send(CREDS, [], "x")
    with pytest.raises(ValueError, match="encrypted"):
        entinfo.build_send(CREDS, ["13712341021"], "x", encrypted=True)


def test_given_texts_with_commas_when_building_personalised_then_each_is_url_encoded_then_joined() -> None:
    messages = [("13712341021", "测试1, 好【签名】"), ("13712341022", "测试2【签名】")]
    request = entinfo.build_personalised(CREDS, messages, ref="77")
    assert request.path == "/webservice.asmx/mdgxsend"
    assert request.form["mobile"] == "13712341021,13712341022"
    contents = request.form["content"].split(",")
    assert [unquote(c) for c in contents] == ["测试1, 好【签名】", "测试2【签名】"]
    assert request.form["rrid"] == "77"
    assert set(request.form) == {"sn", "pwd", "mobile", "content", "ext", "stime", "rrid", "msgfmt"}
    assert entinfo.build_personalised(CREDS, messages, plain_http=True).path == "/mdgxsend.ashx"
    with pytest.raises(ValueError, match="1000"):
        entinfo.build_personalised(CREDS, [("13712341021", "x")] * 1001)


def test_given_document_answers_when_parsing_a_send_then_rrid_or_negative_code() -> None:
    ok = entinfo.parse_send(
        '<?xml version="1.0"?>\n<string xmlns="http://entinfo.cn/">210936472831121439</string>'
    )
    assert ok.kind is AnswerKind.OK and ok.value == "210936472831121439"
    assert entinfo.parse_send("210936472831121439\r\n").value == "210936472831121439"  # .ashx: plain text
    err = entinfo.parse_send('<string xmlns="http://entinfo.cn/">-20</string>')
    assert err.code == -20
    assert entinfo.classify(-20).error_class is ErrorClass.DUPLICATE


def test_given_balance_register_unregister_when_building_then_md5_for_balance_and_the_password_to_register() -> (
    None
):
    balance = entinfo.build_balance(CREDS)
    assert (balance.path, balance.form) == ("/webservice.asmx/balance", {"sn": SN, "pwd": PWD})
    assert entinfo.parse_balance('<string xmlns="http://entinfo.cn/">1000</string>').value == "1000"
    assert entinfo.parse_balance('<string xmlns="http://entinfo.cn/">-2</string>').code == -2
    fields = dict.fromkeys(
        ["province", "city", "trade", "entname", "linkman", "phone", "mobile", "email", "fax", "address"], "v"
    )
    register = entinfo.build_register(CREDS, postcode="100001", sign="【签名】", **fields)
    assert register.path == "/webservice.asmx/Register"
    # The vendor's demo client: the password itself for Register / UnRegister, MD5 everywhere else.
    assert register.form["pwd"] == CREDS.password and register.form["sign"] == "【签名】"
    assert register.redacted()["pwd"] == "***"
    unregister = entinfo.build_unregister(CREDS)
    assert (unregister.path, unregister.form) == (
        "/webservice.asmx/UnRegister",
        {"sn": SN, "pwd": CREDS.password},
    )
    assert entinfo.parse_value("<string>0</string>").ok


def test_given_reports_or_replies_when_asked_then_unsupported() -> None:
    for call in (
        lambda: entinfo.build_pull_reports(CREDS),
        lambda: entinfo.build_pull_replies(CREDS),
        lambda: entinfo.parse_reports(""),
        lambda: entinfo.parse_replies(""),
        lambda: entinfo.parse_push_reports(b"", "application/json"),
        lambda: entinfo.parse_push_replies(b"", "application/json"),
        lambda: entinfo.build_balance(CREDS, encrypted=True),
    ):
        with pytest.raises(UnsupportedMethodError):
            call()


def test_given_texts_when_checking_length_then_the_minus_10_limits() -> None:
    assert not entinfo.text_too_long("a" * 1000)
    assert entinfo.text_too_long("a" * 1001)
    assert not entinfo.text_too_long("好" * 500)
    assert entinfo.text_too_long("a" * 400 + "好" * 101)


def test_given_the_documented_code_list_then_every_code_has_the_documented_class() -> None:
    documented_codes = [-2, -4, -5, -6, -7, -8, -9, -10, -11, -12, -14, -17, -19, -20, -21, -22, -23]
    documented_codes += [*range(-601, -612, -1), -623, -624, -625, -626]
    demo_codes = [-13, -15, -16, -18, -644]  # the vendor's demos' tables add these
    assert sorted(entinfo.CODES) == sorted(documented_codes + demo_codes)
    classes = {
        ErrorClass.RATE_LIMITED: [-8],
        ErrorClass.RETRY_LATER: [-11, -14, -18],
        ErrorClass.BAD_CONTENT: [-10, -611],
        ErrorClass.ACCOUNT: [-2, -4, -7, -9, -12, -17, -21, -22, -23],
        ErrorClass.DUPLICATE: [-20],
    }
    for cls, codes in classes.items():
        for code in codes:
            assert entinfo.classify(code).error_class is cls, code
    for code in [-5, -6, -19, *range(-601, -611, -1), -623, -624, -625, -626]:
        assert entinfo.classify(code).error_class is ErrorClass.BAD_REQUEST, code
    for code in [-13, -15, -16, -644]:  # MMS content, the report store, the rrid count: packing bugs
        assert entinfo.classify(code).error_class is ErrorClass.BAD_REQUEST, code
    assert entinfo.classify(-3).error_class is ErrorClass.UNKNOWN


def test_given_stime_as_text_then_passed_through() -> None:
    request = entinfo.build_send(CREDS, ["13712341021"], "x", stime=" 2010-12-30 9:23:20 ")
    assert request.form["stime"] == "2010-12-30 9:23:20"
    assert CHINA_TZ.utcoffset(None).total_seconds() == 8 * 3600


@pytest.mark.parametrize("body", ["<html><body>Service Unavailable</body></html>", "余额查询失败"])
def test_given_an_answer_that_is_no_number_when_parsing_a_balance_then_unexpected(body: str) -> None:
    assert entinfo.parse_balance(body).kind is AnswerKind.UNEXPECTED


@pytest.mark.parametrize(("field", "value"), [("ext", "１２３"), ("ref", "１２３")])
def test_given_full_width_digits_when_building_then_value_error(field: str, value: str) -> None:
    # The gateway refuses them (-607 ext not numeric, -610 rrid not numeric).
    with pytest.raises(ValueError):
        entinfo.build_send(CREDS, ["13712341021"], "x【签】", **{field: value})
