"""Uploaded contact lists: saved under a random token with a size limit, then listed, previewed, used.

An upload lives in ``upload_dir/<token>/`` with the file and an ``owner`` file naming the user who sent
it; only that user (or an admin) may use the token. Uploads older than a day are swept on each new one.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import python_calamine

from dispatcher import chunker, keywords
from dispatcher.config import Settings
from dispatcher.contacts import IngestResult, ingest, open_rows
from dispatcher.contacts.headers import SAMPLE_ROWS, find_layout
from dispatcher.contacts.reader import CSV_SUFFIXES, SPREADSHEET_SUFFIXES
from dispatcher.errors import InputError, SpreadsheetError
from dispatcher.web.auth import CurrentUser

SUFFIXES = SPREADSHEET_SUFFIXES | CSV_SUFFIXES
MAX_AGE_S = 24 * 3600
SAMPLES = 10
SHOWN_REJECTED = 50
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_UNSAFE = re.compile(r"[^\w.\-]+")


class UploadTooLarge(InputError):
    pass


@dataclass(frozen=True)
class Upload:
    token: str
    path: Path
    name: str  # the file name as the user sent it (sanitised)
    size: int


def safe_name(filename: str) -> str:
    """A file name without directories or odd characters, keeping the suffix the reader goes by."""
    base = Path(filename.replace("\\", "/")).name
    cleaned = _UNSAFE.sub("_", base).strip("._") or "upload"
    return cleaned[-120:]


def save(upload_dir: Path, stream: BinaryIO, filename: str, owner: str, max_bytes: int) -> Upload:
    """Copy ``stream`` into a fresh token directory; refuses a file over ``max_bytes`` or of a wrong type."""
    name = safe_name(filename or "")
    if Path(name).suffix.lower() not in SUFFIXES:
        raise InputError(f"{name}: unsupported file type; upload an xlsx, xlsm, xls, ods or csv file")
    _sweep(upload_dir)
    token = secrets.token_urlsafe(18)
    folder = upload_dir / token
    folder.mkdir(parents=True)
    path = folder / name
    size = 0
    try:
        with path.open("wb") as out:
            while block := stream.read(1 << 20):
                size += len(block)
                if size > max_bytes:
                    raise UploadTooLarge(
                        f"{name}: the file is larger than the limit of {max_bytes // (1024 * 1024)} MB"
                    )
                out.write(block)
        if size == 0:
            raise InputError(f"{name}: the file is empty")
    except InputError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    (folder / ".owner").write_text(owner, encoding="utf-8")
    return Upload(token, path, name, size)


def find(upload_dir: Path, token: str, user: CurrentUser) -> Upload:
    """The upload of ``token`` if ``user`` may use it; ``InputError`` otherwise (same message either way)."""
    missing = InputError("this upload does not exist or has expired: upload the file again")
    if not _TOKEN_RE.fullmatch(token):
        raise missing
    folder = upload_dir / token
    try:
        owner = (folder / ".owner").read_text(encoding="utf-8")
        files = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        raise missing from None
    if not files or (owner != user.name and user.role != "admin"):
        raise missing
    path = files[0]
    return Upload(token, path, path.name, path.stat().st_size)


def discard(upload: Upload) -> None:
    shutil.rmtree(upload.path.parent, ignore_errors=True)


def _sweep(upload_dir: Path) -> None:
    upload_dir.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - MAX_AGE_S
    for folder in upload_dir.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def sheet_names(path: Path) -> list[str]:
    """The workbook's sheets ([] for CSV, which has none)."""
    if path.suffix.lower() in CSV_SUFFIXES:
        return []
    try:
        return list(python_calamine.CalamineWorkbook.from_path(str(path)).sheet_names)
    except Exception as exc:  # calamine raises its own errors, zip errors, ValueError on junk
        raise SpreadsheetError(f"{path.name}: cannot read the file as a spreadsheet ({exc})") from None


@dataclass(frozen=True)
class Columns:
    sheet: str
    headers: tuple[str, ...]
    phone_column: str  # as detected (or as asked)
    header_row: int


def columns(path: Path, sheet: str | None, phone_column: str | None = None) -> Columns:
    """The sheet's column names and its phone column, from its first rows (what the ingest will find)."""
    source = open_rows(path, sheet or None)
    sample = []
    for number, cells in source.rows:
        if any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
            sample.append((number, cells))
            if len(sample) >= SAMPLE_ROWS:
                break
    if not sample:
        raise SpreadsheetError(f"{source.where()}: the sheet is empty")
    layout = find_layout(
        sample, where=source.where(), phone_column=phone_column or None, first_column=source.first_column
    )
    return Columns(source.sheet, layout.headers, layout.headers[layout.phone_index], layout.header_row)


def preview(
    path: Path,
    settings: Settings,
    account_name: str,
    template: str,
    *,
    sheet: str | None,
    phone_column: str | None,
    opt_outs: frozenset[str],
    stored_keywords: Sequence[str] = (),
) -> dict[str, Any]:
    """What the campaign would be: samples, counts, rejected rows, warnings, requests and cost.

    ``stored_keywords``: the account's vendor list from the store (``keywords.stored``)."""
    account = settings.account(account_name)
    result = ingest(
        path,
        template,
        sheet=sheet or None,
        phone_column=phone_column or None,
        opt_outs=opt_outs,
        rules=keywords.rules_for(account, stored_keywords),
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
    return summarise(result, chunks, account.price_per_segment)


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
        "samples": samples,
        "rejected_total": len(result.rejected),
        "rejected": [
            {"row": r.row, "column": r.column, "value": r.value, "reason": r.reason, "kind": str(r.kind)}
            for r in result.rejected[:SHOWN_REJECTED]
        ],
        "price_per_segment": str(price) if price is not None else None,
        "cost": str(price * segments) if price is not None else None,
    }
