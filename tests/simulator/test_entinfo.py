"""Entinfo (Entinfo SDK API (2017)) over real HTTP, with plain httpx calls written from the document."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from dispatcher.simulator import RunningSimulator
from dispatcher.vendors.crypto import entinfo_password
from tests.simulator.conftest import SIGNED, accepted, unwrap

SN = "SDK-DEMO-010-00001"
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
