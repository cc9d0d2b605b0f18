"""trigger (Trigger API v1.8) through the client library against the simulator."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from dispatcher.chunker import chunk_ref
from dispatcher.errors import UnsupportedMethodError
from dispatcher.simulator import RunningSimulator
from dispatcher.text import segments
from dispatcher.vendors import trigger as tg
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import AnswerKind, Credentials, ErrorClass, Request, Separators
from tests.crosscheck.conftest import SIGNED, TG, TG_BANG, accepted, china_second, exchange, sent

MOBILES = ["13900000001", "13900000002", "13900000003"]


def send_ok(transport: Transport, request: Request) -> str:
    answer = exchange(transport, request, tg.parse_send)
    assert answer.kind is AnswerKind.OK, answer
    return answer.value


def test_given_customer_uuid_when_sendmsg_then_accepted_with_it(
    transport: Transport, sim: RunningSimulator
) -> None:
    batch = send_ok(transport, tg.build_send(TG, ["13912345678"], SIGNED, ref="4711"))
    assert [(e["mobile"], e["content"], e["ref"]) for e in accepted(sim, batch)] == [
        ("13912345678", SIGNED, "4711")
    ]


def test_given_50_numbers_when_sendbatchmsg_then_one_batch_without_customer_uuid(
    transport: Transport, sim: RunningSimulator
) -> None:
    # Section 2.7 has no customerUuid field: the client keeps the ref on its side, reports match by batch.
    mobiles = [f"139{i:08d}" for i in range(50)]
    batch = send_ok(transport, tg.build_send(TG, mobiles, SIGNED, ref="4712"))
    assert sent(sim, batch) == [(m, SIGNED) for m in mobiles]
    assert {e["ref"] for e in accepted(sim, batch)} == {""}


def test_given_encrypted_when_sendmsgbyencrypt_then_the_simulator_decrypts_the_same_text(
    transport: Transport, sim: RunningSimulator
) -> None:
    text = "你的验证码是:2345【饿了么】"
    batch = send_ok(transport, tg.build_send(TG, ["18616300000"], text, encrypted=True))
    assert sent(sim, batch) == [("18616300000", text)]


@pytest.mark.parametrize("ext", ["1", "1234567890123456"])
def test_given_an_extension_when_sendmsgext_then_accepted_with_customer_uuid(
    transport: Transport, sim: RunningSimulator, ext: str
) -> None:
    batch = send_ok(transport, tg.build_send(TG, ["13912345678"], SIGNED, ext=ext, ref="c-1"))
    assert [(e["mobile"], e["ref"]) for e in accepted(sim, batch)] == [("13912345678", "c-1")]


@pytest.mark.parametrize(
    ("creds", "separators"),
    [(TG, tg.SEPARATORS), (TG_BANG, Separators("|!|", "|^|"))],
    ids=["default-|~|-|-|", "account-|!|-|^|"],
)
def test_given_the_accounts_separators_when_sendindividualmsg_then_each_number_its_own_text(
    transport: Transport, sim: RunningSimulator, creds: Credentials, separators: Separators
) -> None:
    messages = [(m, f"张某某{i}, 明天开会!^~-【123】") for i, m in enumerate(MOBILES)]
    batch = send_ok(transport, tg.build_personalised(creds, messages, separators=separators, ref="9"))
    assert sent(sim, batch) == messages
    assert {e["ref"] for e in accepted(sim, batch)} == {"9"}


def test_given_default_separators_when_the_account_uses_others_then_minus_18(transport: Transport) -> None:
    # A separator setting that does not match the account's: every text of the request fails.
    answer = exchange(transport, tg.build_personalised(TG_BANG, [("13900000001", SIGNED)]), tg.parse_send)
    assert answer.code == -18
    assert tg.classify(-18).error_class is ErrorClass.BAD_CONTENT


def test_given_50_messages_when_sendindividualmsg_then_all_accepted(
    transport: Transport, sim: RunningSimulator
) -> None:
    messages = [(f"139{i:08d}", f"第{i}条【测试】") for i in range(50)]
    assert sent(sim, send_ok(transport, tg.build_personalised(TG, messages))) == messages


def test_given_sends_when_getbalanceconnect_then_billed_as_the_client_counts(
    transport: Transport, sim: RunningSimulator
) -> None:
    # 1 + 2 + 3 + 2 segments; the last is 70 characters but 72 UTF-16 units (two emoji), as the client
    # counts them (the simulator counted code points, 1 segment, before the crosscheck).
    texts = [SIGNED, "长" * 71 + "【测试】", "x" * 130 + "【AB】", "😀😀" + "好" * 64 + "【测试】"]
    for text in texts:
        send_ok(transport, tg.build_send(TG, ["13912345678"], text))
    balance = exchange(transport, tg.build_balance(TG), tg.parse_balance)
    assert balance.kind is AnswerKind.OK
    assert int(balance.value) == sim.config.balance - sum(segments(t) for t in texts)
    again = exchange(transport, tg.build_balance(TG), tg.parse_balance)
    assert again.code == -16 and tg.classify(-16).error_class is ErrorClass.RATE_LIMITED


def test_given_no_encrypted_balance_in_the_seed_then_client_refuses_to_build_it() -> None:
    with pytest.raises(UnsupportedMethodError):
        tg.build_balance(TG, encrypted=True)


def _send_mixed(transport: Transport) -> None:
    eighteen_digits = chunk_ref("0b5c6a1e-campaign", 3)  # a customerUuid as the dispatcher sets it
    send_ok(transport, tg.build_send(TG, ["13900000001"], SIGNED, ref=eighteen_digits))
    send_ok(transport, tg.build_send(TG, MOBILES, SIGNED))
    send_ok(transport, tg.build_send(TG, ["13900000004"], SIGNED, ext="77", ref="chunk-7"))
    send_ok(transport, tg.build_personalised(TG, [(m, "个性" + SIGNED) for m in MOBILES[:2]], ref="103"))
    send_ok(transport, tg.build_send(TG, ["13900000005"], SIGNED, encrypted=True))


@pytest.mark.parametrize(
    ("build", "timed"),
    [
        (tg.build_report_legacy, False),  # GetReportConnect: batch,mobile,status,customerUuid|
        (tg.build_pull_reports, True),  # GetReport2Connect: batch,mobile,time,status,customerUuid|
        (lambda creds: tg.build_pull_reports(creds, encrypted=True), True),  # GetReport2ByEncrypt
    ],
    ids=["GetReportConnect", "GetReport2Connect", "GetReport2ByEncrypt"],
)
def test_given_mixed_sends_when_reports_pulled_then_batch_status_and_customer_uuid_match_the_ledger(
    transport: Transport, sim: RunningSimulator, build: Callable[[Credentials], Request], timed: bool
) -> None:
    _send_mixed(transport)
    reports = exchange(transport, build(TG), tg.parse_reports)
    ledger = accepted(sim)
    assert sorted((r.batch_id, r.mobile, r.status, r.ref) for r in reports) == sorted(
        (e["batch_id"], e["mobile"], e["status"], e["ref"]) for e in ledger
    )
    assert len({r.status for r in reports}) > 1
    at = {(e["batch_id"], e["mobile"]): china_second(e["at"]) for e in ledger}
    assert [r.at for r in reports] == [at[(r.batch_id, r.mobile)] if timed else None for r in reports]
    assert exchange(transport, build(TG), tg.parse_reports) == []


@pytest.mark.parametrize(
    ("build", "show_num"),
    [
        (tg.build_replies_legacy, False),  # GetMoConnect: phone,text,time,customerUuid
        (tg.build_pull_replies, True),  # GetMo2Connect: phone,text,time,show number,customerUuid
        (lambda creds: tg.build_pull_replies(creds, encrypted=True), False),  # GetMo2ByEncrypt (2.10)
    ],
    ids=["GetMoConnect", "GetMo2Connect", "GetMo2ByEncrypt"],
)
def test_given_replies_to_sent_messages_when_pulled_then_mobile_text_time_and_customer_uuid(
    transport: Transport, sim: RunningSimulator, build: Callable[[Credentials], Request], show_num: bool
) -> None:
    send_ok(transport, tg.build_send(TG, ["13912345678"], SIGNED, ref="4711"))
    send_ok(transport, tg.build_personalised(TG, [("13912345679", SIGNED)], ref="chunk-9"))
    before = int(time.time())
    sim.add_reply("trigger", "demo", "13912345678", "好的, 收到")
    sim.add_reply("trigger", "demo", "13912345679", "TD")
    sim.add_reply("trigger", "demo", "13912345670", "谁?")  # never sent to: no customerUuid
    after = time.time()
    replies = exchange(transport, build(TG), tg.parse_replies)
    channel = "106900000001" if show_num else ""
    assert [(r.mobile, r.text, r.channel, r.ref) for r in replies] == [
        ("13912345678", "好的, 收到", channel, "4711"),
        ("13912345679", "TD", channel, "chunk-9"),
        ("13912345670", "谁?", channel, ""),
    ]
    assert all(r.at is not None and before <= r.at.timestamp() <= after for r in replies)
    assert exchange(transport, build(TG), tg.parse_replies) == []
