"""Fingerprints of the store, broker and Redis a process uses. The store's is its identity, a random id
the database holds (``store.identity``, migration 0018): the same SQLite path in two containers is two
stores, ``postgresql://`` and ``postgresql+psycopg://`` of one database one. A store that cannot tell
(unreachable, before 0018) and the broker and Redis are named by their URL: the first 12 hex digits of
the SHA-256 of the URL with its password removed (a password must not be guessable from a heartbeat:
hashing it would let anyone who reads Redis try candidates); a SQLite file by its absolute path, so
two directories' ``dispatcher.sqlite3`` differ."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from dispatcher.config import Settings, sqlite_file_dir

_QUERY_SECRET = re.compile(r"(?i)([?&;](?:password|passwd|pwd|pass)=)[^&;#]*")
_LOOPBACK_HOSTS = ("127.", "localhost", "[::1]", "::1")


def without_password(url: str) -> str:
    """``url`` with the password of its user part removed (``u:pw@h`` → ``u@h``, ``:pw@h`` → ``h``) and
    of a ``password=`` query parameter; each of several URLs joined by ``;`` (kombu's failover)."""
    return ";".join(_without_password(part) for part in url.split(";"))


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # The user part ends at the last "@" before the query: a password may hold "@" and "/" alike.
    at = re.split(r"[?#]", rest, maxsplit=1)[0].rfind("@")
    if at >= 0 and ":" in rest[:at]:
        user, remainder = rest[:at].split(":", 1)[0], rest[at + 1 :]
        rest = f"{user}@{remainder}" if user else remainder
    return _QUERY_SECRET.sub(r"\1", f"{scheme}{sep}{rest}")


def canonical(url: str, cwd: Path | None = None) -> str:
    """The URL as compared: no password; a SQLite (or SQLite broker) file by its absolute path."""
    url = without_password(url)
    scheme, sep, rest = url.partition(":///")
    if sep and "sqlite" in scheme and rest and not rest.startswith(":memory:"):
        directory = sqlite_file_dir(f"sqlite:///{rest}", cwd)
        if directory is not None:
            path, _, query = rest.partition("?")
            url = f"{scheme}:///{directory / Path(path).name}" + (f"?{query}" if query else "")
    return url


def fingerprint(url: str, cwd: Path | None = None) -> str:
    return hashlib.sha256(canonical(url, cwd).encode()).hexdigest()[:12]


def store_fingerprint(database_url: str) -> str:
    """The store's identity (its id and place, hashed), else the URL's fingerprint."""
    from dispatcher.store.identity import store_id

    found = store_id(database_url)
    return hashlib.sha256(found.encode()).hexdigest()[:12] if found else fingerprint(database_url)


def host_of(url: str) -> str:
    """The host part of a URL ('' for a file or an in-process one)."""
    match = re.match(r"[^:]+://(?:[^@/]*@)?(\[[^\]]*\]|[^:/?]*)", url)
    return match.group(1) if match else ""


def is_loopback(url: str) -> bool:
    return host_of(url).startswith(_LOOPBACK_HOSTS)


@dataclass(frozen=True)
class Fingerprints:
    store: str
    broker: str
    limiter: str

    @classmethod
    def of(cls, settings: Settings) -> Fingerprints:
        return cls(
            store_fingerprint(settings.database_url),
            fingerprint(settings.broker_url),
            fingerprint(settings.redis_url),
        )
