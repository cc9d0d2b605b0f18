"""entinfo (Entinfo SDK API (2017)) through the client library against the simulator."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from dispatcher.errors import TextEncodingError, UnsupportedMethodError
from dispatcher.simulator import Account, RunningSimulator, run_simulator
from dispatcher.vendors import entinfo as en
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import CHINA_TZ, AnswerKind, ErrorClass, Request
from tests.crosscheck.conftest import EN, SIGNED, accepted, crosscheck_config, exchange, sent

MOBILES = ["13900000001", "13900000002", "13900000003"]
# Texts with the characters a URL-encoded, comma-joined list could mangle.
AWKWARD = ["测试1, 有逗号【签名】", "a+b=c & 100% 空 格【签名】", "第三条%2C不是逗号【签名】"]


def send_ok(transport: Transport, request: Request) -> str:
    answer = exchange(transport, request, en.parse_send)
    assert answer.kind is AnswerKind.OK, answer
    return answer.value


@pytest.mark.parametrize("plain_http", [False, True], ids=["webservice.asmx/mdsmssend", "mdsmssend.ashx"])
def test_given_an_rrid_when_mdsmssend_then_the_rrid_comes_back_and_tags_every_number(
    transport: Transport, sim: RunningSimulator, plain_http: bool
) -> None:
    rrid = "123456789012345678"  # the most the document allows: 18 digits
    assert send_ok(transport, en.build_send(EN, MOBILES, SIGNED, ref=rrid, plain_http=plain_http)) == rrid
    assert [(e["mobile"], e["content"], e["ref"]) for e in accepted(sim, rrid)] == [
        (m, SIGNED, rrid) for m in MOBILES
    ]


def test_given_no_rrid_when_mdsmssend_then_a_generated_id_of_at_most_18_digits(
    transport: Transport, sim: RunningSimulator
) -> None:
    batch = send_ok(transport, en.build_send(EN, MOBILES[:1], SIGNED))
    assert re.fullmatch(r"\d{1,18}", batch)
    assert sent(sim, batch) == [(MOBILES[0], SIGNED)]


def test_given_ext_and_a_schedule_when_mdsmssend_then_accepted(
    transport: Transport, sim: RunningSimulator
) -> None:
    at = datetime.now(CHINA_TZ) + timedelta(hours=1)
    batch = send_ok(transport, en.build_send(EN, MOBILES, SIGNED, ext="123456789", stime=at, ref="42"))
    assert batch == "42" and len(accepted(sim, "42")) == 3


@pytest.mark.parametrize("plain_http", [False, True], ids=["webservice.asmx/mdgxsend", "mdgxsend.ashx"])
def test_given_awkward_texts_when_mdgxsend_then_each_number_gets_its_text_intact(
    transport: Transport, sim: RunningSimulator, plain_http: bool
) -> None:
    messages = list(zip(MOBILES, AWKWARD, strict=True))
    batch = send_ok(transport, en.build_personalised(EN, messages, ref="77", plain_http=plain_http))
    assert batch == "77"
    assert sent(sim, "77") == messages


def test_given_the_same_text_to_the_same_number_again_when_mdsmssend_then_minus_20_duplicate(
    transport: Transport,
) -> None:
    send_ok(transport, en.build_send(EN, MOBILES[:1], SIGNED, ref="1"))
    answer = exchange(transport, en.build_send(EN, MOBILES[:1], SIGNED, ref="2"), en.parse_send)
    assert answer.code == -20 and en.classify(-20).error_class is ErrorClass.DUPLICATE


def test_given_a_text_over_500_double_byte_characters_then_minus_10_as_the_client_predicts(
    transport: Transport,
) -> None:
    text = "长" * 497 + "【签名】"  # 501 characters
    assert en.text_too_long(text)
    answer = exchange(transport, en.build_send(EN, MOBILES[:1], text), en.parse_send)
    assert answer.code == -10 and en.classify(-10).error_class is ErrorClass.BAD_CONTENT
    ok = text[1:]
    assert not en.text_too_long(ok) and send_ok(transport, en.build_send(EN, MOBILES[:1], ok))


def test_given_no_report_method_in_the_seed_then_the_client_refuses_pulls() -> None:
    for build in (en.build_pull_reports, en.build_pull_replies):
        with pytest.raises(UnsupportedMethodError):
            build(EN)


def test_given_the_balance_when_asked_as_the_vendors_client_does_then_the_accounts_balance(
    transport: Transport,
) -> None:
    # Not in the Entinfo SDK API (2017); the simulator reads the vendor's own demo client: `balance(sn, pwd)`
    # with the MD5 pwd of the sends.
    answer = exchange(transport, en.build_balance(EN), en.parse_balance)
    assert answer.ok and answer.value == "100000000"


def test_given_register_and_unregister_when_sent_then_the_gateway_takes_them_with_the_plain_password(
    transport: Transport,
) -> None:
    # Section 4.2 names Register / UnRegister without their fields; the vendor's demo client sends them
    # with the password itself in `pwd` (and the MD5 form everywhere else): so does the module.
    details = dict.fromkeys(("province", "city", "trade", "entname", "linkman", "phone", "fax"), "x")
    details |= dict.fromkeys(("mobile", "email", "address", "postcode", "sign"), "x")
    register = en.build_register(EN, **details)
    assert register.form["pwd"] == EN.password and "***" in repr(register)
    assert exchange(transport, register, en.parse_value).value == "0"
    assert exchange(transport, en.build_unregister(EN), en.parse_value).value == "0"


TRICKY = "满100+送50%，张喆 回T退订【测试】"


@pytest.mark.parametrize("reading", ["plain", "url", "gb2312"])
def test_given_an_accounts_content_encoding_when_mdsmssend_to_a_gateway_reading_it_so_then_the_text_arrives_whole(
    reading: str,
) -> None:
    # The document (URLUTF8编码), its GET examples (as is), the vendor's Java SDK (URL-encoded) and PHP demo
    # (GB2312) disagree: each reading, sent by the module as an account asks, arrives intact at a
    # gateway that reads it so.
    config = crosscheck_config(accounts=(Account("entinfo", EN.user, EN.password, content_encoding=reading),))
    with run_simulator(config) as sim, Transport([sim.base_url]) as transport:
        request = en.build_send(EN, MOBILES[:1], TRICKY, ref="42", content_encoding=reading)
        assert send_ok(transport, request) == "42"
        assert [e["content"] for e in sim.ledger()["accepted"]] == [TRICKY]


def test_given_gb2312_and_a_text_gbk_cannot_carry_when_building_then_refused_before_sending() -> None:
    with pytest.raises(TextEncodingError, match="🎉"):
        en.build_send(EN, MOBILES[:1], "好消息🎉【测试】", content_encoding="gb2312")
