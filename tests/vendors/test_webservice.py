"""webservice requests: exact paths and form fields, as WebService API v9.9.6 names them."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest

from dispatcher.errors import TextEncodingError, UnsupportedMethodError
from dispatcher.vendors import webservice as ws
from dispatcher.vendors.crypto import des_decrypt
from dispatcher.vendors.wire import Credentials, Request
from tests.vendors.examples import DOC_DES_PLAINTEXT, DOC_SUBMIT_INFO

CREDS = Credentials("acme", "s3cret-pw")
TEXT = "您的验证码是 1234【测试】"


def test_given_one_number_when_building_a_send_then_it_is_sendmsg_with_the_document_fields() -> None:
    req = ws.build_send(CREDS, ["13912345678"], TEXT, ref="chunk-7")
    assert req.method == "POST"
    assert req.path == "/Services/MsgSend.asmx/SendMsg"
    assert req.form == {
        "userCode": "acme",
        "userPass": "s3cret-pw",
        "DesNo": "13912345678",
        "Msg": TEXT,
        "Channel": "",  # the document: "留空或输入 0 即可"
    }
    assert req.ref == "chunk-7"


def test_given_an_account_channel_when_building_a_send_then_it_is_passed_on() -> None:
    req = ws.build_send(Credentials("acme", "pw", channel="0"), ["13912345678"], TEXT)
    assert req.form["Channel"] == "0"


@pytest.mark.parametrize("mobiles", [[], ["13912345678", "13912345679"], ["  "]])
def test_given_not_exactly_one_number_when_building_a_send_then_value_error(mobiles: list[str]) -> None:
    with pytest.raises(ValueError):
        ws.build_send(CREDS, mobiles, TEXT)


def test_given_an_extension_when_building_a_send_then_it_is_sendmsgext_sub_with_channel_543296() -> None:
    req = ws.build_send(CREDS, ["13912345678"], TEXT, ext="0815")
    assert req.path == "/Services/MsgSend.asmx/SendMsgExt_Sub"
    assert req.form == {
        "userCode": "acme",
        "userPass": "s3cret-pw",
        "DesNo": "13912345678",
        "Msg": TEXT,
        "Channel": "543296",
        "ExeNo": "0815",
    }


@pytest.mark.parametrize("ext", ["", "12a", "１２"])
def test_given_a_non_digit_extension_when_building_then_value_error(ext: str) -> None:
    with pytest.raises(ValueError):
        ws.build_send(CREDS, ["13912345678"], TEXT, ext=ext)


def test_given_the_document_example_when_sending_encrypted_then_submitinfo_is_the_documents_exact_hex() -> (
    None
):
    # Given password 123, channel 67 and the document's number and text
    creds = Credentials("acme", "123", channel="67")
    # When
    req = ws.build_send(creds, ["18616300000"], "你的验证码是:2345【饿了么】", encrypted=True)
    # Then
    assert req.path == "/Services/MsgSend.asmx/sendMsgByEncrypt"
    assert req.form == {"userCode": "acme", "submitInfo": DOC_SUBMIT_INFO}
    assert des_decrypt(req.form["submitInfo"], "123") == DOC_DES_PLAINTEXT


def test_given_no_channel_when_sending_encrypted_then_channel_0_is_encrypted() -> None:
    req = ws.build_send(Credentials("acme", "123"), ["18616300000"], "hi【x】", encrypted=True)
    assert (
        des_decrypt(req.form["submitInfo"], "123") == "userPass=123&DesNo=18616300000&Msg=hi【x】&Channel=0"
    )


def test_given_an_emoji_when_sending_encrypted_then_text_encoding_error_and_plain_works() -> None:
    with pytest.raises(TextEncodingError) as err:
        ws.build_send(CREDS, ["13912345678"], "好😀【签名】", encrypted=True)
    assert "😀" in str(err.value) and "s3cret" not in str(err.value)
    assert ws.build_send(CREDS, ["13912345678"], "好😀【签名】").form["Msg"] == "好😀【签名】"


def test_given_an_ampersand_when_sending_encrypted_then_value_error() -> None:
    # The decrypted submitInfo is split on '&' by the vendor: "A&B" would be cut.
    with pytest.raises(ValueError):
        ws.build_send(CREDS, ["13912345678"], "A&B【签名】", encrypted=True)


def test_given_encrypted_and_ext_when_building_then_value_error() -> None:
    with pytest.raises(ValueError):
        ws.build_send(CREDS, ["13912345678"], TEXT, ext="12", encrypted=True)


def test_given_messages_when_building_personalised_then_unsupported() -> None:
    with pytest.raises(UnsupportedMethodError):
        ws.build_personalised(CREDS, [("13912345678", TEXT)])


def test_given_english_text_when_building_international_then_sendmsg_channel_999() -> None:
    req = ws.build_international(CREDS, "85291234567", "Your code is 1234 [ACME]", ref="r1")
    assert req.path == "/Services/MsgSend.asmx/SendMsg"
    assert req.form == {
        "userCode": "acme",
        "userPass": "s3cret-pw",
        "DesNo": "85291234567",
        "Msg": "Your code is 1234 [ACME]",
        "Channel": "999",
    }
    assert req.ref == "r1"


@pytest.mark.parametrize("text", ["中文", "x" * 141])
def test_given_non_english_or_long_text_when_building_international_then_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        ws.build_international(CREDS, "85291234567", text)


def test_given_140_chars_when_building_international_then_accepted() -> None:
    assert len(ws.build_international(CREDS, "85291234567", "x" * 140).form["Msg"]) == 140


def test_given_a_code_when_building_a_voice_code_then_all_six_document_fields() -> None:
    req = ws.build_voice_code(CREDS, "13912345678", "123456", amount=3)
    assert req.path == "/Services/MsgSend.asmx/SendVoiceCode"
    assert req.form == {
        "userCode": "acme",
        "userPass": "s3cret-pw",
        "DesNo": "13912345678",
        "VoiceCode": "123456",
        "Channel": "999",
        "Amount": "3",
    }


def test_given_a_template_when_building_a_voice_template_then_the_document_fields() -> None:
    req = ws.build_voice_template(CREDS, "13912345678", "42", template_id=4)
    assert req.path == "/Services/MsgSend.asmx/SendVoiceCodeWithTemplate"
    assert req.form == {
        "userCode": "acme",
        "userPass": "s3cret-pw",
        "DesNo": "13912345678",
        "VoiceCode": "42",
        "Amount": "1",
        "TemplateID": "4",
    }


@pytest.mark.parametrize(
    ("code", "amount", "template"), [("", 1, 1), ("1234567", 1, 1), ("12a", 1, 1), ("12", 0, 1), ("12", 4, 1),
                                     ("12", 1, 0), ("12", 1, 7)]
)  # fmt: skip
def test_given_bad_voice_arguments_when_building_then_value_error(
    code: str, amount: int, template: int
) -> None:
    # The vendor would answer -13/-14/-15: a packing bug caught before sending.
    with pytest.raises(ValueError):
        ws.build_voice_template(CREDS, "13912345678", code, template_id=template, amount=amount)
    if template == 1:
        with pytest.raises(ValueError):
            ws.build_voice_code(CREDS, "13912345678", code, amount=amount)


def test_given_credentials_when_building_balance_then_plain_and_encrypted() -> None:
    plain = ws.build_balance(CREDS)
    assert (plain.path, plain.form) == (
        "/Services/MsgSend.asmx/GetBalance",
        {"userCode": "acme", "userPass": "s3cret-pw"},
    )
    enc = ws.build_balance(Credentials("acme", "123"), encrypted=True)
    assert enc.path == "/Services/MsgSend.asmx/GetBalanceByEncrypt"
    assert set(enc.form) == {"userCode", "submitInfo"}
    assert des_decrypt(enc.form["submitInfo"], "123") == "userPass=123"


def test_given_credentials_when_building_pulls_then_asmx_paths() -> None:
    login = {"userCode": "acme", "userPass": "s3cret-pw"}
    assert (ws.build_pull_reports(CREDS).path, ws.build_pull_reports(CREDS).form) == (
        "/Services/MsgSend.asmx/GetReport2", login)  # fmt: skip
    legacy = ws.build_report_legacy(CREDS)
    assert (legacy.path, legacy.form) == ("/Services/MsgSend.asmx/GetReport", {**login, "batchNumber": ""})
    assert (ws.build_pull_replies(CREDS).path, ws.build_pull_replies(CREDS).form) == (
        "/Services/MsgSend.asmx/GetMo2", login)  # fmt: skip
    mo = ws.build_replies_legacy(CREDS)
    assert (mo.path, mo.form) == ("/Services/MsgSend.asmx/GetMo", login)
    for build, path in (
        (ws.build_pull_reports, "GetReport2ByEncrypt"),
        (ws.build_pull_replies, "GetMo2ByEncrypt"),
    ):
        req = build(Credentials("acme", "123"), encrypted=True)
        assert req.path == f"/Services/MsgSend.asmx/{path}"
        assert des_decrypt(req.form["submitInfo"], "123") == "userPass=123"
        assert "userPass" not in req.form


def all_requests() -> list[Request]:
    return [
        ws.build_send(CREDS, ["13912345678"], TEXT),
        ws.build_send(CREDS, ["13912345678"], TEXT, ext="1"),
        ws.build_send(CREDS, ["13912345678"], TEXT, encrypted=True),
        ws.build_international(CREDS, "85291234567", "hi"),
        ws.build_voice_code(CREDS, "13912345678", "1"),
        ws.build_voice_template(CREDS, "13912345678", "1", template_id=1),
        ws.build_balance(CREDS),
        ws.build_balance(CREDS, encrypted=True),
        ws.build_pull_reports(CREDS),
        ws.build_pull_reports(CREDS, encrypted=True),
        ws.build_report_legacy(CREDS),
        ws.build_pull_replies(CREDS),
        ws.build_pull_replies(CREDS, encrypted=True),
        ws.build_replies_legacy(CREDS),
    ]


@pytest.mark.parametrize("req", all_requests(), ids=lambda r: r.path.rsplit("/", 1)[-1])
def test_given_any_request_then_post_and_password_never_in_its_repr(req: Request) -> None:
    assert req.method == "POST" and req.path.startswith("/Services/MsgSend.as")
    assert "s3cret-pw" not in repr(req) and "s3cret-pw" not in str(req.redacted())


def test_given_a_request_when_posted_as_a_form_then_the_gateway_reads_the_exact_fields() -> None:
    # Given a Chinese text, When httpx encodes the form, Then the gateway decodes the same UTF-8 fields.
    req = ws.build_send(CREDS, ["13912345678"], "退订回T&A=1+2【签名】")
    seen: dict[str, list[str]] = {}

    def gateway(request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        seen.update(parse_qs(request.content.decode("ascii"), keep_blank_values=True))
        return httpx.Response(200, text='<string xmlns="http://tempuri.org/">2314357620085030623</string>')

    with httpx.Client(transport=httpx.MockTransport(gateway), base_url="http://gw.test") as client:
        answer = ws.parse_send(client.post(req.path, data=req.form).text)
    assert {k: v[0] for k, v in seen.items()} == req.form
    assert answer.ok and answer.value == "2314357620085030623"


def test_given_every_builder_then_every_method_goes_to_the_asmx_service() -> None:
    # ASP.NET's web-service endpoint; the document's ".aspx" in its send sections is the same service.
    enc = Credentials("acme", "123")
    requests = [
        ws.build_send(CREDS, ["13912345678"], "您好【签名】"),
        ws.build_send(enc, ["13912345678"], "您好【签名】", encrypted=True),
        ws.build_send(CREDS, ["13912345678"], "您好【签名】", ext="12"),
        ws.build_international(CREDS, "+85291234567", "Hello [ACME]"),
        ws.build_voice_code(CREDS, "13912345678", "1234"),
        ws.build_voice_template(CREDS, "13912345678", "1234", template_id=1),
        ws.build_balance(CREDS),
        ws.build_balance(enc, encrypted=True),
        ws.build_pull_reports(CREDS),
        ws.build_report_legacy(CREDS),
        ws.build_pull_replies(CREDS),
        ws.build_replies_legacy(CREDS),
    ]
    assert {r.path.rsplit("/", 1)[0] for r in requests} == {ws.SERVICE_PATH} == {"/Services/MsgSend.asmx"}
