"""From a contact list and a template to validated, rendered messages, keeping every input row.

The result is columnar (plain lists): at a million rows, one object per message costs more time and
memory than the rest of the pipeline. Every non-blank data row ends up either in ``messages`` or in
``rejected`` with the reason (invalid number, missing value, a text the account's gateway would refuse:
forbidden keyword, ``&`` on an encrypted account, too long; duplicate, opted out).
"""

from __future__ import annotations

import bisect
import enum
import gc
import itertools
import operator
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dispatcher import reasons
from dispatcher import text as textrules
from dispatcher.contacts.guard import DEFAULT_LIMITS, SheetLimits
from dispatcher.contacts.headers import SAMPLE_ROWS, Layout, find_layout
from dispatcher.contacts.phones import _RULES, REASON_CODES, Cell, parse_mobile, several_mobiles
from dispatcher.contacts.reader import Rows, open_rows
from dispatcher.errors import SpreadsheetError, TemplateError
from dispatcher.i18n import N_

Progress = Callable[[int, int | None], None]  # (rows read so far, rows in the sheet or None)
PROGRESS_EVERY = 20_000


class RejectKind(enum.StrEnum):
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    OPTED_OUT = "opted_out"


@dataclass(frozen=True, slots=True)
class Rejection:
    row: int  # as the spreadsheet shows it
    column: str  # header of the offending column
    value: str
    code: str  # the reason (``dispatcher.reasons``): said in English by ``reason``, localised by pages
    params: dict[str, Any] = field(default_factory=dict)
    kind: RejectKind = RejectKind.INVALID
    mobile: str | None = None  # the row's number, when it is one: kept whatever the reason

    @property
    def reason(self) -> str:
        return reasons.english(self.code, self.params)


@dataclass(frozen=True, slots=True)
class Message:
    row: int
    mobile: str
    text: str
    segments: int
    values: dict[str, str]


@dataclass
class Messages:
    """Accepted messages, one list per attribute, aligned by index."""

    rows: list[int] = field(default_factory=list)
    mobiles: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)  # the template's fields, as rendered

    def __len__(self) -> int:
        return len(self.mobiles)

    def __getitem__(self, index: int) -> Message:
        return Message(
            self.rows[index],
            self.mobiles[index],
            self.texts[index],
            self.segments[index],
            {name: column[index] for name, column in self.values.items()},
        )

    def __iter__(self) -> Iterator[Message]:
        return (self[i] for i in range(len(self)))


@dataclass
class IngestResult:
    path: Path
    sheet: str
    header_row: int  # 0 when the list has no header row
    headers: tuple[str, ...]
    phone_column: str
    template: textrules.Template
    rows: int = 0  # non-blank data rows
    messages: Messages = field(default_factory=Messages)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # in English
    notices: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # the same as (msgid, params)
    not_gb2312: list[int] = field(default_factory=list)  # message indexes an encrypted method cannot carry
    # Rows whose phone cell holds two numbers or more: (row, the numbers); sent to the first, or to each.
    several: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    each_number: bool = False

    def count(self, kind: RejectKind) -> int:
        return sum(1 for r in self.rejected if r.kind is kind)

    @property
    def invalid(self) -> int:
        return self.count(RejectKind.INVALID)

    @property
    def duplicates(self) -> int:
        return self.count(RejectKind.DUPLICATE)

    @property
    def opted_out(self) -> int:
        return self.count(RejectKind.OPTED_OUT)

    @property
    def valid(self) -> int:
        return self.rows - self.invalid

    @property
    def segments(self) -> int:
        return sum(self.messages.segments)


def _blank(cells: Sequence[Cell]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _sample(
    rows: Iterator[tuple[int, Sequence[Cell]]],
) -> tuple[list[tuple[int, Sequence[Cell]]], list[tuple[int, Sequence[Cell]]]]:
    """(every row read so far, the non-blank ones): up to SAMPLE_ROWS non-blank rows."""
    read: list[tuple[int, Sequence[Cell]]] = []
    non_blank: list[tuple[int, Sequence[Cell]]] = []
    for item in rows:
        read.append(item)
        if not _blank(item[1]):
            non_blank.append(item)
            if len(non_blank) >= SAMPLE_ROWS:
                break
    return read, non_blank


def ingest(  # noqa: PLR0913 (the reading's options, keyword-only)
    path: str | Path,
    template: str,
    *,
    sheet: str | int | None = None,
    phone_column: str | None = None,
    opt_outs: Collection[str] = frozenset(),
    keywords: Iterable[str] = (),
    rules: textrules.TextRules = textrules.TextRules(),
    marketing: bool = True,
    progress: Progress | None = None,
    limits: SheetLimits = DEFAULT_LIMITS,
    dedupe: bool = True,
    each_number: bool = False,
) -> IngestResult:
    """Read ``path``, validate numbers, render ``template`` per row, de-duplicate and drop opt-outs.

    ``dedupe=False`` keeps a repeated number's later rows (an A/B test renders every template for the
    whole list and de-duplicates once each row has its variant: ``variants.merge``).

    ``rules`` (plus ``keywords``) say what the account's gateway refuses: a template that breaks them is a
    ``TemplateError`` naming why (a forbidden word, ``&`` on an encrypted account); a rendered text that
    breaks them rejects its row with the reason.
    A sheet larger than ``limits`` is refused before it is loaded. A phone cell holding two numbers
    or more is sent to its first, or with ``each_number`` to each (a message per number).
    """
    parsed = textrules.parse_template(template)  # template errors before the file is even opened
    rules = replace(rules, keywords=rules.keywords + tuple(k for k in keywords if k))
    if problem := rules.template_reason(parsed):
        raise TemplateError.say(problem[0], **problem[1])
    source = open_rows(path, sheet, limits)
    read, sample = _sample(source.rows)
    if not sample:
        raise SpreadsheetError.say(N_("%(where)s: the sheet is empty"), where=source.where())
    layout = find_layout(
        sample, where=source.where(), phone_column=phone_column, first_column=source.first_column
    )
    textrules.check_fields(parsed, layout.headers, where=f"{source.where()}: ")
    result = IngestResult(
        source.path,
        source.sheet,
        layout.header_row,
        layout.headers,
        layout.headers[layout.phone_index],
        parsed,
        each_number=each_number,
    )
    if layout.notice is not None:
        _warn(result, layout.notice[0], **layout.notice[1])
    _template_warnings(parsed, result, marketing, rules.signature_first)
    data = itertools.chain((r for r in read if r[0] > layout.header_row), source.rows)
    # The loop allocates millions of objects that all live on: the cyclic GC would traverse the
    # growing result again and again for nothing (nothing here forms cycles).
    collecting = gc.isenabled()
    gc.disable()
    try:
        _process(
            data,
            source,
            layout,
            parsed,
            result,
            frozenset(opt_outs),
            rules,
            progress,
            dedupe,
        )
    finally:
        if collecting:
            gc.enable()
    if result.rows == 0:  # an import template, or a list whose rows are all blank
        raise SpreadsheetError.say(
            N_("%(where)s: no data rows below the header row %(header)s: there is no one to send to"),
            where=source.where(),
            header=layout.header_row,
        )
    if result.several:
        _warn_several(result)
    if result.not_gb2312:
        _warn(
            result,
            N_(
                "%(count)s messages contain characters GB2312 (code page 936, GBK) cannot encode: "
                "they cannot go through an encrypted method; use the plain method"
            ),
            count=len(result.not_gb2312),
        )
    return result


MOST_NUMBERS = 4  # numbers one phone cell may hold (南/北, 家/公司 ...); more reject the row
SEVERAL_SHOWN = 10  # rows named in the warning; check --json lists every one


def _warn_several(result: IngestResult) -> None:
    shown = "; ".join(f"{row}: {'/'.join(numbers)}" for row, numbers in result.several[:SEVERAL_SHOWN]) + (
        "; …" if len(result.several) > SEVERAL_SHOWN else ""
    )
    if result.each_number:
        msgid = N_(
            "%(count)s cells of column %(column)s hold two numbers or more: a message goes to each "
            "(row: numbers) %(rows)s"
        )
    else:
        msgid = N_(
            "%(count)s cells of column %(column)s hold two numbers or more: only the first is sent to, "
            "not the others (row: numbers) %(rows)s; --each-number sends to each"
        )
    _warn(result, msgid, count=len(result.several), column=result.phone_column, rows=shown)


def _warn(result: IngestResult, msgid: str, **params: Any) -> None:
    result.warnings.append(msgid % params if params else msgid)
    result.notices.append((msgid, params))


def _signature_rule(template: textrules.Template, leading: bool) -> tuple[bool, bool]:
    """(the template's own words lack a 【signature】, each rendered text's is to be checked).

    A template ending in words must end with 【签名】 ("【{店名}】" counts); one ending in a value is checked
    per row. Where the gateway takes a leading signature (``leading``: trigger, entinfo), one starting
    with 【品牌】 is as good, and a row's text may start with one."""
    first, last = template.literals[0], template.literals[-1]
    if leading and first.strip() and textrules.has_signature(template.source, leading=True):
        return False, False
    if last.strip():
        return not textrules.has_signature(template.source), False
    return False, True


def _template_warnings(
    template: textrules.Template, result: IngestResult, marketing: bool, leading: bool
) -> None:
    if _signature_rule(template, leading)[0]:
        where = N_("the template does not end with a 【signature】: gateways reject such texts")
        _warn(result, where)
    if named := textrules.full_width_placeholders(template):
        _warn(
            result,
            N_("%(names)s: full-width braces are sent as they are; a placeholder is written {column}"),
            names="、".join("｛" + n + "｝" for n in named),
        )
    if marketing and not textrules.has_opt_out_hint(template.static_text):
        _warn(result, N_("a marketing text should tell people how to opt out (e.g. 回T退订)"))


def _process(  # noqa: C901 (the hot loop: one pass, local names, no calls per row it can avoid)
    data: Iterable[tuple[int, Sequence[Cell]]],
    source: Rows,
    layout: Layout,
    template: textrules.Template,
    result: IngestResult,
    opt_outs: frozenset[str],
    text_rules: textrules.TextRules,
    progress: Progress | None,
    dedupe: bool = True,
) -> None:
    # The hot loop: one pass, local names, str fast paths; the slow general code only for odd cells.
    phone_at = layout.phone_index
    phone_header = layout.headers[phone_at]
    fields = template.fields
    field_at = [layout.headers.index(f) for f in fields]
    pick = _picker(field_at)
    width = max(field_at, default=-1) + 1
    # Rendering joins the literals with the values (a slice assignment and a join, no format parsing).
    parts = [""] * (2 * len(template.literals) - 1)
    parts[::2] = template.literals
    join = "".join
    leading = text_rules.signature_first  # the gateway takes 【签名】 first, too
    check_signature = _signature_rule(template, leading)[1]  # it may come from a value: check each text
    # A rendered text is measured before it is built: a long value repeated by the template must
    # cost a rejection, not the memory of a text no gateway would take.
    room = textrules.MAX_TEXT_CHARS - len(template.static_text)
    static_ascii = template.static_text.isascii()
    single, double = text_rules.max_chars or (textrules.MAX_TEXT_CHARS, textrules.MAX_TEXT_CHARS)
    is_csv = not source.sheet
    messages = result.messages
    rows_out, mobiles, texts, segs = messages.rows, messages.mobiles, messages.texts, messages.segments
    value_columns = _ValueColumns(len(fields))
    messages.values = dict(zip(fields, value_columns.columns, strict=True))
    keep_values = value_columns.pending.extend
    rejected = result.rejected
    not_gb2312 = result.not_gb2312
    seen: dict[str, int] = {}
    rules = _RULES.fullmatch
    display = textrules.display
    text_reason = text_rules.text_reason if text_rules.per_text else None
    total = source.total
    count = blank = 0
    each: tuple[int, tuple[str, ...]] | None = None  # (row, its numbers): --each-number's row

    sink = _Sink(result, seen, opt_outs, phone_header, keep_values)

    for number, cells in data:
        count += 1
        if count % PROGRESS_EVERY == 0:
            if progress is not None:
                progress(number, total)
            value_columns.flush()
        raw = cells[phone_at] if phone_at < len(cells) else None
        if type(raw) is str and len(raw) == 11 and rules(raw):
            mobile = raw
        elif type(raw) is float and raw.is_integer() and len(digits := str(int(raw))) == 11 and rules(digits):
            mobile = digits  # a numeric cell: calamine gives 13912345678.0
        else:
            if (raw is None or raw == "") and _blank(cells):
                blank += 1
                continue
            parsed, each = _odd_cell(raw, cells, number, layout.headers, result)
            if parsed is None:
                continue
            mobile = parsed
        picked = (
            pick(cells)
            if len(cells) >= width
            else [cells[at] if at < len(cells) else None for at in field_at]
        )
        # Text cells, then the usual number (a whole float, as display() shows it), then display().
        values = [
            cell.strip()
            if type(cell) is str
            else str(int(cell))
            if type(cell) is float and cell.is_integer() and -1e15 < cell < 1e15
            else display(cell)
            for cell in picked
        ]
        if is_csv:
            values = [_csv_text(value) for value in values]
        if not all(values):
            missing = fields[values.index("")]
            rejected.append(
                Rejection(number, missing, "", "missing_value", {"field": missing}, mobile=mobile)
            )
            continue
        if sum(map(len, values)) > room:  # said as the account's own length rule says it
            if static_ascii and all(map(str.isascii, values)):
                reason, params = "too_long_single_byte", {"limit": single}
            else:
                reason, params = "too_long", {"limit": double}
            rejected.append(Rejection(number, "", "", reason, params, mobile=mobile))
            continue
        parts[1::2] = values
        message = join(parts)
        if check_signature and not textrules.has_signature(message, leading=leading):
            rejected.append(Rejection(number, fields[-1], values[-1], "no_signature", mobile=mobile))
            continue
        if text_reason is not None and (problem := text_reason(message)):
            rejected.append(Rejection(number, "", "", problem[0], problem[1], mobile=mobile))
            continue
        if each is not None and each[0] == number:  # --each-number: the row's message to each number
            for other in each[1]:
                sink.take(other, number, message, values)
            continue
        # After the text checks: a row rejected for its text does not take its number from a later row.
        first = seen.get(mobile) if dedupe else None
        if first is not None:
            code = "duplicate" if _same_text(rows_out, texts, first, message) else "duplicate_other_text"
            rejected.append(
                Rejection(number, phone_header, mobile, code, {"row": first}, RejectKind.DUPLICATE, mobile)
            )
            continue
        seen[mobile] = number
        if mobile in opt_outs:
            rejected.append(
                Rejection(number, phone_header, mobile, "opted_out", {}, RejectKind.OPTED_OUT, mobile)
            )
            continue
        rows_out.append(number)
        mobiles.append(mobile)
        texts.append(message)
        keep_values(values)
    result.rows = count - blank
    value_columns.flush()
    # Column by column over distinct values, not row by row: GB2312, then the segments it settles.
    literal_gb_ok = not textrules.gb2312_problem(template.static_text)
    not_gb2312.extend(_not_gb2312(value_columns.columns, len(texts), literal_gb_ok))
    segs.extend(_segments(texts, not_gb2312))
    if progress is not None:
        progress(count, total)


def _odd_cell(
    raw: Cell, cells: Sequence[Cell], number: int, headers: Sequence[str], result: IngestResult
) -> tuple[str | None, tuple[int, tuple[str, ...]] | None]:
    """The number of a phone cell the fast paths did not take, and with ``--each-number`` (row, every
    number) when it holds several; ``(None, None)`` once the row is rejected, with its reason."""
    parsed, reason = parse_mobile(raw)
    if parsed is not None:
        return parsed, None
    several = several_mobiles(raw)
    if several is None:
        code = REASON_CODES.get(reason, "not_a_number")
        if _repeats_header(cells, headers):  # a list pasted together from several
            code = "repeated_header"
        result.rejected.append(Rejection(number, result.phone_column, textrules.display(raw), code))
        return None, None
    if len(several) == 1:  # the same number twice
        return several[0], None
    if len(several) > MOST_NUMBERS:  # a list of numbers, not a person's phones: one row must not fan out
        params = {"count": len(several), "most": MOST_NUMBERS}
        result.rejected.append(
            Rejection(number, result.phone_column, textrules.display(raw)[:255], "too_many_numbers", params)
        )
        return None, None
    result.several.append((number, several))
    return several[0], (number, several) if result.each_number else None


@dataclass
class _Sink:
    """Where a row's message goes for one number: de-duplicated, opt-outs dropped. The hot loop does
    the same inline for a row's one number; this is for each number of a cell that holds several."""

    result: IngestResult
    seen: dict[str, int]
    opt_outs: frozenset[str]
    phone_header: str
    keep_values: Callable[[Iterable[str]], None]

    def take(self, mobile: str, number: int, message: str, values: list[str]) -> None:
        messages, rejected = self.result.messages, self.result.rejected
        first = self.seen.get(mobile)
        if first is not None:
            same = _same_text(messages.rows, messages.texts, first, message)
            code = "duplicate" if same else "duplicate_other_text"
            params = {"row": first}
            rejected.append(
                Rejection(number, self.phone_header, mobile, code, params, RejectKind.DUPLICATE, mobile)
            )
            return
        self.seen[mobile] = number
        if mobile in self.opt_outs:
            rejected.append(
                Rejection(number, self.phone_header, mobile, "opted_out", {}, RejectKind.OPTED_OUT, mobile)
            )
            return
        messages.rows.append(number)
        messages.mobiles.append(mobile)
        messages.texts.append(message)
        self.keep_values(values)


def _repeats_header(cells: Sequence[Cell], headers: Sequence[str]) -> bool:
    """Whether a data row says the header again (its non-empty cells are the header's own)."""
    shown = [textrules.display(c) for c in cells[: len(headers)]]
    named = [(value, header) for value, header in zip(shown, headers, strict=False) if value and header]
    return len(named) >= 2 and all(value == header for value, header in named)


def _same_text(rows_out: list[int], texts: list[str], first_row: int, text: str) -> bool:
    """Whether ``text`` is the text kept for row ``first_row`` (one the list took; an opted-out first row
    kept none: then the texts are not compared)."""
    at = bisect.bisect_left(rows_out, first_row)  # rows are taken in order: the list is sorted
    if at < len(rows_out) and rows_out[at] == first_row:
        return texts[at] == text
    return True


class _ValueColumns:
    """The accepted rows' template values, one list per field.

    Rows are buffered flat (one ``extend`` per row) and moved to their columns every PROGRESS_EVERY
    rows, where repeated values (names, cities, amounts) come to share one string object: a million
    rows keep hundreds of MB less. A column whose values turn out mostly distinct (coupon codes) is no
    longer de-duplicated.
    """

    def __init__(self, width: int) -> None:
        self.columns: list[list[str]] = [[] for _ in range(width)]
        self.caches: list[dict[str, str] | None] = [{} for _ in range(width)]
        self.pending: list[str] = []

    def flush(self) -> None:
        width = len(self.columns)
        if not self.pending:
            return
        for i, (column, cache) in enumerate(zip(self.columns, self.caches, strict=True)):
            part = self.pending[i::width]
            if cache is None:
                column.extend(part)
                continue
            column.extend(map(cache.setdefault, part, part))
            if len(cache) * 2 > len(column):
                self.caches[i] = None
        self.pending.clear()


def _picker(indexes: Sequence[int]) -> Callable[[Sequence[Cell]], Sequence[Cell]]:
    """The cells at ``indexes`` of a row wide enough, at C speed (``itemgetter``), always as a sequence."""
    if len(indexes) > 1:
        return operator.itemgetter(*indexes)
    return lambda cells: [cells[i] for i in indexes]


def _csv_text(value: str) -> str:
    """A CSV cell without Excel's ="…" idiom for keeping it text."""
    return value[2:-1] if value[:2] == '="' and value[-1:] == '"' else value


def _not_gb2312(columns: Sequence[list[str]], count: int, literal_ok: bool) -> list[int]:
    """Indexes of the messages an encrypted (GB2312) method cannot carry: a template word GB2312 cannot
    encode makes it every message; otherwise those holding a value it cannot encode."""
    if not literal_ok:
        return list(range(count))
    bad: set[str] = set()
    for column in columns:
        if not all(map(str.isascii, column)):
            bad.update(v for v in set(column) if not v.isascii() and textrules.gb2312_problem(v))
    if not bad:
        return []
    return [i for i, values in enumerate(zip(*columns, strict=True)) if not bad.isdisjoint(values)]


def _segments(texts: list[str], not_gb2312: list[int]) -> list[int]:
    """Billing segments of each text. Texts of at most 70 characters, none outside the BMP (a text GB2312
    can encode has none), are one segment each: the usual case costs no Python per text."""
    if max(map(len, texts), default=0) > 70:
        return list(map(textrules.segments, texts))
    counts = [1] * len(texts)
    for i in not_gb2312:
        counts[i] = textrules.segments(texts[i])
    return counts
