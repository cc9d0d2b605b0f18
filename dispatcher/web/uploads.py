"""Uploaded contact lists: saved under a random token with a size limit, then listed, previewed, used.

An upload lives in ``upload_dir/<token>/`` with the file and an ``owner`` file naming the user who sent
it; only that user (or an admin) may use the token. Uploads older than a day are swept on each new one,
and so are the sender's own beyond their latest :data:`KEPT_PER_USER` (else a script could fill the disk).
The file is only ever read in a child process (:mod:`dispatcher.web.parsing` through the sandbox),
making the campaign included.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from dispatcher import campaigns, keywords
from dispatcher.contacts.reader import CSV_SUFFIXES, SPREADSHEET_SUFFIXES
from dispatcher.errors import InputError
from dispatcher.i18n import N_
from dispatcher.store.caps import would_cap
from dispatcher.web import parsing
from dispatcher.web.auth import CurrentUser
from dispatcher.web.context import WebContext

SUFFIXES = SPREADSHEET_SUFFIXES | CSV_SUFFIXES
MAX_AGE_S = 24 * 3600
KEPT_PER_USER = 20
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
        raise InputError.say(
            N_("%(name)s: unsupported file type; upload an xlsx, xlsm, xls, ods or csv file"), name=name
        )
    token = secrets.token_urlsafe(18)
    folder = upload_dir / token
    _reserve(upload_dir, folder, owner)
    path = folder / name
    size = 0
    try:
        with path.open("wb") as out:
            while block := stream.read(1 << 20):
                size += len(block)
                if size > max_bytes:
                    raise UploadTooLarge.say(
                        N_("%(name)s: the file is larger than the limit of %(mb)s MB"),
                        name=name,
                        mb=max_bytes // (1024 * 1024),
                    )
                out.write(block)
        if size == 0:
            raise InputError.say(N_("%(name)s: the file is empty"), name=name)
        if not (folder / ".owner").exists():  # swept meanwhile: the owner's newer uploads took its place
            raise InputError.say(
                N_("%(name)s: more than %(count)s uploads at once; upload it again"),
                name=name,
                count=KEPT_PER_USER,
            )
    except InputError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Upload(token, path, name, size)


def _reserve(upload_dir: Path, folder: Path, owner: str) -> None:
    """Make ``folder`` ``owner``'s newest upload, sweeping the old ones, under a lock that every request
    (and every web process) shares: each upload counts against the quota from its first byte, so that
    many sent at once cannot each find room for themselves."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    lock = os.open(upload_dir, os.O_RDONLY)  # the directory itself is the lock: nothing left in it
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _sweep(upload_dir, owner)
        folder.mkdir()
        (folder / ".owner").write_text(owner, encoding="utf-8")
    finally:
        os.close(lock)  # and the lock with it


def find(upload_dir: Path, token: str, user: CurrentUser) -> Upload:
    """The upload of ``token`` if ``user`` may use it; ``InputError`` otherwise (same message either way)."""
    missing = InputError.say(N_("this upload does not exist or has expired: upload the file again"))
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


def _sweep(upload_dir: Path, owner: str) -> None:
    """Drop uploads older than a day, and ``owner``'s beyond their latest ``KEPT_PER_USER - 1`` (a new
    one is coming), those still being received included."""
    cutoff = time.time() - MAX_AGE_S
    mine: list[tuple[int, Path]] = []
    for folder in upload_dir.iterdir():
        try:
            if not folder.is_dir():
                continue
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
            elif (folder / ".owner").read_text(encoding="utf-8") == owner:
                mine.append(((folder / ".owner").stat().st_mtime_ns, folder))
        except OSError:  # gone meanwhile
            continue
    for _, folder in sorted(mine)[: max(0, len(mine) - KEPT_PER_USER + 1)]:
        shutil.rmtree(folder, ignore_errors=True)


def inspect(
    ctx: WebContext, upload: Upload, sheet: str | None, phone_column: str | None
) -> parsing.Inspection:
    """The upload's sheets and columns, read in the sandbox."""
    limits = ctx.settings.sheet_limits
    found = ctx.sandbox.run(
        upload.name,
        parsing.inspect,
        upload.path,
        sheet,
        phone_column,
        limits,
        timeout_s=ctx.settings.preview_timeout_s,
    )
    return parsing.Inspection.from_json(found)


def preview(
    ctx: WebContext,
    upload: Upload,
    account_name: str,
    template: str,
    sheet: str,
    phone_column: str,
    *,
    for_page: bool = True,
    each_number: bool = False,
) -> dict[str, Any]:
    """The campaign the upload would make (:func:`parsing.preview`), read in the sandbox: within
    ``preview_timeout_s`` for a page, ``parse_timeout_s`` before creating the campaign. With a
    frequency cap on the account, ``"capped"``: how many the caps would hold back if sent now."""
    account = dataclasses.replace(
        ctx.settings.account(account_name), password="", push_token=None
    )  # no secrets to the child
    caps = ctx.settings.caps_for(account_name) if for_page else ()  # a page's figure only
    with ctx.sessions() as session:
        opted_out = campaigns.opt_out_set(session)
        stored_keywords = keywords.stored(session, account_name)
    result = ctx.sandbox.run(
        upload.name,
        functools.partial(
            parsing.preview,
            sheet=sheet or None,
            phone_column=phone_column or None,
            opt_outs=opted_out,
            stored_keywords=stored_keywords,
            limits=ctx.settings.sheet_limits,
            each_number=each_number,
            with_mobiles=bool(caps),
        ),
        upload.path,
        account,
        template,
        timeout_s=ctx.settings.preview_timeout_s if for_page else ctx.settings.parse_timeout_s,
    )
    # The child's numbers: only strings reach the store's query (bound, never spliced into SQL).
    mobiles = [m for m in result.pop("mobiles", None) or () if isinstance(m, str)]
    result["capped"] = None
    if caps:
        with ctx.sessions() as session:
            result["capped"] = int(would_cap(session.connection(), caps, mobiles)["capped"])
    return result
