"""A worker or beat on a shared store must share its broker and limiter too.

A PostgreSQL store is shared by every host; the broker's and the limiter's defaults are for one machine
(an embedded SQLite broker file, a Redis on loopback). A host started without ``DISPATCHER_REDIS_URL``
took a limiter of its own, and two hosts each sent at the account's full rate; one without
``DISPATCHER_BROKER_URL`` took a private broker file and sent nothing the others queued. Such a process
refuses to start, naming the setting, unless told ``--standalone`` (one machine on purpose).
"""

from __future__ import annotations

from dispatcher.config import Settings
from dispatcher.operations.fingerprint import is_loopback

IN_PROCESS = "memory://"


def is_shared_store(database_url: str) -> bool:
    return database_url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def is_embedded_broker(broker_url: str) -> bool:
    return "sqlite" in broker_url.split("://", 1)[0] or broker_url.startswith(IN_PROCESS)


def refusal(settings: Settings) -> str | None:
    """Why this process must not start beside a shared store, naming the setting; None when it may."""
    if not is_shared_store(settings.database_url):
        return None
    if is_embedded_broker(settings.broker_url):
        how = "not set, so" if "broker_url" in settings.defaulted else "set to"
        return (
            f"the store is shared (PostgreSQL) but broker_url (DISPATCHER_BROKER_URL) is {how} an embedded "
            "broker of this machine: tasks other hosts queue never reach it. Set DISPATCHER_BROKER_URL to "
            "the Redis every host uses, or pass --standalone if this is the only machine"
        )
    if settings.redis_url.startswith(IN_PROCESS):
        return (
            "the store is shared (PostgreSQL) but redis_url (DISPATCHER_REDIS_URL) is memory://: this "
            "process would rate-limit the accounts alone. Set DISPATCHER_REDIS_URL to the Redis every "
            "host uses, or pass --standalone if this is the only machine"
        )
    if "redis_url" in settings.defaulted and is_loopback(settings.redis_url):
        return (
            "the store is shared (PostgreSQL) but redis_url (DISPATCHER_REDIS_URL) is not set, so the "
            "account limiter is this machine's loopback Redis: each host would send at the full rate. "
            "Set DISPATCHER_REDIS_URL to the Redis every host uses, or pass --standalone if this is the "
            "only machine"
        )
    return None
