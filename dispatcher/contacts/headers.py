"""Finding the header row and the phone column in the first rows of a contact list.

Real lists start with titles and blank rows; the header is the first row naming a phone column
(手机, 手机号码, mobile, ...). Without such a row, the phone column is the one whose cells are
mobile numbers, and the header (if any) is the text row just above the first number.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher.contacts.phones import Cell, normalise
from dispatcher.errors import SpreadsheetError
from dispatcher.i18n import N_
from dispatcher.text import display

SAMPLE_ROWS = 50  # rows looked at to find the header and the phone column
# Best first: a "mobile" column beats a generic "phone" (which may hold landlines).
PHONE_HEADERS = (
    "手机号码",
    "手机号",
    "手机",
    "移动电话",
    "手机号码(必填)",
    "mobile",
    "mobilephone",
    "mobile number",
    "cellphone",
    "cell",
    "电话号码",
    "联系电话",
    "电话",
    "联系方式",
    "号码",
    "phone",
    "phone number",
    "tel",
    "telephone",
)
_FIRST_GENERIC = PHONE_HEADERS.index("电话号码")  # the names before it say "mobile"; from it on, any number
_PHONE_WORDS = ("手机", "电话", "mobile", "phone", "号码")
_PUNCT = re.compile(r"[\s:：*＊()（）\[\]【】_\-]+")


@dataclass(frozen=True)
class Layout:
    """Where things are: ``header_row`` is 0 when the list has no header row."""

    header_row: int
    headers: tuple[str, ...]  # one name per column; a column letter where the header cell is empty
    phone_index: int  # index into each row's cells
    # Set when the content overruled the header: (msgid, params) of the warning that says so.
    notice: tuple[str, dict[str, Any]] | None = None


def column_letter(index: int) -> str:
    """0-based column index as Excel names it: 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = string.ascii_uppercase[rem] + letters
    return letters


def _key(header: str) -> str:
    return _PUNCT.sub("", header).casefold()


def _rank(header: str) -> int | None:
    """Lower is better; None when the header does not name a phone column."""
    key = _key(header)
    if not key:
        return None
    for rank, alias in enumerate(PHONE_HEADERS):
        if key == _key(alias):
            return rank
    for rank, word in enumerate(_PHONE_WORDS):
        if word in key:
            return len(PHONE_HEADERS) + rank
    return None


def header_names(cells: Sequence[Cell], width: int, first_column: int = 0) -> tuple[str, ...]:
    names = []
    for i in range(width):
        cell = cells[i] if i < len(cells) else ""
        names.append(display(cell) or column_letter(first_column + i))  # a header 2024 reads "2024"
    return tuple(names)


def _mobiles_in(rows: Sequence[tuple[int, Sequence[Cell]]], column: int) -> int:
    return sum(1 for _, cells in rows if column < len(cells) and normalise(cells[column]) is not None)


def find_layout(
    sample: Sequence[tuple[int, Sequence[Cell]]],
    *,
    where: str,
    phone_column: str | None = None,
    first_column: int = 0,
) -> Layout:
    """The header row and phone column of a sheet, from its first non-blank rows ``sample``."""
    if not sample:
        raise SpreadsheetError(f"{where}: no rows")
    width = max(len(cells) for _, cells in sample)
    if phone_column is not None:
        wanted = phone_column.strip()
        for number, cells in sample:
            names = header_names(cells, width, first_column)
            for i, name in enumerate(names):
                if name == wanted or _key(name) == _key(wanted):
                    return Layout(number, names, i)
        # A headerless list: the override may be a column letter.
        letters = [column_letter(first_column + i) for i in range(width)]
        if wanted.upper() in letters:
            return Layout(0, tuple(letters), letters.index(wanted.upper()))
        raise SpreadsheetError.say(
            N_("%(where)s: no column %(column)r; the headers are: %(headers)s"),
            where=where,
            column=phone_column,
            headers=_headers_shown(sample, width),
        )
    for position, (number, cells) in enumerate(sample):
        ranked = [
            (rank, i) for i, c in enumerate(cells) if isinstance(c, str) and (rank := _rank(c)) is not None
        ]
        if ranked:
            below = sample[position + 1 :]
            names = header_names(cells, width, first_column)
            return _by_header_and_content(number, names, ranked, below)
    return _layout_by_content(sample, width, where=where, first_column=first_column)


def _by_header_and_content(
    number: int,
    names: tuple[str, ...],
    ranked: list[tuple[int, int]],
    below: Sequence[tuple[int, Sequence[Cell]]],
) -> Layout:
    """The header's choice (best name first; among equals, the most mobile numbers), unless another
    column holds more than twice its mobile numbers: a form's 身份证号码 or 证件号码 names a number,
    not a phone. Then the content wins, and a notice says so. A column named for mobiles (手机号码,
    mobile ...) is never overruled: its first rows may be blank, and another column of numbers (an
    emergency contact's, a referrer's) is someone else's."""
    counts = [_mobiles_in(below, i) for i in range(len(names))]
    rank, named = min(ranked, key=lambda ri: (ri[0], -counts[ri[1]]))
    held = max(range(len(names)), key=lambda i: (counts[i], -i))
    if rank < _FIRST_GENERIC or counts[held] <= 2 * counts[named]:
        return Layout(number, names, named)
    notice = (
        N_(
            "the column %(header)s is named like a phone column, but %(column)s holds the mobile "
            "numbers (%(count)s of the first %(rows)s rows): sending to %(column)s; --phone-column "
            "chooses another"
        ),
        {"header": names[named], "column": names[held], "count": counts[held], "rows": len(below)},
    )
    return Layout(number, names, held, notice)


def _layout_by_content(
    sample: Sequence[tuple[int, Sequence[Cell]]], width: int, *, where: str, first_column: int
) -> Layout:
    for position, (_, cells) in enumerate(sample):
        hits = [i for i, c in enumerate(cells) if normalise(c) is not None]
        if not hits:
            continue
        rest = sample[position:]
        best = max(hits, key=lambda i: _mobiles_in(rest, i))
        if position > 0:
            number, above = sample[position - 1]
            if all(isinstance(c, str) for c in above):
                return Layout(number, header_names(above, width, first_column), best)
        return Layout(0, tuple(column_letter(first_column + i) for i in range(width)), best)
    raise SpreadsheetError.say(
        N_(
            "%(where)s: no phone column found (no header like 手机/手机号码/mobile/phone and no column of "
            "mobile numbers); the headers are: %(headers)s. Use --phone-column"
        ),
        where=where,
        headers=_headers_shown(sample, width),
    )


def _headers_shown(sample: Sequence[tuple[int, Sequence[Cell]]], width: int) -> str:
    number, cells = sample[0]
    names = [display(c) for c in cells if display(c)]
    return f"row {number}: " + (", ".join(names) if names else "(empty)")
