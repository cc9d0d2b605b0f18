"""Entinfo (Entinfo SDK API (2017)) over real HTTP, with plain httpx calls written from the document."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from urllib.parse import quote, urlencode

import httpx
import pytest

from dispatcher.simulator import Account, RunningSimulator, SimulatorConfig, run_simulator
from dispatcher.vendors.crypto import entinfo_password
from tests.simulator.conftest import SIGNED, accepted, unwrap

SN = "SDK-DEMO-010-00001"
OTHER_SN = "SDK-DEMO-010-00002"
LOGIN = {"sn": SN, "pwd": entinfo_password(SN, "demo")}


def smssend(client: httpx.Client, **fields: str) -> str:
    data = {
        **LOGIN,
        "mobile": "13912345678",
        "content": SIGNED,
        "ext": "",
        "stime": "",
        "rrid": "",
        "msgfmt": "",
    }
    return client.post("/mdsmssend.ashx", data={**data, **fields}).text


def test_given_rrid_when_mdsmssend_then_rrid_returned_and_kept(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    assert smssend(client, mobile="13912345678,13912345679", rrid="202401010001") == "202401010001"
    entries = accepted(sim)
    assert [(e["mobile"], e["batch_id"], e["ref"]) for e in entries] == [
        ("13912345678", "202401010001", "202401010001"),
        ("13912345679", "202401010001", "202401010001"),
    ]


def test_given_no_rrid_when_webservice_asmx_then_generated_18_digits_wrapped(client: httpx.Client) -> None:
    data = {**LOGIN, "mobile": "13912345678", "content": SIGNED}
    assert re.fullmatch(r"\d{18}", unwrap(client.post("/webservice.asmx/mdsmssend", data=data).text))


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"pwd": entinfo_password(SN, "wrong")}, "-2"),
        ({"pwd": entinfo_password(SN, "demo").lower()}, "-2"),  # 32 UPPER-case hex characters
        ({"sn": ""}, "-601"),
        ({"sn": "not a serial"}, "-602"),
        ({"pwd": ""}, "-603"),
        ({"mobile": ""}, "-604"),
        ({"content": ""}, "-605"),
        ({"ext": "1234567890"}, "-606"),
        ({"ext": "12a"}, "-607"),
        ({"stime": "tomorrow"}, "-608"),
        ({"rrid": "1" * 19}, "-609"),
        ({"rrid": "12ab"}, "-610"),
        ({"content": "没有签名"}, "-5"),
        ({"mobile": "12345"}, "-5"),
        ({"content": "长" * 501 + "【测试】"}, "-10"),
        ({"content": "长" * 493 + "🎉🎉【测试】"}, "-10"),  # 499 code points, 501 UTF-16 characters
    ],
)
def test_given_a_bad_request_when_mdsmssend_then_documented_code(
    client: httpx.Client, sim: RunningSimulator, fields: dict[str, str], code: str
) -> None:
    assert smssend(client, **fields) == code
    assert accepted(sim) == []


def test_given_a_scheduled_time_when_mdsmssend_then_accepted(client: httpx.Client) -> None:
    assert smssend(client, stime="2030-12-29 16:27:03", rrid="7") == "7"


def test_given_same_mobile_and_content_again_then_minus_20(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    assert smssend(client, rrid="1") == "1"
    assert smssend(client, rrid="2") == "-20"
    assert len(accepted(sim)) == 1


def test_given_aligned_lists_when_mdgxsend_then_each_content_decoded(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    texts = ["张三，您好, 欢迎【测试】", "李四 100% 满意【测试】"]
    data = {
        **LOGIN,
        "mobile": "13912345678,13912345679",
        "content": ",".join(quote(t) for t in texts),
        "rrid": "55",
    }
    assert client.post("/mdgxsend.ashx", data=data).text == "55"
    assert [(e["mobile"], e["content"]) for e in accepted(sim)] == list(
        zip(["13912345678", "13912345679"], texts, strict=True)
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"content": quote("一【测试】")}, "-623"),  # two numbers, one content
        ({"ext": "1,2,3"}, "-624"),
        ({"stime": "2030-01-01 00:00:00,2030-01-01 00:00:00,2030-01-01 00:00:00"}, "-625"),
        ({"rrid": "1,2,3"}, "-626"),
        ({"content": "%FF%FE,%FF"}, "-611"),  # not UTF-8
    ],
)
def test_given_mismatched_lists_when_mdgxsend_then_documented_code(
    client: httpx.Client, fields: dict[str, str], code: str
) -> None:
    contents = ",".join(quote(t) for t in ("一【测试】", "二【测试】"))
    data = {**LOGIN, "mobile": "13912345678,13912345679", "content": contents, **fields}
    assert unwrap(client.post("/webservice.asmx/mdgxsend", data=data).text) == code


def test_given_entinfo_when_a_report_method_is_called_then_404(client: httpx.Client) -> None:
    assert client.post("/webservice.asmx/GetReport", data=LOGIN).status_code == 404


def test_given_a_leading_signature_when_mdsmssend_then_accepted(
    client: httpx.Client, sim: RunningSimulator
) -> None:
    # The document does not say where the signature goes; the vendor's clients put 【品牌】 first.
    assert smssend(client, content="【测试】您的验证码是1234", rrid="8") == "8"
    assert smssend(client, content="您的【测试】验证码是1234", rrid="9") == "-5"
    assert [e["content"] for e in accepted(sim)] == ["【测试】您的验证码是1234"]


def test_given_an_account_with_max_in_flight_1_when_a_second_send_comes_before_the_first_is_answered_then_minus_18() -> (
    None
):
    # The vendor's demos: -18 "上次提交没有等待返回不能继续提交" (no concurrent submissions by default).
    config = replace(
        SimulatorConfig(latency_ms=400, seed=1),
        accounts=(Account("entinfo", SN, "demo", max_in_flight=1), Account("entinfo", OTHER_SN, "demo")),
    )
    with run_simulator(config) as sim, ThreadPoolExecutor(4) as pool:

        def send(sn: str, mobile: str) -> str:
            data = {"sn": sn, "pwd": entinfo_password(sn, "demo"), "mobile": mobile, "content": SIGNED}
            return httpx.post(sim.base_url + "/mdsmssend.ashx", data=data, timeout=10).text

        first = pool.submit(send, SN, "13912345678")
        time.sleep(0.15)
        second = pool.submit(send, SN, "13912345679")  # while the first is unanswered
        other = [pool.submit(send, OTHER_SN, f"1391234568{i}") for i in range(2)]  # no limit there
        assert second.result() == "-18"
        assert first.result().isdigit() and all(f.result().isdigit() for f in other)
        assert send(SN, "13912345679").isdigit()  # answered: the next one is taken
        assert [e["mobile"] for e in sim.ledger()["accepted"] if e["account"] == SN] == [
            "13912345678",
            "13912345679",
        ]


def test_given_balance_register_and_unregister_when_called_as_the_vendors_client_does_then_answered(
    client: httpx.Client,
) -> None:
    # balance: the MD5 pwd, as for sends. Register / UnRegister: the vendor's demo client sends the
    # password itself.
    assert unwrap(client.post("/webservice.asmx/balance", data=LOGIN).text) == "100000000"
    wrong = {"sn": SN, "pwd": entinfo_password(SN, "nope")}
    assert unwrap(client.post("/webservice.asmx/balance", data=wrong).text) == "-2"
    plain = {"sn": SN, "pwd": "demo"}
    details = dict.fromkeys(["province", "city", "trade", "entname", "linkman", "phone", "mobile"], "x")
    assert unwrap(client.post("/webservice.asmx/Register", data=plain | details).text) == "0"
    assert unwrap(client.post("/webservice.asmx/UnRegister", data=plain).text) == "0"
    assert unwrap(client.post("/webservice.asmx/UnRegister", data=LOGIN).text) == "-2"  # MD5 form: refused


TRICKY = "满100+送50%，张喆【测试】"


@pytest.mark.parametrize(
    ("reading", "content", "arrived"),
    [
        ("plain", {"content": TRICKY}, TRICKY),  # the form value as is
        ("url", {"content": TRICKY}, "满100 送50%，张喆【测试】"),  # decoded again: "+" is a space
        ("url", {"content": quote(TRICKY, safe="")}, TRICKY),  # the Java SDK's URL-encoded text
        ("gb2312", {"content": TRICKY.encode("gbk")}, TRICKY),  # the PHP demo's GB2312 bytes
        ("gb2312", {"content": TRICKY}, None),  # UTF-8 bytes read as GBK: garbled
    ],
)
def test_given_each_content_reading_when_mdsmssend_then_the_text_arrives_as_that_gateway_reads_it(
    reading: str, content: dict[str, str | bytes], arrived: str | None
) -> None:
    config = replace(
        SimulatorConfig(seed=1), accounts=(Account("entinfo", SN, "demo", content_encoding=reading),)
    )
    with run_simulator(config) as sim:
        body = urlencode({**LOGIN, "mobile": "13912345678", **content, "rrid": "3"})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = httpx.post(sim.base_url + "/mdsmssend.ashx", content=body, headers=headers).text
        texts = [e["content"] for e in sim.ledger()["accepted"]]
    if arrived is None:
        assert texts != [TRICKY]
    else:
        assert (answer, texts) == ("3", [arrived])
