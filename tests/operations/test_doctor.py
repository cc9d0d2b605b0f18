"""`dispatcher doctor`'s checks, each on what it reads: heartbeats (crafted), a real store, a closed port."""

from __future__ import annotations

from pathlib import Path

from dispatcher.config import Settings
from dispatcher.operations import heartbeat
from dispatcher.operations.doctor import Doctor
from dispatcher.operations.fingerprint import Fingerprints
from dispatcher.store import upgrade

SETTINGS = Settings(
    database_url="postgresql+psycopg://app:pa55@db/sms",
    broker_url="redis://:pa55@r:6379/0",
    redis_url="redis://:pa55@r:6379/1",
)
MINE = Fingerprints.of(SETTINGS)
NOW = 1_000_000.0


def beat(
    kind: str, host: str, queues: tuple[str, ...], at: float = NOW, **prints: str
) -> heartbeat.Heartbeat:
    parts = {"store": MINE.store, "broker": MINE.broker, "limiter": MINE.limiter, **prints}
    return heartbeat.Heartbeat(kind, f"{kind}:{host}", host, 7, "0.1.0", queues, every=5.0, at=at, **parts)


def test_given_a_process_whose_broker_differs_then_doctor_names_it() -> None:
    snapshot = heartbeat.Snapshot(NOW, (
        beat("worker", "a", ("q", "q.beat")),
        beat("worker", "b", ("q",), broker="0123456789ab"),  # another Redis for its tasks
        beat("worker", "c", ("q",), store="fedcba987654"),  # another store, this queue
        beat("beat", "a", ("q.beat",)),
    ))  # fmt: skip
    checks = {c.name: c for c in Doctor(SETTINGS, "q").processes(snapshot)}
    assert checks["workers"].ok and checks["workers"].params["count"] == 2
    assert checks["beat"].ok and "a (pid 7)" in checks["beat"].detail
    odd = checks["fingerprints"]
    assert not odd.ok and "worker b pid 7: broker" in odd.detail and "worker c pid 7: store" in odd.detail
    assert "pa55" not in odd.detail


def test_given_two_beats_or_none_then_doctor_fails_the_beat_check() -> None:
    two = heartbeat.Snapshot(NOW, (beat("beat", "a", ("q.beat",)), beat("beat", "b", ("q.beat",))))
    assert "2 beats alive" in Doctor(SETTINGS, "q").beat(two, MINE.store).detail
    gone = heartbeat.Snapshot(NOW, (beat("beat", "a", ("q.beat",), at=NOW - 31),))
    check = Doctor(SETTINGS, "q").beat(gone, MINE.store)
    assert not check.ok and check.detail.startswith("no beat alive on this store (last seen: ")


def test_given_workers_without_the_beat_queue_then_doctor_says_nobody_consumes_it() -> None:
    send_only = heartbeat.Snapshot(NOW, (beat("worker", "a", ("q",)),))
    check = Doctor(SETTINGS, "q").workers(send_only, MINE.store)
    assert not check.ok and "nobody consumes q.beat" in check.detail


def test_given_stores_and_services_then_store_clock_and_flower_checks_say_what_they_find(
    tmp_path: Path,
) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    ready = f"sqlite:///{tmp_path / 'ready.sqlite3'}"
    upgrade(ready)
    store = Doctor(Settings(database_url=empty, broker_url="memory://", redis_url="memory://"), "q").store()
    assert not store.ok and "run `dispatcher db upgrade`" in store.detail
    doctor = Doctor(Settings(database_url=ready, broker_url="memory://", redis_url="memory://"), "q")
    assert doctor.store().ok and doctor.clock().ok and doctor.limiter().ok
    flower = doctor.flower("http://ops:pa55@127.0.0.1:1/")
    assert not flower.ok and "pa55" not in flower.detail and "ops:***@127.0.0.1:1" in flower.detail
    unreachable = Doctor(SETTINGS, "q").store()
    assert not unreachable.ok and "pa55" not in unreachable.detail and "app:***@db" in unreachable.detail


def test_given_a_beat_of_another_queue_or_store_then_doctor_does_not_count_it_and_names_the_stranger() -> (
    None
):
    elsewhere = heartbeat.Snapshot(NOW, (
        beat("worker", "a", ("q", "q.beat")),
        beat("beat", "b", ("other.beat",)),  # schedules another deployment's queue
        beat("beat", "c", ("q.beat",), store="fedcba987654"),  # this queue, another store
        beat("beat", "d", ("q.beat",), broker="0123456789ab"),  # publishes to another broker
    ))  # fmt: skip
    checks = {c.name: c for c in Doctor(SETTINGS, "q").processes(elsewhere)}
    assert not checks["beat"].ok and "no beat alive" in checks["beat"].detail
    odd = checks["fingerprints"]
    assert not odd.ok and "beat c pid 7: store" in odd.detail and "beat d pid 7: broker" in odd.detail
    # With the right one beside them: exactly one counts
    right = heartbeat.Snapshot(NOW, (*elsewhere.beats, beat("beat", "e", ("q.beat",))))
    check = Doctor(SETTINGS, "q").processes(right)[1]
    assert check.ok and check.detail == "one alive: e (pid 7)"
