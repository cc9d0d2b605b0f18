"""Webservice (WebService API v9.9.6) over real HTTP, with plain httpx calls written from the document."""

from __future__ import annotations

import re

import httpx
import pytest

from dispatcher.simulator import RunningSimulator
from dispatcher.vendors.crypto import des_encrypt
from tests.simulator.conftest import SEED_SUBMIT_INFO, SIGNED, accepted, rejected_codes, unwrap

ASPX = "/Services/MsgSend.aspx/"
ASMX = "/Services/MsgSend.asmx/"
LOGIN = {"userCode": "demo", "userPass": "demo"}


def send(client: httpx.Client, desno: str = "13912345678", msg: str = SIGNED, **extra: str) -> str:
    return client.post(
        ASPX + "SendMsg", data={**LOGIN, "DesNo": desno, "Msg": msg, "Channel": "", **extra}
    ).text


def test_given_demo_account_when_sendmsg_then_plain_19_digit_batch_id_and_ledger_entry(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    answer = send(client)
    assert re.fullmatch(r"\d{19}", answer)
    [entry] = accepted(sim)
    assert entry["vendor"] == "webservice" and entry["account"] == "demo"
    assert (entry["mobile"], entry["content"], entry["batch_id"], entry["status"]) == (
        "13912345678",
        SIGNED,
        answer,
        "DELIVRD",
    )


def test_given_get_with_query_string_when_asmx_then_string_wrapper(client: httpx.Client) -> None:
    params = {**LOGIN, "DesNo": "13912345678", "Msg": SIGNED, "Channel": "0"}
    assert re.fullmatch(r"\d{19}", unwrap(client.get(ASMX + "SendMsg", params=params).text))


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"userPass": "wrong"}, "-3"),
        ({"Msg": "没有签名的短信"}, "-5"),
        ({"Msg": "【签名】放在前面不行"}, "-5"),
        ({"DesNo": "13912345678,13912345679"}, "-9"),  # one number per request
        ({"DesNo": "12345"}, "-9"),
        ({"DesNo": "13800000666"}, "-12"),  # blacklisted
    ],
)
def test_given_a_bad_request_when_sendmsg_then_seed_error_code_and_nothing_accepted(
    client: httpx.Client, sim: RunningSimulator, fields: dict[str, str], code: str
) -> None:
    data = {**LOGIN, "DesNo": "13912345678", "Msg": SIGNED, "Channel": "", **fields}
    assert client.post(ASPX + "SendMsg", data=data).text == code
    assert accepted(sim) == []
    assert rejected_codes(sim) == [int(code)]


def test_given_the_seed_submitinfo_when_sendmsgbyencrypt_then_seed_message_accepted(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    answer = client.post(ASPX + "sendMsgByEncrypt", data={"userCode": "seed", "submitInfo": SEED_SUBMIT_INFO})
    assert re.fullmatch(r"\d{19}", answer.text)
    [entry] = accepted(sim)
    assert (entry["mobile"], entry["content"]) == ("18616300000", "你的验证码是:2345【饿了么】")


def test_given_garbage_or_wrong_key_when_encrypted_method_then_minus_23(client: httpx.Client) -> None:
    assert (
        client.post(ASPX + "sendMsgByEncrypt", data={"userCode": "seed", "submitInfo": "XYZ"}).text == "-23"
    )
    foreign = des_encrypt("userPass=123&DesNo=13912345678&Msg=a【b】&Channel=0", "other")
    assert client.post(ASPX + "sendMsgByEncrypt", data={"userCode": "seed", "submitInfo": foreign}).text in (
        "-23",
        "-3",  # one key in ~256 unpads by chance; then the password inside is wrong
    )
    bad = {"userCode": "seed", "submitInfo": "00"}
    assert unwrap(client.post(ASMX + "GetReport2ByEncrypt", data=bad).text) == "-23"


def test_given_ext_method_when_channel_is_not_543296_then_minus_8(client: httpx.Client) -> None:
    fields = {**LOGIN, "DesNo": "13912345678", "Msg": SIGNED, "ExeNo": "12"}
    assert client.post(ASPX + "SendMsgExt_Sub", data={**fields, "Channel": "1"}).text == "-8"
    assert re.fullmatch(
        r"\d{19}", client.post(ASPX + "SendMsgExt_Sub", data={**fields, "Channel": "543296"}).text
    )


@pytest.mark.parametrize(
    ("voice", "amount", "code"), [("12a", "1", "-14"), ("1234567", "1", "-15"), ("1234", "x", "-13")]
)
def test_given_bad_voice_code_when_sendvoicecode_then_its_code(
    client: httpx.Client, voice: str, amount: str, code: str
) -> None:
    fields = {**LOGIN, "DesNo": "13912345678", "VoiceCode": voice, "Channel": "999", "Amount": amount}
    assert client.post(ASPX + "SendVoiceCode", data=fields).text == code


def test_given_voice_code_accepted_when_getreport_then_talk_ring_hangup_fields(client: httpx.Client) -> None:
    fields = {**LOGIN, "DesNo": "13912345678", "VoiceCode": "1234", "Amount": "2", "TemplateID": "3"}
    batch = client.post(ASPX + "SendVoiceCodeWithTemplate", data=fields).text
    report = client.post(ASPX + "GetReport", data={**LOGIN, "batchNumber": ""}).text
    assert re.fullmatch(rf"{batch},13912345678,\d+,\d+,[0-4]\|", report)


def test_given_a_balance_query_when_asked_again_within_5_s_then_minus_16(client: httpx.Client) -> None:
    assert client.post(ASPX + "GetBalance", data=LOGIN).text == "100000000"
    assert client.post(ASPX + "GetBalance", data=LOGIN).text == "-16"
    info = des_encrypt("userPass=123", "123")
    assert unwrap(
        client.post(ASMX + "GetBalanceByEncrypt", data={"userCode": "seed", "submitInfo": info}).text
    ) == ("100000000")


def test_given_sent_messages_when_getreport_then_seed_format_consumed(client: httpx.Client) -> None:
    first, second = send(client), send(client, "13912345679")
    answer = client.post(ASPX + "GetReport", data={**LOGIN, "batchNumber": ""}).text
    assert answer == f"{first},13912345678,DELIVRD|{second},13912345679,DELIVRD|"
    assert client.post(ASPX + "GetReport", data=LOGIN).text == ""  # consumed


def test_given_bad_password_when_getreport_then_empty_string_but_getreport2_minus_3(
    client: httpx.Client,
) -> None:
    send(client)
    assert client.post(ASPX + "GetReport", data={**LOGIN, "userPass": "x"}).text == ""
    assert unwrap(client.post(ASMX + "GetReport2", data={**LOGIN, "userPass": "x"}).text) == "-3"
    # Still there for the right password.
    assert unwrap(client.post(ASMX + "GetReport2", data=LOGIN).text).count("|") == 1


def test_given_a_sent_message_when_getreport2_then_china_time_field(client: httpx.Client) -> None:
    batch = send(client)
    answer = unwrap(client.post(ASMX + "GetReport2", data=LOGIN).text)
    assert re.fullmatch(rf"{batch},13912345678,\d{{4}}/\d\d/\d\d \d\d:\d\d:\d\d,DELIVRD\|", answer)


def test_given_replies_queued_when_getmo_and_getmo2_then_seed_formats(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    for text in ("好的", "TD"):
        reply = {"vendor": "webservice", "account": "demo", "mobile": "13912345678", "text": text}
        assert client.post("/_sim/mo", json=reply).json() == {"ok": True}
    mo = unwrap(client.post(ASMX + "GetMo", data=LOGIN).text)
    assert re.fullmatch(
        r"13912345678\|,\|好的\|,\|[\d/ :]{19}\|;\|13912345678\|,\|TD\|,\|[\d/ :]{19}\|;\|", mo
    )
    assert unwrap(client.post(ASMX + "GetMo", data=LOGIN).text) == ""
    sim.add_reply("webservice", "demo", "13912345678", "1")
    mo2 = unwrap(client.post(ASMX + "GetMo2", data=LOGIN).text)
    assert re.fullmatch(r"13912345678\|,\|1\|,\|[\d/ :]{19}\|,\|106900000001\|;\|", mo2)


def test_given_unknown_method_when_called_then_404(client: httpx.Client) -> None:
    assert client.post(ASPX + "NoSuchMethod", data=LOGIN).status_code == 404


@pytest.mark.parametrize(
    ("desno", "accepted_count"),
    [("85291234567", 1), ("+85291234567", 1), ("８５２９１２３４５６７", 0)],  # full-width: refused, -9
)
def test_given_channel_999_when_sendmsg_then_an_international_number_in_ascii_digits_only(
    client: httpx.Client, sim: RunningSimulator, desno: str, accepted_count: int
) -> None:
    answer = send(client, desno, "Your code is 1234", Channel="999")
    assert (answer == "-9") == (accepted_count == 0)
    assert len(accepted(sim)) == accepted_count
