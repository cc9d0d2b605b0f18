from __future__ import annotations

import pytest

from dispatcher.contacts.phones import (
    REASON_EMPTY,
    REASON_LOST_DIGITS,
    REASON_NOT_A_NUMBER,
    REASON_NOT_MOBILE,
    normalise,
    parse_mobile,
)


@pytest.mark.parametrize(
    "value",
    [
        "13912345678",
        " 13912345678 ",
        13912345678,
        13912345678.0,
        "13912345678.0",
        "1.3912345678E10",
        "1.3912345678e+10",
        "+8613912345678",
        "+86 139 1234 5678",
        "0086-139-1234-5678",
        "8613912345678",
        8613912345678.0,
        "86 13912345678",
        "１３９１２３４５６７８",
        "＋８６ １３９１２３４５６７８",
        "13９１２３４５６７８",  # half typed full-width: the gateways take ASCII digits only
        "139１２３４５６７８",
        "139-1234-5678",
        "(139) 1234 5678",
        '="13912345678"',
    ],
)
def test_given_a_written_form_of_a_mobile_when_normalised_then_eleven_digits(value: object) -> None:
    assert normalise(value) == "13912345678"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, REASON_EMPTY),
        ("", REASON_EMPTY),
        ("abc", REASON_NOT_A_NUMBER),
        (1.5, REASON_NOT_A_NUMBER),
        (True, REASON_NOT_A_NUMBER),
        ("12345678901", REASON_NOT_MOBILE),  # does not start 1[3-9]
        ("14012345678", REASON_NOT_MOBILE),  # 1[3-9] but not a CN mobile range per libphonenumber
        ("1391234567", REASON_NOT_MOBILE),  # 10 digits
        ("139123456789", REASON_NOT_MOBILE),  # 12 digits
        ("010-12345678", REASON_NOT_MOBILE),  # a landline
        ("1.39123457E+10", REASON_LOST_DIGITS),  # a numeric column saved to CSV: digits are gone
    ],
)
def test_given_a_bad_value_when_parsed_then_none_with_the_reason(value: object, reason: str) -> None:
    assert parse_mobile(value) == (None, reason)  # type: ignore[arg-type]


def test_given_a_number_beginning_86_when_not_a_prefix_then_leading_digits_are_kept() -> None:
    # 11 digits starting 86 are not a country code (and not a mobile): never strip them.
    assert parse_mobile("86139123456") == (None, REASON_NOT_MOBILE)
