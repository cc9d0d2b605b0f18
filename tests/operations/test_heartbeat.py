"""Heartbeats in Redis: written with the Redis clock, read by anyone, alive for 3 (worker) or 6 (beat)
intervals; fingerprints name a store without its password; a process id has a random part."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from dispatcher import runtime
from dispatcher.config import redact_url
from dispatcher.keys import KeySpace
from dispatcher.operations import heartbeat
from dispatcher.operations.fingerprint import Fingerprints, canonical, fingerprint, without_password
from dispatcher.operations.identity import process_token
from tests.stack import REDIS_URL

SECRET = "s3cret-" + uuid.uuid4().hex[:8]


@pytest.fixture
def redis() -> Iterator[tuple[Redis[Any], KeySpace]]:
    client: Redis[Any] = Redis.from_url(REDIS_URL)
    keys = KeySpace(f"test-heartbeat-{uuid.uuid4().hex[:12]}:")
    yield client, keys
    client.delete(keys.heartbeats_key())
    client.close()


def record(
    kind: str = heartbeat.WORKER,
    every: float = 0.1,
    store: str = "s1",
    queues: tuple[str, ...] = ("q", "q.beat"),
) -> heartbeat.Heartbeat:
    return heartbeat.Heartbeat(
        kind=kind, id=f"{kind}:{uuid.uuid4().hex}", host="h", pid=1, version="0", queues=queues,
        store=store, broker="b", limiter="l", every=every,
    )  # fmt: skip


def test_given_urls_with_passwords_then_fingerprints_ignore_the_password_and_never_contain_it() -> None:
    a = f"postgresql+psycopg://app:{SECRET}@db.internal:5432/sms"
    assert without_password(a) == "postgresql+psycopg://app@db.internal:5432/sms"
    assert fingerprint(a) == fingerprint("postgresql+psycopg://app:other@db.internal:5432/sms")
    assert fingerprint(a) != fingerprint("postgresql+psycopg://app@db.internal:5432/other")
    assert fingerprint(f"redis://:{SECRET}@r:6379/0") == fingerprint("redis://r:6379/0")
    assert SECRET not in canonical(a) and len(fingerprint(a)) == 12
    # A password in the query, one holding an "@", failover URLs: none is hashed, none is printed
    for url in (
        f"redis://r/0?password={SECRET}&db=1",
        f"postgresql://u:{SECRET}@x@h/db",
        f"sentinel://:a@h1;sentinel://:{SECRET}@h2",
    ):
        assert SECRET not in without_password(url) and SECRET not in redact_url(url), url
    assert fingerprint(f"redis://r/0?password={SECRET}") == fingerprint("redis://r/0?password=other")


def test_given_two_directories_then_their_default_sqlite_stores_differ(tmp_path: Path) -> None:
    url = "sqlite:///dispatcher.sqlite3"
    assert fingerprint(url, cwd=tmp_path / "a") != fingerprint(url, cwd=tmp_path / "b")
    assert fingerprint(url, cwd=tmp_path) == fingerprint(f"sqlite:///{tmp_path / 'dispatcher.sqlite3'}")


def test_given_a_heartbeat_then_it_is_alive_for_its_misses_and_remembered_after(
    redis: tuple[Redis[Any], KeySpace],
) -> None:
    client, keys = redis
    worker = heartbeat.write(client, record(every=0.1), keys)
    beat = heartbeat.write(client, record(heartbeat.BEAT, every=0.1), keys)
    snapshot = heartbeat.read(client, keys)
    assert snapshot.liveness("s1", "q") == heartbeat.Liveness(True, worker.seen_at(), True, beat.seen_at())
    # Another store's or another queue's worker does not count
    assert (
        not snapshot.liveness("s2", "q").workers_alive
        and snapshot.liveness("s2", "q").workers_seen_at is None
    )
    assert not snapshot.liveness("s1", "other").workers_alive
    time.sleep(0.45)  # past 3 worker intervals, not 6 beat intervals
    later = heartbeat.read(client, keys).liveness("s1", "q")
    assert (later.workers_alive, later.beat_alive) == (False, True)
    assert later.workers_seen_at == worker.seen_at()  # "last seen"
    time.sleep(0.3)
    assert not heartbeat.read(client, keys).liveness("s1", "q").beat_alive


def test_given_a_heartbeater_then_it_renews_until_stopped_and_carries_no_secret(
    redis: tuple[Redis[Any], KeySpace],
) -> None:
    client, keys = redis
    from dispatcher.config import Settings

    settings = Settings(
        database_url=f"postgresql+psycopg://app:{SECRET}@db/sms",
        broker_url=f"redis://:{SECRET}@r:6379/0",
        redis_url=f"redis://:{SECRET}@r:6379/1",
    )
    beater = heartbeat.Heartbeater(
        REDIS_URL, heartbeat.record_for(heartbeat.WORKER, Fingerprints.of(settings), ["q"], 0.05), keys
    )
    beater.start()
    try:
        time.sleep(0.3)
        first = heartbeat.read(client, keys)
        time.sleep(0.2)
        second = heartbeat.read(client, keys)
    finally:
        beater.stop()
    assert len(first.beats) == 1 and second.beats[0].at > first.beats[0].at
    assert first.alive(heartbeat.WORKER, fingerprint(settings.database_url), "q")
    raw = client.hgetall(keys.heartbeats_key())
    stored = json.dumps({k.decode(): v.decode() for k, v in raw.items()})
    assert SECRET not in stored
    assert json.loads(next(iter(raw.values())))["store"] == fingerprint(settings.database_url)  # a hash only


def test_given_a_worker_on_another_broker_or_a_beat_on_another_queue_then_neither_serves_the_campaign(
    redis: tuple[Redis[Any], KeySpace],
) -> None:
    client, keys = redis
    heartbeat.write(client, record(every=5), keys)  # broker "b"
    heartbeat.write(client, record(heartbeat.BEAT, every=5, queues=("other.beat",)), keys)
    snapshot = heartbeat.read(client, keys)
    assert snapshot.liveness("s1", "q", broker="b").workers_alive
    elsewhere = snapshot.liveness("s1", "q", broker="another")
    assert not elsewhere.workers_alive and not elsewhere.beat_tasks_consumed
    assert not snapshot.liveness("s1", "q").beat_alive  # it schedules other.beat's tasks


def test_given_redis_down_then_liveness_is_unreadable_and_a_running_campaign_says_redis() -> None:
    from datetime import UTC, datetime

    from dispatcher.config import Settings
    from dispatcher.store import Campaign
    from dispatcher.waiting import Pending, waiting

    down: Redis[Any] = Redis(port=1, socket_connect_timeout=0.5)
    settings = Settings(
        database_url="sqlite:///x.sqlite3",
        broker_url="redis://127.0.0.1:1/0",
        redis_url="redis://127.0.0.1:1/0",
    )
    found = heartbeat.liveness_for(down, settings, "q")
    assert found is heartbeat.UNREADABLE
    running = Campaign(
        id=1, state="running", vendor="yunxin", window_start=0, window_end=1440, timezone="Asia/Shanghai"
    )
    now = datetime(2026, 12, 1, 2, tzinfo=UTC)
    assert waiting(running, Pending(4, 0, 4, None, False, False, None, 0), now, found) == {"waiting": "redis"}
    assert heartbeat.liveness_for(None, settings, "q") is None  # no Redis at all (the demo): nothing said


def test_given_a_process_not_ready_then_its_heartbeat_is_not_written(
    redis: tuple[Redis[Any], KeySpace],
) -> None:
    client, keys = redis
    ready = [False]
    beater = heartbeat.Heartbeater(REDIS_URL, record(every=0.05), keys, ready=lambda: ready[0])
    beater.start()
    try:
        time.sleep(0.3)
        assert heartbeat.read(client, keys).beats == ()  # e.g. a worker that lost its broker
        ready[0] = True
        time.sleep(0.3)
        assert len(heartbeat.read(client, keys).beats) == 1
    finally:
        beater.stop()


def test_given_damaged_or_old_records_then_reading_skips_them_and_pruning_removes_them(
    redis: tuple[Redis[Any], KeySpace],
) -> None:
    client, keys = redis
    client.hset(keys.heartbeats_key(), "junk", "{not json")
    old = record()
    client.hset(keys.heartbeats_key(), old.id, old.to_json())  # at = 0: decades ago
    fresh = heartbeat.write(client, record(), keys)
    assert [b.id for b in heartbeat.read(client, keys).beats if b.age(time.time()) < 60] == [fresh.id]
    assert heartbeat.prune(client, keys) == 2
    assert list(client.hkeys(keys.heartbeats_key())) == [fresh.id.encode()]


def test_given_two_processes_then_their_claim_owner_ids_differ_by_a_random_part() -> None:
    mine = runtime.worker_id()
    _host, pid, token, thread = mine.split(":")
    assert token == process_token() and len(token) == 8 and pid.isdigit() and thread.isdigit()
    code = "from dispatcher.operations.identity import process_token; print(process_token())"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert len(other) == 8 and other != token


def test_given_a_heartbeater_stopped_cleanly_then_its_record_says_stopped_at_once_and_keeps_last_seen(
    redis: tuple[Redis[Any], KeySpace],
) -> None:
    client, keys = redis
    beater = heartbeat.Heartbeater(REDIS_URL, record(heartbeat.BEAT, every=5.0), keys)
    beater.start()
    time.sleep(0.2)
    assert len(heartbeat.read(client, keys).alive(heartbeat.BEAT, "s1")) == 1
    beater.stop()
    # A restarted beat is the only one alive at once, not after 6 intervals (30 s)
    snapshot = heartbeat.read(client, keys)
    assert snapshot.alive(heartbeat.BEAT, "s1") == []
    (gone,) = snapshot.of(heartbeat.BEAT, "s1")
    assert gone.stopped and gone.age(snapshot.now) < 1  # "last seen" stays
    assert snapshot.liveness("s1", "q").beat_seen_at is not None


def test_given_a_beat_whose_loop_stopped_ticking_then_its_heartbeat_says_dead_though_the_thread_writes(
    redis: tuple[Redis[Any], KeySpace],
) -> None:
    client, keys = redis
    last = [time.monotonic()]
    beater = heartbeat.Heartbeater(
        REDIS_URL, record(heartbeat.BEAT, every=0.05), keys, last_tick=lambda: last[0]
    )
    beater.start()
    try:
        for _ in range(4):  # the loop ticks
            time.sleep(0.1)
            last[0] = time.monotonic()
        assert heartbeat.read(client, keys).liveness("s1", "q").beat_alive
        time.sleep(0.5)  # the loop hangs (no tick for 10 intervals) while the thread goes on writing
        snapshot = heartbeat.read(client, keys)
        (hung,) = snapshot.of(heartbeat.BEAT, "s1")
        assert hung.age(snapshot.now) < 0.2 and not hung.alive(snapshot.now)
        assert not snapshot.liveness("s1", "q").beat_alive
        last[0] = time.monotonic()  # it ticks again
        time.sleep(0.2)
        assert heartbeat.read(client, keys).liveness("s1", "q").beat_alive
    finally:
        beater.stop()


def test_given_one_store_under_two_urls_or_two_stores_under_one_url_then_the_store_fingerprint_follows_the_database(
    database_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import delete
    from sqlalchemy.engine import make_url

    from dispatcher.operations.fingerprint import store_fingerprint
    from dispatcher.store import identity, make_engine, upgrade
    from dispatcher.store.models import StoreIdentity

    identity.forget()
    mine = store_fingerprint(database_url)
    assert mine != fingerprint(database_url) and len(mine) == 12  # the database's own id, not its URL
    # Its row gone (a careless restore): written again at first use, then the same for everyone
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(delete(StoreIdentity))
    engine.dispose()
    identity.forget()
    mine = store_fingerprint(database_url)
    identity.forget()
    assert store_fingerprint(database_url) == mine != fingerprint(database_url)
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        # The same database named with another driver, and with a password: one store, no password in it
        plain = url.set(drivername="postgresql", password=SECRET).render_as_string(hide_password=False)
        assert store_fingerprint(plain) == mine and SECRET not in mine
        return
    # Another database at the same path (as in another container): another store
    path = Path(url.database or "")
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    upgrade(database_url)
    identity.forget()
    assert store_fingerprint(database_url) != mine
    # A store before migration 0018 has no id: its URL names it, as before
    old = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(old, "0017")
    assert store_fingerprint(old) == fingerprint(old)
    missing = f"sqlite:///{tmp_path / 'missing.sqlite3'}"
    assert store_fingerprint(missing) == fingerprint(missing) and not (tmp_path / "missing.sqlite3").exists()


def test_given_a_store_fingerprint_unreadable_at_the_start_then_the_heartbeat_says_the_store_once_it_can(
    redis: tuple[Redis[Any], KeySpace],
) -> None:
    # Given a process whose store could not tell its id when it started (its record holds the URL's)
    client, keys = redis
    answers = iter(["the-store"] * 1000)
    beater = heartbeat.Heartbeater(
        REDIS_URL, record(every=0.05, store="url-fallback"), keys, store_of=lambda: next(answers)
    )
    beater.start()
    try:
        time.sleep(0.3)
        # Then its heartbeat names the store as it is read at each beat, not as it was at the start
        assert [b.store for b in heartbeat.read(client, keys).beats] == ["the-store"]
    finally:
        beater.stop()


def test_given_a_copy_of_a_sqlite_store_in_another_directory_then_it_is_another_store(tmp_path: Path) -> None:
    import shutil

    from dispatcher.operations.fingerprint import store_fingerprint
    from dispatcher.store import identity, upgrade

    # Given a store and a copy of its file elsewhere (a project directory copied): the id row travels
    original = tmp_path / "a" / "dispatcher.sqlite3"
    original.parent.mkdir()
    upgrade(f"sqlite:///{original}")
    identity.forget()
    mine = store_fingerprint(f"sqlite:///{original}")
    copy = tmp_path / "b" / "dispatcher.sqlite3"
    copy.parent.mkdir()
    shutil.copy(original, copy)
    identity.forget()
    # Then the copy's workers do not pass for this store's, and the original keeps its fingerprint
    assert store_fingerprint(f"sqlite:///{copy}") != mine
    assert store_fingerprint(f"sqlite:///{original}") == mine
