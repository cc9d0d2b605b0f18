"""Reading an upload, as the web app does it: run in a sandboxed child (:mod:`dispatcher.contacts.sandbox`).

Everything here takes plain values and returns JSON-able ones, the only kind the sandbox carries back.
Only :func:`create` touches the store: making a campaign reads and renders the whole list and writes
every row, and it is done in the child so that no list, however crafted, is ever held by the web
process. (The settings it gets hold no secret but the store's address.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatcher import chunker, keywords
from dispatcher.config import AccountConfig, Settings
from dispatcher.contacts import IngestResult, ingest, open_rows
from dispatcher.contacts.guard import SheetLimits
from dispatcher.contacts.headers import SAMPLE_ROWS, find_layout
from dispatcher.contacts.reader import sheet_names
from dispatcher.errors import InputError, SpreadsheetError
from dispatcher.i18n import N_
from dispatcher.labels import say
from dispatcher.text import display

SAMPLES = 10
SHOWN_REJECTED = 50
# A page shows a bounded part of whatever a file holds: a workbook of thousands of sheets or a cell of
# 32,767 characters is cut to what a person reads (the whole is still what a campaign is made of).
SHOWN_SHEETS = 200
SHOWN_CHARS = 200


@dataclass(frozen=True)
class Columns:
    sheet: str
    headers: tuple[str, ...]
    phone_column: str  # as detected (or as asked)
    header_row: int
    first_row: dict[str, str] = dataclasses.field(default_factory=dict)  # the first data row, as shown


@dataclass(frozen=True)
class Inspection:
    """What the compose page shows of an upload: its sheets and the chosen sheet's columns."""

    sheets: list[str]
    columns: Columns | None
    error: str | None  # why the columns could not be found (wrong sheet or phone column), in English
    error_msgid: str | None = None  # the same as data, for the page's language (DispatcherError.say)
    error_params: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inspection:
        columns = data["columns"]
        if columns is not None:
            columns = Columns(**{**columns, "headers": tuple(columns["headers"])})
        return cls(
            [str(s) for s in data["sheets"]],
            columns,
            data["error"],
            data.get("error_msgid"),
            data.get("error_params"),
        )

    def describe(self) -> str | None:
        """The error in the page's language."""
        if self.error is None:
            return None
        return say(self.error, self.error_msgid, self.error_params)


def columns(path: Path, sheet: str | None, phone_column: str | None, limits: SheetLimits) -> Columns:
    """The sheet's column names and its phone column, from its first rows (what the ingest will find)."""
    source = open_rows(path, sheet or None, limits)
    sample = []
    for number, cells in source.rows:
        if any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
            sample.append((number, cells))
            if len(sample) >= SAMPLE_ROWS:
                break
    if not sample:
        raise SpreadsheetError.say(N_("%(where)s: the sheet is empty"), where=source.where())
    layout = find_layout(
        sample, where=source.where(), phone_column=phone_column or None, first_column=source.first_column
    )
    first = next((cells for number, cells in sample if number > layout.header_row), ())
    values = {
        h: display(first[i])[:SHOWN_CHARS] if i < len(first) else ""
        for i, h in enumerate(layout.headers)
        if h
    }
    return Columns(
        source.sheet, layout.headers, layout.headers[layout.phone_index], layout.header_row, values
    )


def inspect(path: Path, sheet: str | None, phone_column: str | None, limits: SheetLimits) -> dict[str, Any]:
    """The sheets, and the columns of ``sheet``; a wrong phone column still offers the sheet's columns.
    An :class:`Inspection` as JSON-able data (:meth:`Inspection.from_json`)."""
    sheets = sheet_names(path, limits)[:SHOWN_SHEETS]
    try:
        found = Inspection(sheets, columns(path, sheet, phone_column, limits), None)
    except InputError as exc:
        cols = None
        if phone_column:
            try:
                cols = columns(path, sheet, None, limits)
            except InputError:
                cols = None
        found = Inspection(sheets, cols, str(exc), exc.msgid, exc.params)
    return dataclasses.asdict(found)


def preview(
    path: Path,
    account: AccountConfig,
    template: str,
    *,
    sheet: str | None,
    phone_column: str | None,
    opt_outs: frozenset[str],
    limits: SheetLimits,
    stored_keywords: Sequence[str] = (),
    each_number: bool = False,
    with_mobiles: bool = False,
) -> dict[str, Any]:
    """What the campaign would be: samples, counts, rejected rows, warnings, requests and cost.

    ``stored_keywords``: the account's vendor list from the store (``keywords.stored``);
    ``with_mobiles``: the numbers too (``"mobiles"``), for the frequency caps the parent reads."""
    result = ingest(
        path,
        template,
        sheet=sheet or None,
        phone_column=phone_column or None,
        opt_outs=opt_outs,
        rules=keywords.rules_for(account, stored_keywords),
        limits=limits,
        each_number=each_number,
    )
    chunks = chunker.plan(
        result.messages.mobiles,
        result.messages.texts,
        account.vendor,
        campaign_id=0,
        separators=account.separators(),
        same_text_max=account.same_text_max,
        encrypted=account.encrypted,
    )
    summary = summarise(result, chunks, account.price_per_segment)
    if with_mobiles:
        summary["mobiles"] = list(result.messages.mobiles)
    return summary


def summarise(result: IngestResult, chunks: list[chunker.PlannedChunk], price: Any) -> dict[str, Any]:
    messages = result.messages
    samples = [
        {"row": m.row, "mobile": m.mobile, "text": m.text, "segments": m.segments}
        for m in (messages[i] for i in range(min(SAMPLES, len(messages))))
    ]
    segments = result.segments
    return {
        "sheet": result.sheet,
        "phone_column": result.phone_column,
        "header_row": result.header_row,
        "rows": result.rows,
        "messages": len(messages),
        "segments": segments,
        "invalid": result.invalid,
        "duplicates": result.duplicates,
        "opted_out": result.opted_out,
        "requests": len(chunks),
        "by_method": chunker.by_method(chunks),
        "warnings": list(result.warnings),
        "notices": [[msgid, params] for msgid, params in result.notices],
        "samples": samples,
        "rejected_total": len(result.rejected),
        "rejected": [
            {
                "row": r.row,
                "column": r.column,
                "value": r.value[:SHOWN_CHARS],
                "mobile": r.mobile,
                "reason": r.reason,
                "code": r.code,
                "params": r.params,
                "kind": str(r.kind),
            }
            for r in result.rejected[:SHOWN_REJECTED]
        ],
        "price_per_segment": str(price) if price is not None else None,
        "cost": str(price * segments) if price is not None else None,
    }


SHOWN_CREATED_REJECTED = 1000  # rejected rows listed in a creation's answer (``rejected_total``: all)
SHOWN_CREATED_SEVERAL = 1000  # rows of several numbers listed in it (``several_numbers_total``: all)


def create(
    settings: Settings, path: Path, template: str, account: str, options: dict[str, Any]
) -> dict[str, Any]:
    """Make the campaign (:func:`dispatcher.campaigns.create`, in its own store connection): its id,
    state, message count and :func:`dispatcher.contacts.summary.summary`, bounded whatever the list: the
    first :data:`SHOWN_CREATED_REJECTED` rejected rows, each value cut to :data:`SHOWN_CHARS`, and the
    first :data:`SHOWN_CREATED_SEVERAL` rows of several numbers, with their totals (every row is in the
    store and the export)."""
    from dispatcher import campaigns
    from dispatcher.contacts.summary import summary
    from dispatcher.store import make_engine, session_factory

    engine = make_engine(settings.database_url)
    try:
        created = campaigns.create(session_factory(engine), settings, path, template, account, **options)
    finally:
        engine.dispose()
    full = created.result
    shown = dataclasses.replace(
        full,
        rejected=[
            dataclasses.replace(r, value=r.value[:SHOWN_CHARS])
            for r in full.rejected[:SHOWN_CREATED_REJECTED]
        ],
        several=full.several[:SHOWN_CREATED_SEVERAL],
    )
    data = summary(shown, created.chunks)
    data.update(
        valid=full.valid,
        invalid=full.invalid,
        duplicates=full.duplicates,
        opted_out=full.opted_out,
        rejected_total=len(full.rejected),
        several_numbers_total=len(full.several),
    )
    data.pop("file")
    return {"id": created.campaign_id, "state": created.state.value, "summary": data}


def for_child(settings: Settings) -> Settings:
    """``settings`` as a child gets them: no password, push token or signing key, and plain dicts
    (what a process can be handed)."""
    accounts = {
        name: dataclasses.replace(a, password="", push_token=None) for name, a in settings.accounts.items()
    }
    return dataclasses.replace(settings, accounts=accounts, secret_key=None)
