"""An account's forbidden words, and the text rules its gateway enforces, checked before anything is sent.

The forbidden words are the account's configured ``keywords`` plus the list its vendor gives: yunxin's
``GetKeyWords`` (云信 API v8.3) lists the words of the account's channel, which ``dispatcher keywords pull``
and the beat (daily) store in ``vendor_keywords``, each pull replacing the account's list. A template
holding one is refused, and a rendered text holding one rejects its row, naming the word: the gateway
would answer ``-6:word`` for every recipient.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from dispatcher.config import AccountConfig
from dispatcher.errors import DispatcherError, UnsupportedMethodError
from dispatcher.store import VendorKeyword, audit, utcnow
from dispatcher.text import TextRules
from dispatcher.vendors import SIGNATURE_LAST, entinfo, yunxin

if TYPE_CHECKING:
    from dispatcher.runtime import Runtime
    from dispatcher.vendors.transport import Transport

logger = logging.getLogger(__name__)
LIMITER_WAIT = 30.0  # seconds a refresh waits for the account's rate-limit token

LISTING_VENDORS = frozenset({"yunxin"})  # vendors with a keyword list method
MAX_WORD = 200  # characters of vendor_keywords.word


@dataclass(frozen=True)
class Pulled:
    account: str
    words: int  # now stored for the account
    added: int
    removed: int


def stored(session: Session, account: str) -> tuple[str, ...]:
    """The vendor's forbidden words last pulled for ``account`` (none before the first pull)."""
    rows = session.execute(
        select(VendorKeyword.word).where(VendorKeyword.account == account).order_by(VendorKeyword.word)
    )
    return tuple(rows.scalars())


def rules_for(account: AccountConfig, stored_words: Iterable[str] = ()) -> TextRules:
    """What ``account``'s gateway refuses: its forbidden words (configured and stored), a ``&`` when it
    sends encrypted, and Entinfo's length limit."""
    words = tuple(dict.fromkeys((*account.keywords, *stored_words)))
    return replace(vendor_rules(account.vendor), keywords=words, encrypted=account.encrypted)


def vendor_rules(vendor: str) -> TextRules:
    """What ``vendor``'s gateway refuses in any account's text: Entinfo's length limit (-10), and where
    the 【signature】 may go (last for webservice and yunxin, whose documents say so; first or last for
    the others)."""
    signature_first = vendor not in SIGNATURE_LAST
    if vendor == "entinfo":
        limits = (entinfo.MAX_SINGLE_BYTE_CHARS, entinfo.MAX_DOUBLE_BYTE_CHARS)
        return TextRules(max_chars=limits, signature_first=signature_first)
    return TextRules(signature_first=signature_first)


def rules(session: Session, account: AccountConfig) -> TextRules:
    return rules_for(account, stored(session, account.name))


def fetch(account: AccountConfig, transport: Transport) -> list[str]:
    """The vendor's forbidden words for ``account``; ``VendorError`` on an error answer (an empty list
    would let every text through)."""
    if account.vendor not in LISTING_VENDORS:
        raise UnsupportedMethodError(
            f"{account.vendor} has no keyword list method (account {account.name!r})"
        )
    body = transport.send(yunxin.build_keywords(account.credentials())).text
    return yunxin.parse_keywords(body)


def save(session: Session, account: str, words: Sequence[str], actor: str) -> Pulled:
    """Replace ``account``'s stored words with ``words`` and audit it (in the caller's transaction).

    Safe when two refreshes of one account run at once (``keywords pull`` during the beat's): they take
    turns, and the account ends with the later one's list. PostgreSQL: a transaction-scoped advisory lock
    of the account; SQLite: the ``DELETE`` comes first, and a SQLite database has one writer at a time.
    """
    wanted: dict[str, None] = {}
    for word in words:
        if len(word) > MAX_WORD:
            logger.warning(
                "account %s: keyword of %d characters not stored: %.40s...", account, len(word), word
            )
            continue
        wanted[word] = None
    if session.connection().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_lock_id(account))))
    before = set(
        session.execute(
            delete(VendorKeyword).where(VendorKeyword.account == account).returning(VendorKeyword.word)
        ).scalars()
    )
    now = utcnow()
    if wanted:
        session.execute(
            insert(VendorKeyword), [{"account": account, "word": w, "pulled_at": now} for w in wanted]
        )
    added = sum(1 for w in wanted if w not in before)
    removed = sum(1 for w in before if w not in wanted)
    audit(session, actor, "keywords.pull", account=account, words=len(wanted), added=added, removed=removed)
    return Pulled(account, len(wanted), added, removed)


def _lock_id(account: str) -> int:
    """The PostgreSQL advisory lock of one account's keyword list (a signed 64-bit number)."""
    digest = hashlib.blake2b(f"vendor_keywords:{account}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def pull(session: Session, account: AccountConfig, transport: Transport, actor: str) -> Pulled:
    """Fetch the vendor's list and store it, committed."""
    pulled = save(session, account.name, fetch(account, transport), actor)
    session.commit()
    return pulled


def refresh(runtime: Runtime, actor: str = "beat") -> dict[str, str]:
    """Pull the list of every account whose vendor has one (the beat's daily task); returns, per account,
    what happened. One account failing (its gateway down, a bad password) does not stop the others."""
    outcome: dict[str, str] = {}
    for account in runtime.settings.accounts.values():
        if account.vendor not in LISTING_VENDORS:
            continue
        sender = runtime.account(account.name)
        if sender.limiter is not None and not sender.limiter.acquire(timeout=LIMITER_WAIT):
            outcome[account.name] = "skipped: no rate-limit token in time"
            continue
        try:
            with runtime.sessions() as session:
                pulled = pull(session, account, sender.transport, actor)
        except DispatcherError as exc:
            logger.warning("keywords of account %s not refreshed: %s", account.name, exc)
            outcome[account.name] = f"failed: {exc}"
            continue
        outcome[account.name] = f"{pulled.words} words (+{pulled.added}, -{pulled.removed})"
    return outcome
