"""Trigger (Trigger API v1.8) over real HTTP, with plain httpx calls written from the document."""

from __future__ import annotations

import re

import httpx
import pytest

from dispatcher.simulator import RunningSimulator
from tests.simulator.conftest import SEED_TRIGGER_SUBMIT_INFO, SIGNED, accepted, unwrap

API = "/winnerrxd/api/trigger/"
LOGIN = {"userCode": "demo", "userPass": "demo"}


def call(client: httpx.Client, command: str, **fields: str) -> str:
    return unwrap(client.post(API + command, data={**LOGIN, **fields}).text)


def test_given_customer_uuid_when_sendmsg_then_reports_carry_it(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    batch = call(client, "SendMsg", DesNo="13912345678", Msg=SIGNED, customerUuid="chunk-1", smsType="101")
    assert re.fullmatch(r"\d{19}", batch)
    assert call(client, "GetReportConnect") == f"{batch},13912345678,DELIVRD,chunk-1|"
    assert accepted(sim)[0]["ref"] == "chunk-1"


def test_given_report2_when_pulled_then_time_before_status_and_uuid_last(client: httpx.Client) -> None:
    batch = call(client, "sendMsgExt", DesNo="13912345678", Msg=SIGNED, ExeNo="0123", customerUuid="u")
    assert re.fullmatch(rf"{batch},13912345678,[\d/ :]{{19}},DELIVRD,u\|", call(client, "GetReport2Connect"))


def test_given_the_seed_2_8_submitinfo_when_sendmsgbyencrypt_then_accepted(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    data = {"userCode": "seed", "submitInfo": SEED_TRIGGER_SUBMIT_INFO}
    assert re.fullmatch(r"\d{19}", unwrap(client.post(API + "sendMsgByEncrypt", data=data).text))
    assert [(e["mobile"], e["content"]) for e in accepted(sim)] == [
        ("18616300000", "你的验证码是:2345【饿了么】")
    ]
    assert (
        unwrap(client.post(API + "sendMsgByEncrypt", data={"userCode": "seed", "submitInfo": "ABCD"}).text)
        == "-23"
    )


def test_given_50_numbers_when_sendbatchmsg_then_accepted_and_51_minus_19(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    fifty = ",".join(f"139{i:08d}" for i in range(50))
    assert re.fullmatch(r"\d{19}", call(client, "SendBatchMsg", DesNo=fifty, Msg=SIGNED, smsType="101"))
    assert call(client, "SendBatchMsg", DesNo=fifty + ",13700000000", Msg=SIGNED) == "-19"
    assert len(accepted(sim)) == 50


def test_given_default_separators_when_sendindividualmsg_then_each_text(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    # Trigger's default: "|~|" between number and text, "|-|" between messages.
    msg = "13912345678|~|张三你好【测试】|-|13912345679|~|李四你好【测试】"
    assert re.fullmatch(r"\d{19}", call(client, "SendIndividualMsg", Msg=msg, customerUuid="c9"))
    assert [(e["mobile"], e["content"], e["ref"]) for e in accepted(sim)] == [
        ("13912345678", "张三你好【测试】", "c9"),
        ("13912345679", "李四你好【测试】", "c9"),
    ]


def test_given_an_account_with_its_own_separators_when_sendindividualmsg_then_they_apply(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    bang = {"userCode": "bang", "userPass": "pw"}
    msg = "13912345678|!|张三你好【测试】|^|13912345679|!|李四你好【测试】"
    assert re.fullmatch(
        r"\d{19}", unwrap(client.post(API + "SendIndividualMsg", data={**bang, "Msg": msg}).text)
    )
    assert len(accepted(sim)) == 2
    default_packed = "13912345678|~|张三你好【测试】"
    assert unwrap(client.post(API + "SendIndividualMsg", data={**bang, "Msg": default_packed}).text) == "-18"


def test_given_51_personalised_messages_then_minus_19(client: httpx.Client) -> None:
    msg = "|-|".join(f"139{i:08d}|~|你好【测试】" for i in range(51))
    assert call(client, "SendIndividualMsg", Msg=msg) == "-19"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"userPass": "bad"}, "-3"),
        ({"Msg": "无签名"}, "-5"),
        ({"DesNo": "13912345678,13912345679"}, "-9"),  # SendMsg takes one number
        ({"DesNo": "1391234"}, "-9"),
        ({"DesNo": "13800000666"}, "-47"),
        ({"Msg": "六合彩开奖【测试】"}, "-54"),
        ({"smsType": "abc"}, "-41"),
        ({"customerUuid": "x" * 61}, "-27"),
    ],
)
def test_given_a_bad_request_when_sendmsg_then_documented_code(
    client: httpx.Client, sim: RunningSimulator, fields: dict[str, str], code: str
) -> None:
    data = {"DesNo": "13912345678", "Msg": SIGNED, **fields}
    assert call(client, "SendMsg", **data) == code
    assert accepted(sim) == []


def test_given_bad_ext_number_when_sendmsgext_then_minus_44(client: httpx.Client) -> None:
    assert call(client, "sendMsgExt", DesNo="13912345678", Msg=SIGNED, ExeNo="12345678901234567") == "-44"


def test_given_balance_asked_twice_within_5_s_then_minus_16(client: httpx.Client) -> None:
    assert call(client, "GetBalanceConnect") == "100000000"
    assert call(client, "GetBalanceConnect") == "-16"


def test_given_a_reply_to_a_sent_uuid_when_getmo_then_uuid_last(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    call(client, "SendMsg", DesNo="13912345678", Msg=SIGNED, customerUuid="yj001")
    sim.add_reply("trigger", "demo", "13912345678", "好")
    assert re.fullmatch(r"13912345678\|,\|好\|,\|[\d/ :]{19}\|,\|yj001\|;\|", call(client, "GetMoConnect"))
    sim.add_reply("trigger", "demo", "13912345678", "再见")
    assert re.fullmatch(
        r"13912345678\|,\|再见\|,\|[\d/ :]{19}\|,\|106900000001\|,\|yj001\|;\|", call(client, "GetMo2Connect")
    )
