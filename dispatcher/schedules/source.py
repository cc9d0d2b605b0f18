"""Which file a firing reads: the source names a file, a folder (its newest contact list) or a glob
(``/exports/members-*.xlsx``: the newest match). A CRM drops its exports there; the newest wins."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from dispatcher.contacts.digest import file_sha256
from dispatcher.errors import InputError
from dispatcher.i18n import N_

CONTACT_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".csv", ".txt", ".et"})
# A file still being written (a CRM's export in progress) is skipped: its name says so.
PARTIAL_SUFFIXES = frozenset({".part", ".tmp", ".crdownload", ".partial"})


@dataclass(frozen=True)
class SourceFile:
    path: Path
    sha256: str


def _candidates(spec: str) -> list[Path]:
    path = Path(spec).expanduser()
    if glob.has_magic(spec):
        return [Path(p) for p in glob.glob(str(path)) if Path(p).is_file()]
    if path.is_dir():
        return [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CONTACT_SUFFIXES]
    return [path] if path.is_file() else []


def newest(spec: str) -> SourceFile:
    """The newest contact list ``spec`` names (by modification time, then name), with its SHA-256.
    Raises :class:`InputError` naming ``spec`` when nothing matches."""
    files = [
        p
        for p in _candidates(spec)
        if not p.name.startswith((".", "~$")) and p.suffix.lower() not in PARTIAL_SUFFIXES
    ]
    if not files:
        raise InputError.say(N_("no contact list found at %(source)s"), source=spec)
    chosen = max(files, key=lambda p: (p.stat().st_mtime, p.name))
    return SourceFile(chosen, file_sha256(chosen))


def describe(spec: str) -> str:
    """How a person reads ``spec``: a folder, a pattern or a file."""
    if glob.has_magic(spec):
        return "pattern"
    return "folder" if Path(spec).expanduser().is_dir() else "file"
