"""``campaign export``: one row per input row, in input order, streamed into xlsx (write-only) or CSV.

Said in Chinese or English (``lang``): headers, states, what a vendor code means (the account's own
code table, ``extra_codes`` included, or what a report's status means), why a row was not sent
("第 12 行，手机号码列：不是大陆手机号"). Times are China time, the zone named in the header. Every row keeps
its phone number, whatever the reason it was not sent, and the list's own columns follow the
dispatcher's, so that the export can be filtered and used again as a list.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ClauseElement, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

from dispatcher import i18n, reasons
from dispatcher.config import Settings
from dispatcher.contacts.cells import RowCells
from dispatcher.contacts.guard import DEFAULT_LIMITS, SheetLimits
from dispatcher.errors import DispatcherError, InputError, NotFoundError
from dispatcher.i18n import N_
from dispatcher.results.export import Cell, write_rows
from dispatcher.store import Campaign, Chunk, Recipient, RecipientState, UnknownRequest, Upload
from dispatcher.store.recipients import recipient_text
from dispatcher.vendors import NO_REPORTS
from dispatcher.vendors.registry import VendorModule
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.statuses import VENDOR_LABELS, status_meaning

log = logging.getLogger(__name__)

# (header, column width in characters)
COLUMNS = (
    (N_("row"), 7),
    (N_("mobile"), 14),
    (N_("text"), 48),
    (N_("segments"), 8),
    (N_("state"), 10),
    (N_("vendor code"), 12),
    (N_("meaning"), 28),
    (N_("batch id"), 22),
    (N_("submitted at (China time)"), 20),
    (N_("delivered at (China time)"), 20),
    (N_("reject reason"), 40),
    (N_("account"), 16),  # the account that sent it (issue 14: failover)
    (N_("variant"), 8),  # its A/B template (issue 14)
)
HEADER = tuple(name for name, _ in COLUMNS)  # the English header (csv's default)
INPUT_WIDTH = 14  # characters, each of the list's own columns
SHEET = N_("results")  # the xlsx sheet's tab
FETCH = 10_000
RESENT = N_("sent again by itself: nothing showed that its first request was taken")
SENT_TWICE = N_("sent twice: reports came for its first request and for its re-send")
LANGS = {"zh": "zh_CN", "en": "en"}


def language(lang: str | None, path: Path) -> str:
    """The catalog locale of ``--lang`` (``zh`` or ``en``): by default Chinese for xlsx, English for csv."""
    if lang is None:
        return "en" if path.suffix.lower() == ".csv" else "zh_CN"
    locale = LANGS.get(lang) or i18n.normalise(lang)
    if locale is None:
        raise InputError(f"--lang must be zh or en, not {lang!r}")
    return locale


def _meaning(module: VendorModule, state: str, code: str | None) -> str:
    """What the vendor's code or the report's status means (not the state again); without one, why
    the row has none."""
    _ = i18n.gettext
    chinese = i18n.current() == "zh_CN"
    if code:
        if code.lstrip("-").isdigit():
            info = module.classify(int(code))
            return info.meaning if chinese else info.meaning_en
        return status_meaning(code, chinese)
    if state == RecipientState.EXPIRED:
        return _("no delivery report within 72 h")
    if state == RecipientState.ACCEPTED and module.NAME in NO_REPORTS:
        return _("accepted by the vendor (entinfo has no delivery reports)")
    if state == RecipientState.CANCELLED:
        return _("not sent: the campaign was cancelled")
    if state == RecipientState.CAPPED:
        return _("not sent: the number reached its frequency cap")
    return ""


class _Codes:
    """Each account's vendor module as that account uses it (its ``extra_codes``), once per account."""

    def __init__(self, settings: Settings | None, campaign: Campaign) -> None:
        moves = (campaign.routing or {}).get("moves", [])
        # After a failover, a recipient settled on an earlier account is said in that account's codes.
        self.vendor_of = {m.get("from"): m.get("from_vendor") or campaign.vendor for m in moves}
        self.vendor_of[campaign.account] = campaign.vendor
        self.settings = settings
        self.modules: dict[str, VendorModule] = {}

    def module(self, account: str) -> VendorModule:
        found = self.modules.get(account)
        if found is None:
            vendor = self.vendor_of.get(account) or next(iter(self.vendor_of.values()))
            configured = self.settings.accounts.get(account) if self.settings is not None else None
            use = configured if configured is not None and configured.vendor == vendor else None
            found = self.modules[account] = use.vendor_module() if use is not None else vendor_module(vendor)
        return found


ACCOUNT_LABEL = N_("%(account)s (%(vendor)s)")  # an account and its vendor's name


def _account_label(account: str, vendor: str) -> str:
    """``yx（云信）``: the account, and its vendor as the reader calls it."""
    if vendor not in VENDOR_LABELS:
        return account
    return i18n.gettext(ACCOUNT_LABEL) % {"account": account, "vendor": i18n.gettext(VENDOR_LABELS[vendor])}


OwnRows = Iterator[tuple[int, list[str]]]
_NO_MORE = 1 << 62  # past any row: the list has no more rows
# Runs ``list_rows`` on the stored list: in this process by default (the command line), in a
# memory-limited child for the web app (``Sandbox.run``: the file's name, the function, its arguments).
ListReader = Callable[..., Any]


def _in_process(what: str, func: Callable[..., Any], *args: Any) -> Any:
    return func(*args)


def list_rows(
    path: Path, out: Path, headers: list[str], header_row: int, sheet: str | None, limits: SheetLimits
) -> list[str]:
    """Read the list at ``path`` and write each data row that has a value to ``out``, one JSON line
    ``[row, cells]`` each; the list's column names. Plain values in and out: run in a child."""
    cells = RowCells(headers, header_row, limits)
    source = cells.open(path, sheet)
    with out.open("w", encoding="utf-8") as f:
        for number, shown in cells.read(source):
            if any(shown):
                f.write(json.dumps([number, shown], ensure_ascii=False) + "\n")
    return cells.headers


def _stored_rows(out: Path) -> OwnRows:
    with out.open(encoding="utf-8") as f:
        for line in f:
            number, shown = json.loads(line)
            yield int(number), [str(v) for v in shown]


def own_cells(
    session: Session,
    campaign_id: int,
    folder: Path,
    limits: SheetLimits,
    read_list: ListReader = _in_process,
) -> tuple[list[str], OwnRows]:
    """The list's own column names and its data rows, read from the list kept with the campaign's upload
    (written to ``folder`` for the reader, by ``read_list``); none for a campaign stored before lists
    were kept. The rows come back through a file, a line at a time: whatever the list costs to read
    is the reader's (a child's, for the web app), never the caller's."""
    upload = session.execute(
        select(Upload.content, Upload.file_name, Upload.sheet, Upload.header_row, Upload.headers)
        .where(Upload.campaign_id == campaign_id)
        .order_by(Upload.id)
        .limit(1)
    ).first()
    if upload is None or upload.content is None or upload.headers is None:
        return [], iter(())
    folder = folder / "list"  # the list under its own name (errors name it), the reader going by its suffix
    folder.mkdir()
    name = Path(Path(upload.file_name).name)
    path = folder / ((name.stem or "list") + name.suffix.lower())
    path.write_bytes(upload.content)
    out = folder.parent / "rows.jsonl"
    headers = read_list(
        upload.file_name,
        list_rows,
        path,
        out,
        [str(h) for h in upload.headers],
        upload.header_row or 0,
        upload.sheet or None,
        limits,
    )
    path.unlink()
    return [str(h) for h in headers], _stored_rows(out)


def rows(
    session: Session,
    campaign_id: int,
    settings: Settings | None = None,
    width: int = 0,
    own_rows: OwnRows = iter(()),
) -> Iterator[list[Cell]]:
    """The export's rows, said in the current language (``i18n.use``), each followed by ``width`` cells
    of the list's own columns: those of ``own_rows`` (row number, cells), in the list's order.

    A million rows must export in seconds: the rows come as plain tuples in batches, and what repeats
    from row to row (a state's label, what a code means, an account's label, a time's China time) is
    worked out once and looked up after."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    codes = _Codes(settings, campaign)
    blank = [""] * width
    own_row, own = 0, blank  # the list's row at hand: recipients come in input order, as its rows do
    # Sent again by the beat after an unknown outcome settled itself (``settle_unknown_after``): few,
    # so one query for them all rather than a look-up per row.
    resent = set(
        session.execute(
            select(UnknownRequest.recipient_id)
            .join(Recipient, Recipient.id == UnknownRequest.recipient_id)
            .where(Recipient.campaign_id == campaign_id, UnknownRequest.automatic)
        ).scalars()
    )
    query = (
        select(
            Recipient.id,
            Recipient.row_number,
            Recipient.mobile,
            Recipient.raw_value,
            recipient_text(),  # a same-text chunk's recipients keep their text in the chunk
            Recipient.segments,
            Recipient.state,
            Recipient.report_status,
            Recipient.vendor_code,
            Recipient.batch_id,
            Recipient.submitted_at,
            Recipient.delivered_at,
            Recipient.reject_reason,
            Recipient.reject_code,
            Recipient.reject_params,
            Recipient.account,
            Recipient.variant,
            Recipient.sent_twice,
        )
        .outerjoin(Chunk, Chunk.id == Recipient.chunk_id)
        .where(Recipient.campaign_id == campaign_id)
        .order_by(Recipient.position, Recipient.id)
    )
    rejected, home = RecipientState.REJECTED.value, campaign.account
    states: dict[str, str] = {}
    meanings: dict[tuple[str, str, str | None], str] = {}  # (account, state, code) -> meaning
    accounts: dict[str, tuple[VendorModule, str]] = {}  # account -> its module and label
    times: dict[Any, datetime] = {}  # stored time -> China time: a chunk's recipients share theirs
    for (
        rid,
        row,
        mobile,
        raw,
        text,
        segments,
        state,
        status,
        code,
        batch_id,
        sent,
        delivered,
        reason,
        reason_code,
        params,
        account,
        variant,
        twice,
    ) in _driver_rows(session, query):  # fmt: skip
        vendor_code = status or code
        sent_by = None if state == rejected else (account or home)
        key = (sent_by or home, state, vendor_code)
        meaning = meanings.get(key)
        if meaning is None:
            module, _label = accounts.get(key[0]) or _account(accounts, codes, key[0])
            meaning = meanings[key] = _meaning(module, state, vendor_code)
        label = states.get(state) or states.setdefault(state, i18n.pgettext("recipient", state))
        if sent is not None:
            sent = times.get(sent) or _china(times, sent)
        if delivered is not None:
            delivered = times.get(delivered) or _china(times, delivered)
        if reason or reason_code:
            why = _reason(row, reason, reason_code, json.loads(params) if type(params) is str else params)
        else:
            why = _resent(rid in resent, bool(twice))
        while own_row < row:  # several recipients of one row (each of its numbers) share its cells
            own_row, own = next(own_rows, (_NO_MORE, blank))
        mine = own if own_row == row else blank
        yield [
            row,
            mobile or raw,
            text,
            segments,
            label,
            vendor_code,
            meaning,
            batch_id,
            sent,
            delivered,
            why,
            None if sent_by is None else (accounts.get(sent_by) or _account(accounts, codes, sent_by))[1],
            variant,
            *(mine if len(mine) == width else mine[:width] + blank[len(mine) :]),
        ]
        if len(times) > 100_000:  # a campaign sent over days: keep the cache small
            times.clear()


def _account(
    accounts: dict[str, tuple[VendorModule, str]], codes: _Codes, account: str
) -> tuple[VendorModule, str]:
    module = codes.module(account)
    found = accounts[account] = (module, _account_label(account, module.NAME))
    return found


def _china(times: dict[Any, datetime], stored: Any) -> datetime:
    """A stored time (SQLite: naive UTC text; PostgreSQL: an aware datetime) in China time."""
    at = datetime.fromisoformat(stored) if type(stored) is str else stored
    local = times[stored] = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(i18n.CHINA)
    return local


def _driver_rows(session: Session, query: ClauseElement) -> Iterator[Sequence[Any]]:
    """The query's rows as the database driver gives them, in batches: no type conversion per value
    (times and JSON stay as stored: the caller converts the few it needs, once each)."""
    connection = session.connection()
    compiled = cast(SQLCompiler, query.compile(dialect=connection.dialect))
    params: Any = compiled.params
    if compiled.positiontup is not None:  # SQLite's "?" placeholders
        params = tuple(compiled.params[name] for name in compiled.positiontup)
    driver: Any = connection.connection.dbapi_connection
    # PostgreSQL: a server-side cursor, so a million rows are not all held at once (SQLite steps anyway).
    cursor = (
        driver.cursor(name="campaign_export") if connection.dialect.name == "postgresql" else driver.cursor()
    )
    try:
        cursor.execute(str(compiled), params)
        while batch := cursor.fetchmany(FETCH):
            yield from batch
    finally:
        cursor.close()


def _resent(again: bool, twice: bool) -> str | None:
    if twice:
        return i18n.gettext(SENT_TWICE)
    return i18n.gettext(RESENT) if again else None


def _reason(row: int, english: str | None, code: str | None, params: dict[str, Any] | None) -> str | None:
    if not english and not code:
        return None
    column = str((params or {}).get("column") or "")
    return reasons.at_row(row, column, code, params, english)


DOWNLOAD_NAME = N_("campaign-%(id)s-results")


def download_name(campaign_id: int, path: Path, lang: str | None = None) -> str:
    """The name a downloaded export is saved under, in the export's language: 活动12-发送结果.xlsx."""
    with i18n.use(language(lang, path)):
        return i18n.gettext(DOWNLOAD_NAME) % {"id": campaign_id} + path.suffix.lower()


def export(
    session: Session,
    campaign_id: int,
    path: Path,
    lang: str | None = None,
    settings: Settings | None = None,
    read_list: ListReader | None = None,
) -> int:
    """Write the campaign's rows to ``path`` (.xlsx or .csv) in ``lang``; returns how many. ``settings``
    gives each account's own code table (``extra_codes``). ``read_list`` reads the stored list (the web
    app's sandbox): its errors are raised, for the person to see; without it the list is read here, and
    a list that does not read is left out (the results matter more than the list's columns)."""
    limits = settings.sheet_limits if settings is not None else DEFAULT_LIMITS
    with i18n.use(language(lang, path)), tempfile.TemporaryDirectory(prefix="dispatcher-export-") as tmp:
        try:
            own, own_rows = own_cells(session, campaign_id, Path(tmp), limits, read_list or _in_process)
        except DispatcherError as exc:
            if read_list is not None:
                raise
            log.warning("campaign %s: exported without the list's own columns: %s", campaign_id, exc)
            own, own_rows = [], iter(())
        header = [i18n.gettext(name) for name, _ in COLUMNS] + own
        widths = [w for _, w in COLUMNS] + [INPUT_WIDTH] * len(own)
        found = rows(session, campaign_id, settings, len(own), own_rows)
        return write_rows(path, header, found, widths=widths, sheet=i18n.gettext(SHEET))
