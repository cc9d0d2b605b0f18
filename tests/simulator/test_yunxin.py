"""Yunxin (云信 API v8.3) over real HTTP, with plain httpx calls written from the document."""

from __future__ import annotations

import re

import httpx
import pytest

from dispatcher.simulator import RunningSimulator, run_simulator
from tests.simulator.conftest import (
    SEED_SUBMIT_INFO,
    SIGNED,
    accepted,
    base_config,
    rejected_codes,
    unwrap,
)

ASMX = "/api/MsgSend.asmx/"
INDIVIDUAL = "/api/IndividualSm.aspx"
LOGIN = {"userCode": "demo", "userPass": "demo"}


def numbers(count: int) -> str:
    return ",".join(f"139{i:08d}" for i in range(count))


def send(client: httpx.Client, desno: str, msg: str = SIGNED, **extra: str) -> str:
    data = {**LOGIN, "DesNo": desno, "Msg": msg, "Channel": "37", **extra}
    return unwrap(client.post(ASMX + "SendMsg", data=data).text)


def test_given_500_numbers_when_sendmsg_then_one_batch_id_for_all(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    batch = send(client, numbers(500))
    assert re.fullmatch(r"\d{19}", batch)
    entries = accepted(sim)
    assert len(entries) == 500 and {e["batch_id"] for e in entries} == {batch}


@pytest.mark.parametrize(
    ("desno", "msg", "code"),
    [
        (numbers(501), SIGNED, "-10"),  # above the method's 500
        (numbers(1001), SIGNED, "-9"),  # above 1000 at all
        ("", SIGNED, "-11"),
        ("1391234567", SIGNED, "-16"),  # format
        ("12345456765", SIGNED, "-17"),  # the document's own example of an invalid number
        ("13800000666", SIGNED, "-15"),  # system blacklist
        ("13912345678", "【测试】签名不在最后", "-5"),
        ("13912345678", "逢赌必赢 赌博【测试】", "-6:赌博"),
    ],
)
def test_given_a_bad_request_when_sendmsg_then_documented_code(
    client: httpx.Client, sim: RunningSimulator, desno: str, msg: str, code: str
) -> None:
    assert send(client, desno, msg) == code
    assert accepted(sim) == []
    assert rejected_codes(sim) == [int(code.split(":")[0])]


def test_given_bad_password_when_any_method_then_minus_3(client: httpx.Client) -> None:
    for method in ("SendMsg", "GetReport", "GetMo", "GetBalance", "GetKeyWords"):
        data = {**LOGIN, "userPass": "nope", "DesNo": "13912345678", "Msg": SIGNED, "Channel": "37"}
        assert unwrap(client.post(ASMX + method, data=data).text) == "-3"


def test_given_the_seed_submitinfo_when_sendmsgbyencrypt_then_accepted(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    answer = unwrap(
        client.post(ASMX + "sendMsgByEncrypt", data={"userCode": "seed", "submitInfo": SEED_SUBMIT_INFO}).text
    )
    assert re.fullmatch(r"\d{19}", answer)
    assert [(e["mobile"], e["content"]) for e in accepted(sim)] == [
        ("18616300000", "你的验证码是:2345【饿了么】")
    ]
    assert (
        unwrap(client.post(ASMX + "GetReport2ByEncrypt", data={"userCode": "seed", "submitInfo": "ZZ"}).text)
        == "-22"
    )


def test_given_a_balance_query_when_asked_again_within_10_s_then_minus_23(client: httpx.Client) -> None:
    assert unwrap(client.post(ASMX + "GetBalance", data=LOGIN).text) == "100000000"
    assert unwrap(client.post(ASMX + "GetBalance", data=LOGIN).text) == "-23"


def test_given_balance_of_3_when_sending_4_then_minus_7_and_balance_kept(client: httpx.Client) -> None:
    poor = {"userCode": "poor", "userPass": "pw", "Channel": "37", "Msg": SIGNED}
    assert unwrap(client.post(ASMX + "SendMsg", data={**poor, "DesNo": numbers(4)}).text) == "-7"
    long_text = "长" * 71 + "【测试】"  # 77 characters: ceil(77/67) = 2 segments
    assert re.fullmatch(
        r"\d{19}",
        unwrap(client.post(ASMX + "SendMsg", data={**poor, "DesNo": numbers(1), "Msg": long_text}).text),
    )
    assert unwrap(client.post(ASMX + "GetBalance", data={"userCode": "poor", "userPass": "pw"}).text) == "1"


def test_given_keywords_when_getkeywords_then_pipe_list(client: httpx.Client) -> None:
    assert (
        unwrap(client.post(ASMX + "GetKeyWords", data={**LOGIN, "Channel": "37"}).text)
        == "|代开发票|六合彩|赌博"
    )


def test_given_personalised_msg_when_individualsm_then_each_text_accepted(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    msg = "13800000000|!|王某某，明天记得要开会【123】|^|13900000000|!|张某某，明天记得要开会【123】"
    answer = client.post(
        INDIVIDUAL, data={"account": "demo", "pwd": "demo", "channel": "37", "msg": msg}
    ).text
    assert re.fullmatch(r"\d{19}", answer)  # plain, not wrapped
    assert [(e["mobile"], e["content"]) for e in accepted(sim)] == [
        ("13800000000", "王某某，明天记得要开会【123】"),
        ("13900000000", "张某某，明天记得要开会【123】"),
    ]


def test_given_1001_personalised_messages_when_individualsm_then_minus_9(client: httpx.Client) -> None:
    msg = "|^|".join(f"139{i:08d}|!|你好【测试】" for i in range(1001))
    assert (
        client.post(INDIVIDUAL, data={"account": "demo", "pwd": "demo", "channel": "37", "msg": msg}).text
        == "-9"
    )
    assert client.post(INDIVIDUAL, data={"account": "demo", "pwd": "bad", "msg": "x"}).text == "-3"


def test_given_reports_and_replies_when_pulled_then_seed_formats(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    batch = send(client, "13912345678,13912345679")
    assert unwrap(client.post(ASMX + "GetReport", data=LOGIN).text) == (
        f"{batch},13912345678,DELIVRD|{batch},13912345679,DELIVRD|"
    )
    sim.add_reply("yunxin", "demo", "13912345678", "收到")
    assert re.fullmatch(
        r"13912345678\|,\|收到\|,\|[\d/ :]{19}\|,\|106900000001\|;\|",
        unwrap(client.post(ASMX + "GetMo2", data=LOGIN).text),
    )


@pytest.mark.parametrize("msg", ["尊敬的ｖｉｐ客户，会员日8折【测试】", "尊敬的Vip客户，会员日8折【测试】"])
def test_given_a_keyword_written_full_width_or_in_another_case_then_the_gateway_still_finds_it(
    msg: str,
) -> None:
    # A word filter is there to stop evasions: full-width forms and letter case do not get past it.
    with run_simulator(base_config(keywords=("VIP",))) as sim, httpx.Client(base_url=sim.base_url) as client:
        assert send(client, "13912345678", msg) == "-6:VIP"
        assert accepted(sim) == []
