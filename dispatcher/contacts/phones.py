"""Mainland mobile numbers as people and spreadsheets write them, normalised to 11 digits.

Spreadsheets hand us text (``+86 139-1234-5678``, full-width digits) and numeric cells (calamine
returns floats: ``13912345678.0``). The common cases take a str/regex fast path; validity follows
libphonenumber's CN mobile pattern, compiled once from its metadata, plus ``1[3-9]`` + 9 digits.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from phonenumbers.phonemetadata import PhoneMetadata

Cell = str | int | float | bool | date | datetime | time | timedelta | None

REASON_EMPTY = "no phone number"
REASON_NOT_A_NUMBER = "not a phone number"
REASON_LOST_DIGITS = "number in scientific notation has lost digits (format the column as text)"
REASON_NOT_MOBILE = "not a mainland China mobile number"
# The same reasons as codes (``dispatcher.reasons``), which pages and exports say in the reader's language.
REASON_CODES = {
    REASON_EMPTY: "no_phone",
    REASON_NOT_A_NUMBER: "not_a_number",
    REASON_LOST_DIGITS: "lost_digits",
    REASON_NOT_MOBILE: "not_mobile",
}

_MAINLAND = re.compile(r"1[3-9][0-9]{9}")


def _rules() -> re.Pattern[str]:
    metadata = PhoneMetadata.metadata_for_region("CN")
    pattern = metadata.mobile.national_number_pattern if metadata and metadata.mobile else None
    # ASCII: libphonenumber's ``\d`` would also take full-width digits, which the gateways refuse.
    return re.compile(f"(?:{pattern})" if pattern else _MAINLAND.pattern, re.ASCII)


_RULES = _rules()
# Full-width digits and signs (Chinese IMEs type them), mapped to ASCII; separators people type are dropped.
_TRANSLATE = str.maketrans(
    {**{chr(0xFF10 + i): str(i) for i in range(10)}, "＋": "+", "\u3000": None, " ": None, "\u00a0": None}
    | {c: None for c in "-－—‐_()（）/\t"}
)
_SCIENTIFIC = re.compile(r"([0-9])\.([0-9]+)[eE]\+?([0-9]{1,2})")
_DECIMAL_ZERO = re.compile(r"(\d+)\.0+")
_EXCEL_TEXT = re.compile(r'="(.*)"')  # ="13912345678": Excel's idiom to keep a CSV cell as text


def _valid(digits: str) -> str | None:
    if len(digits) == 11 and _MAINLAND.fullmatch(digits) and _RULES.fullmatch(digits):
        return digits
    return None


def _strip_country(digits: str) -> str:
    if len(digits) == 15 and digits.startswith("0086"):
        return digits[4:]
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    return digits


def _from_number(value: float | int) -> tuple[str | None, str]:
    if isinstance(value, float):
        if not value.is_integer() or value <= 0:
            return None, REASON_NOT_A_NUMBER
        value = int(value)  # exact below 2**53, far above any phone number
    digits = _strip_country(str(value))
    mobile = _valid(digits)
    return (mobile, "") if mobile else (None, REASON_NOT_MOBILE)


def parse_mobile(value: Cell) -> tuple[str | None, str]:
    """``(mobile, "")`` with the 11-digit number, or ``(None, reason)`` saying why it is not one."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 11 and _RULES.fullmatch(text):  # the fast path: most cells are exactly this
            return text, ""
        return _from_text(text)
    if isinstance(value, bool) or value is None:
        return None, REASON_EMPTY if value is None else REASON_NOT_A_NUMBER
    if isinstance(value, int | float):
        return _from_number(value)
    return None, REASON_NOT_A_NUMBER


def _from_text(text: str) -> tuple[str | None, str]:
    if not text:
        return None, REASON_EMPTY
    if m := _EXCEL_TEXT.fullmatch(text):
        text = m.group(1).strip()
    text = text.translate(_TRANSLATE)
    if text.startswith("+"):
        text = text[1:]
    if m := _SCIENTIFIC.fullmatch(text):
        # 1.3912345678E10 keeps every digit; 1.39123457E+10 (a CSV saved from a numeric column) does not.
        head, tail, exponent = m.group(1), m.group(2), int(m.group(3))
        if len(tail) > exponent:
            return None, REASON_NOT_A_NUMBER
        if len(tail) < exponent:
            return None, REASON_LOST_DIGITS
        text = head + tail
    elif m := _DECIMAL_ZERO.fullmatch(text):
        text = m.group(1)
    text = text.replace(".", "")  # 139.1234.5678
    if not text.isdigit() or not text.isascii():
        return None, REASON_NOT_A_NUMBER
    mobile = _valid(_strip_country(text))
    return (mobile, "") if mobile else (None, REASON_NOT_MOBILE)


def normalise(value: Cell) -> str | None:
    """The 11-digit mobile number in ``value``, or ``None`` (see :func:`parse_mobile` for the reason)."""
    return parse_mobile(value)[0]


# Between two numbers of one cell: anything but digits and what people type inside one number. A "+"
# starts a number (+86 ...), so it parts numbers too.
_BETWEEN_NUMBERS = re.compile(r"[^0-9０-９\-－—‐ \u3000\u00a0\t]+")


def several_mobiles(value: Cell) -> tuple[str, ...] | None:
    """The mobile numbers of a cell that holds two or more (``13712345678(南)13912345678(北)``,
    ``137…/139…``, ``137… 139…``), in the cell's order and once each; ``None`` when the cell is not
    made of mobile numbers and labels (a digit that belongs to no number makes it not one)."""
    if not isinstance(value, str):
        return None
    found: list[str] = []
    for part in _BETWEEN_NUMBERS.split(value):
        digits = part.translate(_TRANSLATE)
        if not digits:
            continue
        if not digits.isdigit() or not digits.isascii():
            return None
        if (mobile := _valid(_strip_country(digits))) is not None:
            found.append(mobile)
            continue
        # Numbers written one after the other with spaces only: 137 1234 5678 139 1234 5678.
        if len(digits) % 11 or not all(_valid(digits[i : i + 11]) for i in range(0, len(digits), 11)):
            return None
        found.extend(digits[i : i + 11] for i in range(0, len(digits), 11))
    return tuple(dict.fromkeys(found)) if len(found) >= 2 else None  # the same number twice: one
