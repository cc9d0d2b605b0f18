"""Error code tables: every code each vendor document lists, each in the class the dispatcher acts on."""

from __future__ import annotations

import pytest

from dispatcher.vendors import webservice, yunxin
from dispatcher.vendors.wire import ErrorClass

R, T, P, C, Q, A = (
    ErrorClass.RATE_LIMITED,
    ErrorClass.RETRY_LATER,
    ErrorClass.BAD_RECIPIENT,
    ErrorClass.BAD_CONTENT,
    ErrorClass.BAD_REQUEST,
    ErrorClass.ACCOUNT,
)

# What each code means for the dispatcher, vendor by vendor, written out code by code.
WEBSERVICE = {
    -16: R, -1: T, -9: P, -12: P, -20: P, -4: C, -5: C, -10: C, -18: C,
    -13: Q, -14: Q, -15: Q, -19: Q, -3: A, -7: A, -8: A, -11: A, -17: A, -21: A, -23: A,
}  # fmt: skip
YUNXIN = {
    -23: R, -1: T, -8: T, -14: P, -15: P, -16: P, -17: P, -5: C, -6: C, -12: C, -20: C,
    -9: Q, -10: Q, -11: Q, -3: A, -7: A, -13: A, -18: A, -19: A, -21: A, -22: A,
}  # fmt: skip
# Codes listed in the documents' tables (000: union of all method tables; 001 likewise).
WEBSERVICE_DOCUMENT_CODES = {
    -1,
    -3,
    -4,
    -5,
    -7,
    -8,
    -9,
    -10,
    -11,
    -12,
    -13,
    -14,
    -15,
    -16,
    -17,
    -18,
    -19,
    -20,
    -21,
    -23,
}
YUNXIN_DOCUMENT_CODES = {
    -1,
    -3,
    -5,
    -6,
    -7,
    -8,
    -9,
    -10,
    -11,
    -12,
    -13,
    -14,
    -15,
    -16,
    -17,
    -18,
    -19,
    -20,
    -21,
    -22,
    -23,
}


@pytest.mark.parametrize(("code", "cls"), sorted(WEBSERVICE.items()))
def test_given_a_webservice_code_when_classified_then_it_has_the_documented_class(
    code: int, cls: ErrorClass
) -> None:
    info = webservice.classify(code)
    assert info.error_class is cls
    assert info.code == code and info.meaning and info.meaning_en


@pytest.mark.parametrize(("code", "cls"), sorted(YUNXIN.items()))
def test_given_a_yunxin_code_when_classified_then_it_has_the_documented_class(
    code: int, cls: ErrorClass
) -> None:
    info = yunxin.classify(code)
    assert info.error_class is cls
    assert info.code == code and info.meaning and info.meaning_en


def test_given_the_documents_code_lists_then_the_tables_hold_exactly_those_codes() -> None:
    assert set(webservice.CODES) == WEBSERVICE_DOCUMENT_CODES == set(WEBSERVICE)
    assert set(yunxin.CODES) == YUNXIN_DOCUMENT_CODES == set(YUNXIN)


def test_given_minus_16_and_minus_23_then_their_meaning_depends_on_the_vendor() -> None:
    # -16: too frequent at webservice, bad number format at yunxin; -23 the other way round.
    assert webservice.classify(-16).error_class is ErrorClass.RATE_LIMITED
    assert yunxin.classify(-16).error_class is ErrorClass.BAD_RECIPIENT
    assert yunxin.classify(-23).error_class is ErrorClass.RATE_LIMITED
    assert webservice.classify(-23).error_class is ErrorClass.ACCOUNT
    assert "解密失败" in webservice.classify(-23).meaning
    assert "号码格式错误" in yunxin.classify(-16).meaning


@pytest.mark.parametrize("module", [webservice, yunxin])
def test_given_a_code_not_in_the_table_when_classified_then_it_is_unknown(module: object) -> None:
    info = module.classify(-99)  # type: ignore[attr-defined]
    assert info.error_class is ErrorClass.UNKNOWN and info.code == -99


def test_given_the_contract_then_names_limits_and_methods_are_there() -> None:
    assert (webservice.NAME, yunxin.NAME) == ("webservice", "yunxin")
    assert (webservice.LIMITS.same_text_numbers, webservice.LIMITS.personalised_messages) == (1, 1)
    assert (yunxin.LIMITS.same_text_numbers, yunxin.LIMITS.personalised_messages) == (500, 1000)
    assert webservice.LIMITS.reports_per_pull == yunxin.LIMITS.reports_per_pull == 500
    ws_methods = {m[0] for m in webservice.METHODS}
    assert {"SendMsg", "sendMsgByEncrypt", "SendMsgExt_Sub", "SendVoiceCode", "SendVoiceCodeWithTemplate",
            "GetBalance", "GetBalanceByEncrypt", "GetReport", "GetReport2", "GetReport2ByEncrypt",
            "GetMo", "GetMo2", "GetMo2ByEncrypt"} <= ws_methods  # fmt: skip
    yx_methods = {m[0] for m in yunxin.METHODS}
    assert {"SendMsg", "sendMsgByEncrypt", "sendMesExt", "IndividualSm.aspx", "GetBalance",
            "GetBalanceByEncrypt", "GetReport", "GetReport2", "GetReport2ByEncrypt", "GetMo", "GetMo2",
            "GetMo2ByEncrypt", "GetKeyWords"} <= yx_methods  # fmt: skip
    assert all(len(m) == 3 and all(m) for m in webservice.METHODS + yunxin.METHODS)


def test_given_minus_3_then_both_wordings_of_the_webservice_document_are_kept() -> None:
    # Its send tables say 用户名或密码错误, its GetReport2 table 用户名密码错误或者用户无效.
    meaning = webservice.classify(-3).meaning
    assert "用户名或密码错误" in meaning and "用户名密码错误或者用户无效" in meaning
