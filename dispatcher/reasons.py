"""Why a row is not sent, as data: a code and its parameters, said in English for the CLI and ``--json``
(``english``) and in the reader's language on pages and in exports (``localised``, ``at_row``).

    english("missing_value", {"field": "姓名"})            # 'no value for {姓名}'
    with i18n.use("zh_CN"): at_row(12, "手机号码", "not_mobile", {})  # '第 12 行，手机号码列：不是大陆手机号'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatcher.i18n import N_

Params = Mapping[str, Any]

MESSAGES: dict[str, str] = {
    "no_phone": N_("no phone number"),
    "not_a_number": N_("not a phone number"),
    "lost_digits": N_("number in scientific notation has lost digits (format the column as text)"),
    "not_mobile": N_("not a mainland China mobile number"),
    "missing_value": N_("no value for {%(field)s}"),
    "no_signature": N_("the text does not end with a 【signature】"),
    "forbidden_keyword": N_("forbidden keyword '%(word)s'"),
    "ampersand": N_("'&' cannot go through an encrypted method"),
    "too_long_single_byte": N_("text longer than %(limit)d single-byte characters"),
    "too_long": N_("text longer than %(limit)d characters"),
    "duplicate": N_("duplicate of row %(row)d"),
    "duplicate_other_text": N_("duplicate of row %(row)d with a different text"),  # row %(row)d's is sent
    "repeated_header": N_("the header row repeated inside the list"),
    "too_many_numbers": N_("%(count)d numbers in one cell: at most %(most)d are read"),
    "opted_out": N_("opted out"),
    "capped": N_("frequency cap: %(count)d messages in %(days)d days already"),
}
# Rows the store withdrew later (an opt-out after the upload) carry only the English text.
_CODE_OF_TEXT = {"opted out": "opted_out"}


def english(code: str, params: Params | None = None) -> str:
    message = MESSAGES.get(code)
    if message is None:
        return code
    return message % dict(params or {}) if params else message


def localised(code: str | None, params: Params | None = None, english_text: str | None = None) -> str:
    """The reason in the current language; a row stored without a code is said as stored."""
    from dispatcher.i18n import gettext

    code = code or _CODE_OF_TEXT.get(english_text or "")
    if code is None or code not in MESSAGES:
        return english_text or ""
    message = gettext(MESSAGES[code])
    try:
        return message % {k: v for k, v in (params or {}).items() if k != "column"} if params else message
    except (KeyError, TypeError, ValueError):  # a catalog entry that does not fit: never fail a page
        return english(code, params)


def at_row(
    row: int, column: str, code: str | None, params: Params | None = None, english_text: str | None = None
) -> str:
    """``第 12 行，手机号码列：不是大陆手机号`` / ``row 12, column 手机号码: not a mainland China mobile number``."""
    from dispatcher.i18n import gettext

    reason = localised(code, params, english_text)
    if column:
        return gettext("row %(row)d, column %(column)s: %(reason)s") % {
            "row": row,
            "column": column,
            "reason": reason,
        }
    return gettext("row %(row)d: %(reason)s") % {"row": row, "reason": reason}
