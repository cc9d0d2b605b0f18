"""Refusals: the simulator answers the code its reading of the document gives, the client's parser reads it
and the client's table puts it in the class the dispatcher acts on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from types import ModuleType

import pytest

from dispatcher.simulator import RunningSimulator, run_simulator
from dispatcher.vendors import entinfo as en
from dispatcher.vendors import trigger as tg
from dispatcher.vendors import webservice as ws
from dispatcher.vendors import yunxin as yx
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import AnswerKind, Credentials, ErrorClass, Request
from tests.crosscheck.conftest import (
    ACCOUNT_KEYWORD,
    BLACKLISTED,
    EN,
    EN_POOR,
    SIGNED,
    TG,
    TG_POOR,
    WS,
    WS_POOR,
    YX,
    YX_KW,
    YX_POOR,
    crosscheck_config,
    exchange,
)

P, C, Q, A, R = (
    ErrorClass.BAD_RECIPIENT,
    ErrorClass.BAD_CONTENT,
    ErrorClass.BAD_REQUEST,
    ErrorClass.ACCOUNT,
    ErrorClass.RATE_LIMITED,
)
UNSIGNED = "您的验证码是1234"
TWO_SEGMENTS = "长" * 71 + "【测试】"  # 77 characters: 2 segments, the poor accounts have 1
MOBILE = ["13912345678"]
THREE = ["13900000001", "13900000002", "13900000003"]


def wrong(creds: Credentials) -> Credentials:
    return replace(creds, password="wrong")


@dataclass(frozen=True)
class Case:
    vendor: ModuleType
    request: Request
    code: int
    error_class: ErrorClass
    detail: str = ""


CASES: dict[str, Case] = {
    # -- bad password -------------------------------------------------------------------------------
    "ws-bad-password": Case(ws, ws.build_send(wrong(WS), MOBILE, SIGNED), -3, A),
    "ws-bad-password-encrypted": Case(ws, ws.build_send(wrong(WS), MOBILE, SIGNED, encrypted=True), -23, A),
    "ws-bad-password-ext": Case(ws, ws.build_send(wrong(WS), MOBILE, SIGNED, ext="1"), -3, A),
    "ws-bad-password-voice": Case(ws, ws.build_voice_code(wrong(WS), MOBILE[0], "1234"), -3, A),
    "ws-bad-password-balance": Case(ws, ws.build_balance(wrong(WS)), -3, A),
    "yx-bad-password": Case(yx, yx.build_send(wrong(YX), MOBILE, SIGNED), -3, A),
    "yx-bad-password-encrypted": Case(yx, yx.build_send(wrong(YX), MOBILE, SIGNED, encrypted=True), -22, A),
    "yx-bad-password-individual": Case(yx, yx.build_personalised(wrong(YX), [(MOBILE[0], SIGNED)]), -3, A),
    "yx-bad-password-balance-encrypted": Case(yx, yx.build_balance(wrong(YX), encrypted=True), -22, A),
    "tg-bad-password": Case(tg, tg.build_send(wrong(TG), MOBILE, SIGNED), -3, A),
    "tg-bad-password-encrypted": Case(tg, tg.build_send(wrong(TG), MOBILE, SIGNED, encrypted=True), -23, A),
    "tg-bad-password-batch": Case(tg, tg.build_send(wrong(TG), THREE, SIGNED), -3, A),
    "tg-bad-password-balance": Case(tg, tg.build_balance(wrong(TG)), -3, A),
    "en-bad-password": Case(en, en.build_send(wrong(EN), MOBILE, SIGNED), -2, A),
    "en-bad-password-mdgxsend": Case(en, en.build_personalised(wrong(EN), [(MOBILE[0], SIGNED)]), -2, A),
    # -- missing signature ----------------------------------------------------------------------------
    "ws-no-signature": Case(ws, ws.build_send(WS, MOBILE, UNSIGNED), -5, C),
    "yx-no-signature": Case(yx, yx.build_send(YX, THREE, UNSIGNED), -5, C),
    "yx-no-signature-individual": Case(yx, yx.build_personalised(YX, [(MOBILE[0], UNSIGNED)]), -5, C),
    "tg-no-signature": Case(tg, tg.build_send(TG, MOBILE, UNSIGNED), -5, C),
    "tg-no-signature-individual": Case(tg, tg.build_personalised(TG, [(MOBILE[0], UNSIGNED)]), -5, C),
    # Entinfo has no signature code; the simulator answers the document's -5 "数据格式错误", which
    # gateways use for content problems such as the signature: the client classes it bad_content.
    "en-no-signature": Case(en, en.build_send(EN, MOBILE, UNSIGNED), -5, C),
    # -- invalid number -----------------------------------------------------------------------------
    "ws-invalid-number": Case(ws, ws.build_send(WS, ["12345"], SIGNED), -9, P),
    "yx-invalid-number": Case(yx, yx.build_send(YX, ["13900000001", "12345456765"], SIGNED), -17, P),
    "yx-bad-number-format": Case(yx, yx.build_send(YX, ["1390000000a"], SIGNED), -16, P),
    "tg-invalid-number": Case(tg, tg.build_send(TG, ["12345"], SIGNED), -9, P),
    "tg-invalid-number-batch": Case(tg, tg.build_send(TG, ["13900000001", "12345"], SIGNED), -9, P),
    "en-invalid-number": Case(en, en.build_send(EN, ["12345"], SIGNED), -5, C),
    # -- blacklisted number --------------------------------------------------------------------------
    "ws-blacklisted": Case(ws, ws.build_send(WS, [BLACKLISTED], SIGNED), -12, P),
    "yx-blacklisted": Case(yx, yx.build_send(YX, [BLACKLISTED], SIGNED), -15, P),
    "tg-blacklisted": Case(tg, tg.build_send(TG, [BLACKLISTED], SIGNED), -47, P),
    # -- forbidden keyword ---------------------------------------------------------------------------
    "yx-keyword": Case(yx, yx.build_send(YX, MOBILE, "赌博送彩金【测试】"), -6, C, detail="赌博"),
    "yx-keyword-individual": Case(
        yx, yx.build_personalised(YX, [(MOBILE[0], "六合彩【测试】")]), -6, C, "六合彩"
    ),
    "yx-account-keyword": Case(
        yx, yx.build_send(YX_KW, MOBILE, f"{ACCOUNT_KEYWORD}【测试】"), -6, C, ACCOUNT_KEYWORD
    ),
    "tg-keyword": Case(tg, tg.build_send(TG, MOBILE, "代开发票【测试】"), -54, C),
    # -- insufficient balance ------------------------------------------------------------------------
    "ws-no-balance": Case(ws, ws.build_send(WS_POOR, MOBILE, TWO_SEGMENTS), -7, A),
    "yx-no-balance": Case(yx, yx.build_send(YX_POOR, THREE[:2], SIGNED), -7, A),
    "tg-no-balance": Case(tg, tg.build_send(TG_POOR, MOBILE, TWO_SEGMENTS), -7, A),
    "en-no-balance": Case(en, en.build_send(EN_POOR, THREE, SIGNED), -4, A),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_given_a_refused_request_then_the_client_reads_the_code_into_its_class(
    transport: Transport, sim: RunningSimulator, case: Case
) -> None:
    answer = exchange(transport, case.request, case.vendor.parse_send)
    assert (answer.kind, answer.code, answer.detail) == (AnswerKind.ERROR, case.code, case.detail)
    assert case.vendor.classify(case.code).error_class is case.error_class
    ledger = sim.ledger()
    assert ledger["accepted"] == []
    assert [r["code"] for r in ledger["rejected"]] == [case.code]


def test_given_an_mdgxsend_whose_content_list_lost_an_entry_then_minus_623_bad_request(
    transport: Transport, sim: RunningSimulator
) -> None:
    # The client always aligns the two lists; a packing bug that drops a content is what -623 reports.
    request = en.build_personalised(EN, [(m, SIGNED) for m in THREE])
    content = request.form["content"].rsplit(",", 1)[0]
    answer = exchange(transport, replace(request, form={**request.form, "content": content}), en.parse_send)
    assert answer.code == -623
    assert en.classify(-623).error_class is ErrorClass.BAD_REQUEST
    assert sim.ledger()["accepted"] == []


# Method limits lowered to 2 (the account's own maximum, yunxin's -10 "号码数量大于允许上限"), so three
# numbers, which the client's builders allow, are too many.
TOO_MANY: dict[str, tuple[ModuleType, Callable[[], Request], int]] = {
    "yx-sendmsg": (yx, lambda: yx.build_send(YX, THREE, SIGNED), -10),
    "yx-individual": (yx, lambda: yx.build_personalised(YX, [(m, SIGNED) for m in THREE]), -9),
    "tg-sendbatchmsg": (tg, lambda: tg.build_send(TG, THREE, SIGNED), -19),
    "tg-sendindividualmsg": (tg, lambda: tg.build_personalised(TG, [(m, SIGNED) for m in THREE]), -19),
    "en-mdsmssend": (en, lambda: en.build_send(EN, THREE, SIGNED), -6),
    "en-mdgxsend": (en, lambda: en.build_personalised(EN, [(m, SIGNED) for m in THREE]), -6),
}


def test_given_more_numbers_than_the_account_allows_then_each_vendors_code_is_bad_request() -> None:
    limits = {
        "yunxin_max_numbers": 2,
        "yunxin_max_individual": 2,
        "trigger_max_batch": 2,
        "trigger_max_individual": 2,
        "entinfo_max_mobiles": 2,
        "entinfo_max_individual": 2,
    }
    with run_simulator(crosscheck_config(**limits)) as sim, Transport([sim.base_url]) as transport:
        for name, (vendor, build, code) in TOO_MANY.items():
            answer = exchange(transport, build(), vendor.parse_send)
            assert answer.code == code, name
            assert vendor.classify(code).error_class is ErrorClass.BAD_REQUEST, name
        assert sim.ledger()["accepted"] == []


def test_given_requests_above_the_accounts_rate_then_each_vendors_too_frequent_code_is_rate_limited() -> None:
    cases: list[tuple[ModuleType, Callable[[], Request], int]] = [
        (ws, lambda: ws.build_send(WS, MOBILE, SIGNED), -16),
        (yx, lambda: yx.build_send(YX, MOBILE, SIGNED), -23),
        (tg, lambda: tg.build_send(TG, MOBILE, SIGNED), -16),
        (en, lambda: en.build_send(EN, MOBILE, SIGNED, ref="1"), -8),
    ]
    with run_simulator(crosscheck_config(rate_limit=1)) as sim, Transport([sim.base_url]) as transport:
        for vendor, build, code in cases:
            assert exchange(transport, build(), vendor.parse_send).ok
            answer = exchange(transport, build(), vendor.parse_send)
            assert answer.code == code, vendor.NAME
            assert vendor.classify(code).error_class is ErrorClass.RATE_LIMITED
        assert len(sim.ledger()["accepted"]) == 4
