"""An account's current error on its report and reply pulls, in the store: the one place the pullers
(to back off), the web app (a banner on every page) and the CLI read it.

Gateways lock an account after repeated wrong passwords, so a pull refused for an account error is not
tried again every few seconds: the account waits :func:`delay` (one minute, doubling to half an hour)
after each refusal, until a pull succeeds (:func:`clear`) or its configuration changes (the row's
``config_hash`` no longer matches: the error is stale, the next pull goes at once).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dispatcher.config import AccountConfig, Settings
from dispatcher.store.models import AccountError
from dispatcher.store.types import utcnow

FIRST_DELAY_S = 60.0
MAX_DELAY_S = 1800.0


def delay(failures: int) -> float:
    """Seconds an account waits after its ``failures``-th refusal in a row."""
    return min(MAX_DELAY_S, FIRST_DELAY_S * 2.0 ** max(0, failures - 1))


@lru_cache(maxsize=64)
def _config_hash(fields: tuple[str, ...], password: str) -> str:
    # scrypt: the store never holds the password, nor a hash of it that is cheap to guess from.
    derived = hashlib.scrypt(password.encode(), salt="\0".join(fields).encode(), n=2**14, r=8, p=1, dklen=32)
    return hashlib.sha256("\0".join(fields).encode() + derived).hexdigest()


def config_hash(config: AccountConfig) -> str:
    """What the account's pulls depend on: a change of any of it may have fixed the error."""
    fields = (config.name, config.vendor, config.base_url, config.backup_url or "", config.user,
              config.channel, str(config.encrypted), config.service_path or "")  # fmt: skip
    return _config_hash(fields, config.password)


@dataclass(frozen=True)
class Current:
    account: str
    kind: str
    code: int | None
    meaning: str
    meaning_en: str
    failures: int
    since: datetime
    retry_at: datetime


def _current(row: AccountError) -> Current:
    return Current(row.account, row.kind, row.code, row.meaning, row.meaning_en, row.failures, row.since,
                   row.retry_at)  # fmt: skip


def current(session: Session, config: AccountConfig) -> Current | None:
    """The account's error, unless there is none or its configuration changed since."""
    row = session.get(AccountError, config.name)
    if row is None or row.config_hash != config_hash(config):
        return None
    return _current(row)


def record(
    session: Session,
    config: AccountConfig,
    kind: str,
    code: int | None,
    meaning: str,
    meaning_en: str,
    now: datetime | None = None,
) -> Current:
    """One more refusal of the account's pulls (the caller commits): it waits longer each time."""
    now = now or utcnow()
    digest = config_hash(config)
    row = session.get(AccountError, config.name, with_for_update=True)
    if row is None:
        row = AccountError(account=config.name, failures=0, since=now)
        session.add(row)
    elif row.config_hash != digest:  # a new configuration: its own first failure
        row.failures, row.since = 0, now
    row.failures += 1
    row.kind, row.code, row.meaning, row.meaning_en = kind, code, meaning, meaning_en
    row.last_at, row.config_hash = now, digest
    row.retry_at = now + timedelta(seconds=delay(row.failures))
    session.flush()
    return _current(row)


def clear(session: Session, account: str) -> None:
    """A pull of the account succeeded: its error is over (the caller commits)."""
    session.execute(delete(AccountError).where(AccountError.account == account))


def all_current(session: Session, settings: Settings) -> list[Current]:
    """The errors of the configured accounts, by account name (stale ones left out)."""
    rows = session.execute(select(AccountError).order_by(AccountError.account)).scalars()
    out = []
    for row in rows:
        config = settings.accounts.get(row.account)
        if config is not None and row.config_hash == config_hash(config):
            out.append(_current(row))
    return out
