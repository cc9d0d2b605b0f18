"""yunxin (云信 API v8.3) through the client library against the simulator."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from dispatcher.errors import VendorError
from dispatcher.simulator import RunningSimulator
from dispatcher.text import segments
from dispatcher.vendors import yunxin as yx
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import AnswerKind, Credentials, ErrorClass, Request
from tests.crosscheck.conftest import (
    ACCOUNT_KEYWORD,
    SIGNED,
    YX,
    YX_KW,
    accepted,
    china_second,
    exchange,
    sent,
)

MOBILES = ["13900000001", "13900000002", "13900000003"]


def send_ok(transport: Transport, sim: RunningSimulator, request: Request) -> str:
    answer = exchange(transport, request, yx.parse_send)
    assert answer.kind is AnswerKind.OK, answer
    return answer.value


@pytest.mark.parametrize(
    "options",
    [{}, {"encrypted": True}, {"ext": "5"}, {"ext": ""}],
    ids=["SendMsg", "sendMsgByEncrypt", "sendMesExt", "sendMesExt-empty-ExeNo"],
)
def test_given_same_text_to_three_when_sent_then_one_batch_with_each_number(
    transport: Transport, sim: RunningSimulator, options: dict[str, object]
) -> None:
    batch = send_ok(transport, sim, yx.build_send(YX, MOBILES, SIGNED, **options))  # type: ignore[arg-type]
    assert sent(sim, batch) == [(m, SIGNED) for m in MOBILES]


def test_given_500_numbers_when_sendmsg_then_all_accepted(
    transport: Transport, sim: RunningSimulator
) -> None:
    mobiles = [f"139{i:08d}" for i in range(500)]
    batch = send_ok(transport, sim, yx.build_send(YX, mobiles, SIGNED))
    assert [m for m, _ in sent(sim, batch)] == mobiles


def test_given_personalised_texts_when_individualsm_then_each_number_its_own_text(
    transport: Transport, sim: RunningSimulator
) -> None:
    messages = [(m, f"王某某{i}，明天记得要开会, 谢谢【123】") for i, m in enumerate(MOBILES)]
    batch = send_ok(transport, sim, yx.build_personalised(YX, messages))
    assert sent(sim, batch) == messages


def test_given_1000_personalised_messages_when_individualsm_then_all_accepted(
    transport: Transport, sim: RunningSimulator
) -> None:
    messages = [(f"139{i:08d}", f"第{i}条【测试】") for i in range(1000)]
    assert sent(sim, send_ok(transport, sim, yx.build_personalised(YX, messages))) == messages


def test_given_the_channel_when_getkeywords_then_the_simulators_words(
    transport: Transport, sim: RunningSimulator
) -> None:
    words = exchange(transport, yx.build_keywords(YX_KW), yx.parse_keywords)
    assert words == [*sim.config.keywords, ACCOUNT_KEYWORD]


def test_given_a_bad_password_when_getkeywords_then_vendor_error_not_an_empty_list(
    transport: Transport,
) -> None:
    with pytest.raises(VendorError, match="-3"):
        exchange(transport, yx.build_keywords(Credentials("demo", "wrong", "67")), yx.parse_keywords)


@pytest.mark.parametrize("encrypted", [False, True])
def test_given_sends_when_balance_asked_then_billed_as_the_client_counts(
    transport: Transport, sim: RunningSimulator, encrypted: bool
) -> None:
    texts = [SIGNED, "长" * 71 + "【测试】"]
    for text in texts:
        send_ok(transport, sim, yx.build_send(YX, MOBILES[:2], text))
    balance = exchange(transport, yx.build_balance(YX, encrypted=encrypted), yx.parse_balance)
    assert balance.kind is AnswerKind.OK
    assert int(balance.value) == sim.config.balance - 2 * sum(segments(t) for t in texts)


@pytest.mark.parametrize("encrypted", [False, True])
def test_given_a_balance_query_when_asked_again_within_10_s_then_minus_23_rate_limited(
    transport: Transport, encrypted: bool
) -> None:
    assert exchange(transport, yx.build_balance(YX, encrypted=encrypted), yx.parse_balance).ok
    again = exchange(transport, yx.build_balance(YX, encrypted=encrypted), yx.parse_balance)
    assert again.code == -23
    assert yx.classify(-23).error_class is ErrorClass.RATE_LIMITED


@pytest.mark.parametrize(
    ("build", "timed"),
    [
        (yx.build_report_legacy, False),
        (yx.build_pull_reports, True),
        (lambda creds: yx.build_pull_reports(creds, encrypted=True), True),
    ],
    ids=["GetReport", "GetReport2", "GetReport2ByEncrypt"],
)
def test_given_a_batch_and_a_personalised_send_when_reports_pulled_then_they_match_the_ledger(
    transport: Transport, sim: RunningSimulator, build: Callable[[Credentials], Request], timed: bool
) -> None:
    send_ok(transport, sim, yx.build_send(YX, MOBILES, SIGNED))
    send_ok(transport, sim, yx.build_personalised(YX, [(m, "个性" + SIGNED) for m in MOBILES[:2]]))
    reports = exchange(transport, build(YX), yx.parse_reports)
    ledger = accepted(sim)
    assert sorted((r.batch_id, r.mobile, r.status) for r in reports) == sorted(
        (e["batch_id"], e["mobile"], e["status"]) for e in ledger
    )
    assert len({r.status for r in reports}) > 1
    at = {(e["batch_id"], e["mobile"]): china_second(e["at"]) for e in ledger}
    assert [r.at for r in reports] == [at[(r.batch_id, r.mobile)] if timed else None for r in reports]
    assert exchange(transport, build(YX), yx.parse_reports) == []


@pytest.mark.parametrize(
    ("build", "channel"),
    [
        (yx.build_replies_legacy, ""),
        (yx.build_pull_replies, "106900000777"),
        # yunxin documents GetMo2ByEncrypt inside GetMo2's section: with the channel number.
        (lambda creds: yx.build_pull_replies(creds, encrypted=True), "106900000777"),
    ],
    ids=["GetMo", "GetMo2", "GetMo2ByEncrypt"],
)
def test_given_queued_replies_when_pulled_then_mobile_text_time_come_back(
    transport: Transport, sim: RunningSimulator, build: Callable[[Credentials], Request], channel: str
) -> None:
    before = int(time.time())
    sim.add_reply("yunxin", "kw", "13912345678", "收到,谢谢")
    sim.add_reply("yunxin", "kw", "13912345679", "TD")
    after = time.time()
    replies = exchange(transport, build(YX_KW), yx.parse_replies)
    assert [(r.mobile, r.text, r.channel) for r in replies] == [
        ("13912345678", "收到,谢谢", channel),
        ("13912345679", "TD", channel),
    ]
    assert all(r.at is not None and before <= r.at.timestamp() <= after for r in replies)
    assert exchange(transport, build(YX_KW), yx.parse_replies) == []
