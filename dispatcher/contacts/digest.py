"""A contact list's fingerprint: what a campaign records of its upload, and what a schedule compares to
tell a new export from the one its previous campaign was made from."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The file's SHA-256 (hex), read in 1 MiB blocks: a large list never sits in memory for it."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
