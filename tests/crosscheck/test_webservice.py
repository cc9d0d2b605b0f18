"""webservice (WebService API v9.9.6) through the client library against the simulator."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from dispatcher.simulator import RunningSimulator
from dispatcher.text import segments
from dispatcher.vendors import webservice as ws
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import AnswerKind, Credentials, ErrorClass, Request
from tests.crosscheck.conftest import SIGNED, WS, accepted, china_second, exchange, sent


def send_ok(transport: Transport, sim: RunningSimulator, request: Request, mobile: str, text: str) -> str:
    answer = exchange(transport, request, ws.parse_send)
    assert answer.kind is AnswerKind.OK, answer
    assert sent(sim, answer.value) == [(mobile, text)]
    return answer.value


def test_given_one_number_when_sendmsg_then_batch_id_in_ledger(
    transport: Transport, sim: RunningSimulator
) -> None:
    send_ok(transport, sim, ws.build_send(WS, ["13912345678"], SIGNED), "13912345678", SIGNED)


def test_given_encrypted_when_sendmsgbyencrypt_then_simulator_decrypts_the_same_text(
    transport: Transport, sim: RunningSimulator
) -> None:
    text = "您的验证码是:2345，请勿泄露【饿了么】"
    send_ok(transport, sim, ws.build_send(WS, ["18616300000"], text, encrypted=True), "18616300000", text)


def test_given_extension_when_sendmsgext_sub_then_accepted(
    transport: Transport, sim: RunningSimulator
) -> None:
    send_ok(transport, sim, ws.build_send(WS, ["13912345678"], SIGNED, ext="0123"), "13912345678", SIGNED)


def test_given_english_text_to_a_foreign_number_when_international_then_accepted(
    transport: Transport, sim: RunningSimulator
) -> None:
    # Disagreement resolved in the simulator: Channel 999 takes an English text (no 【签名】) to a
    # foreign number (WebService API v9.9.6, 国际短信发送: "Msg 短信内容(英文 140 字符)", "Channel 999").
    text = "Your ACME code is 1234. " + "x" * 116  # 140 characters: the most the method takes
    request = ws.build_international(WS, "85291234567", text)
    send_ok(transport, sim, request, "85291234567", text)


@pytest.mark.parametrize("amount", [1, 3])
def test_given_a_code_when_sendvoicecode_then_voice_report_parsed(
    transport: Transport, sim: RunningSimulator, amount: int
) -> None:
    batch = send_ok(
        transport,
        sim,
        ws.build_voice_code(WS, "13912345678", "123456", amount=amount),
        "13912345678",
        "123456",
    )
    [report] = exchange(transport, ws.build_pull_reports(WS), ws.parse_reports)
    [row] = accepted(sim, batch)
    assert (report.batch_id, report.mobile) == (batch, "13912345678")
    assert report.delivered == (row["status"] == "DELIVRD")
    assert set(report.extra) == {"talk_s", "ring_s", "hangup_type"}
    assert report.extra["hangup_type"] in ws.VOICE_HANGUP_TYPES


@pytest.mark.parametrize("template_id", [1, 6])
def test_given_a_template_when_sendvoicecodewithtemplate_then_accepted(
    transport: Transport, sim: RunningSimulator, template_id: int
) -> None:
    request = ws.build_voice_template(WS, "13912345678", "0042", template_id=template_id, amount=2)
    send_ok(transport, sim, request, "13912345678", "0042")


@pytest.mark.parametrize("encrypted", [False, True])
def test_given_sends_when_balance_asked_then_billed_segments_as_the_client_counts(
    transport: Transport, sim: RunningSimulator, encrypted: bool
) -> None:
    # 1 + 2 + 1 segments: a short text, a 77-character one, and a 100-character pure ASCII one (≤140 = 1:
    # Entinfo SDK API (2017) 3.1, used for every gateway; the simulator billed it as 2 before the crosscheck).
    texts = [SIGNED, "长" * 71 + "【测试】", "a" * 94 + "[ACME]"]
    for text in texts[:2]:
        send_ok(transport, sim, ws.build_send(WS, ["13912345678"], text), "13912345678", text)
    send_ok(transport, sim, ws.build_international(WS, "85291234567", texts[2]), "85291234567", texts[2])
    balance = exchange(transport, ws.build_balance(WS, encrypted=encrypted), ws.parse_balance)
    assert balance.kind is AnswerKind.OK
    assert int(balance.value) == sim.config.balance - sum(segments(t) for t in texts)


@pytest.mark.parametrize("encrypted", [False, True])
def test_given_a_balance_query_when_asked_again_then_minus_16_rate_limited(
    transport: Transport, encrypted: bool
) -> None:
    assert exchange(transport, ws.build_balance(WS, encrypted=encrypted), ws.parse_balance).ok
    again = exchange(transport, ws.build_balance(WS, encrypted=encrypted), ws.parse_balance)
    assert again.code == -16
    assert ws.classify(-16).error_class is ErrorClass.RATE_LIMITED


def _send_three(transport: Transport, sim: RunningSimulator) -> list[str]:
    mobiles = ["13900000001", "13900000002", "13900000003"]
    return [send_ok(transport, sim, ws.build_send(WS, [m], SIGNED), m, SIGNED) for m in mobiles]


@pytest.mark.parametrize(
    ("build", "timed"),
    [
        (ws.build_report_legacy, False),  # GetReport: batch,mobile,status|
        (ws.build_pull_reports, True),  # GetReport2: batch,mobile,time,status|
        (lambda creds: ws.build_pull_reports(creds, encrypted=True), True),  # GetReport2ByEncrypt
    ],
    ids=["GetReport", "GetReport2", "GetReport2ByEncrypt"],
)
def test_given_sends_when_reports_pulled_then_they_match_the_ledger_and_are_consumed(
    transport: Transport, sim: RunningSimulator, build: Callable[[Credentials], Request], timed: bool
) -> None:
    batches = _send_three(transport, sim)
    reports = exchange(transport, build(WS), ws.parse_reports)
    ledger = {r["batch_id"]: r for r in accepted(sim)}
    assert sorted((r.batch_id, r.mobile, r.status) for r in reports) == sorted(
        (b, ledger[b]["mobile"], ledger[b]["status"]) for b in batches
    )
    assert len({r.status for r in reports}) > 1  # seed 1, ratio 0.5: delivered and failed both
    for report in reports:
        assert report.at == (china_second(ledger[report.batch_id]["at"]) if timed else None)
    assert exchange(transport, build(WS), ws.parse_reports) == []  # a pull consumes them


@pytest.mark.parametrize(
    ("build", "channel"),
    [
        (ws.build_replies_legacy, ""),  # GetMo: phone|,|text|,|time|;|
        (ws.build_pull_replies, "106900000001"),  # GetMo2 adds the channel (show) number
        # GetMo2ByEncrypt is documented inside GetMo's section, with GetMo's three fields.
        (lambda creds: ws.build_pull_replies(creds, encrypted=True), ""),
    ],
    ids=["GetMo", "GetMo2", "GetMo2ByEncrypt"],
)
def test_given_queued_replies_when_pulled_then_mobile_text_time_come_back(
    transport: Transport, sim: RunningSimulator, build: Callable[[Credentials], Request], channel: str
) -> None:
    before = int(time.time())
    sim.add_reply("webservice", "demo", "13912345678", "TD 退订, 谢谢")
    sim.add_reply("webservice", "demo", "13912345679", "好的")
    after = time.time()
    replies = exchange(transport, build(WS), ws.parse_replies)
    assert [(r.mobile, r.text, r.channel) for r in replies] == [
        ("13912345678", "TD 退订, 谢谢", channel),
        ("13912345679", "好的", channel),
    ]
    for reply in replies:
        assert reply.at is not None and before <= reply.at.timestamp() <= after
    assert exchange(transport, build(WS), ws.parse_replies) == []


def test_given_a_bad_password_when_getreport_then_empty_like_nothing_to_fetch(transport: Transport) -> None:
    # WebService API v9.9.6 GetReport: "没有状态,用户名，密码错误时返回空字符串" — the client cannot tell them apart.
    body = transport.send(ws.build_report_legacy(Credentials("demo", "wrong"))).text
    assert ws.parse_reports(body) == [] and ws.pull_error(body) is None
    body = transport.send(ws.build_pull_reports(Credentials("demo", "wrong"))).text
    info = ws.pull_error(body)
    assert info is not None and (info.code, info.error_class) == (-3, ErrorClass.ACCOUNT)
