"""The beat's tasks have a queue of their own, beside the send queue; `dispatcher worker` consumes both
unless told `-Q`; `dispatcher beat` keeps its state where it may write."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from dispatcher.config import beat_schedule_path
from tests.processes.harness import Processes
from workers import tasks
from workers.app import QUEUE_ENV, beat_queue, make_celery, worker_queues


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    monkeypatch.delenv(QUEUE_ENV, raising=False)
    app = make_celery("memory://")
    tasks.register(app)
    yield app
    app.close()


def queue_of(app: Celery, task: str) -> str:
    name: str = app.amqp.router.route({}, task)["queue"].name
    return name


def test_given_the_default_queue_then_periodic_tasks_go_to_the_beat_queue_and_sends_to_the_send_queue(
    app: Celery,
) -> None:
    assert queue_of(app, tasks.TICK) == "dispatcher.beat"
    assert queue_of(app, tasks.RESULTS) == "dispatcher.beat"
    assert queue_of(app, tasks.KEYWORDS) == "dispatcher.beat"
    assert queue_of(app, tasks.SCHEDULES) == "dispatcher.beat"
    assert queue_of(app, tasks.SUBMIT) == "dispatcher"
    # Every task of the beat's schedule is routed so: a periodic task added later needs no route.
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled == {tasks.TICK, tasks.RESULTS, tasks.KEYWORDS, tasks.SCHEDULES, tasks.PRUNE_COUNTS}


def test_given_dispatcher_queue_set_then_the_beat_queue_is_named_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(QUEUE_ENV, "acme")
    app = make_celery("memory://")
    tasks.register(app)
    assert (queue_of(app, tasks.SUBMIT), queue_of(app, tasks.TICK)) == ("acme", "acme.beat")
    # A test (or a caller) that changes the default queue after building the app moves both.
    app.conf.task_default_queue = "other"
    assert (queue_of(app, tasks.SUBMIT), queue_of(app, tasks.RESULTS)) == ("other", "other.beat")
    assert worker_queues("acme") == ["acme", "acme.beat"] and beat_queue("x") == "x.beat"


def test_given_a_store_then_the_beat_state_file_sits_beside_sqlite_or_in_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    assert beat_schedule_path("sqlite:////srv/d/store.sqlite3", "dispatcher") == Path(
        "/srv/d/dispatcher-beat-schedule"
    )
    # A relative SQLite file lives in the working directory, which SQLite itself writes to then.
    assert beat_schedule_path("sqlite:///d.sqlite3", "q", cwd=Path("/w")) == Path("/w/q-beat-schedule")
    # Anything else: never the working directory (it may be read-only), the temporary one instead.
    for url in ("postgresql+psycopg://u@db/x", "sqlite:///:memory:", "sqlite://"):
        assert beat_schedule_path(url, "dispatcher", cwd=Path("/ro")) == (
            tmp_path / "tmp" / "dispatcher-beat-schedule"
        )


@pytest.mark.parametrize(
    ("queues", "consumed"),
    [(None, {"{send}", "{send}.beat"}), ("{send}", {"{send}"}), ("{send}.beat", {"{send}.beat"})],
    ids=["default", "send-only", "beat-only"],
)
def test_given_the_embedded_broker_when_a_worker_starts_then_it_consumes_the_queues_it_is_given(
    processes: Processes, queues: str | None, consumed: set[str]
) -> None:
    # Given the embedded broker (kombu's SQLAlchemy transport on a SQLite file) and a send queue
    send = f"q-{uuid.uuid4().hex[:8]}"
    broker = f"sqla+sqlite:///{processes.tmp / 'broker.sqlite3'}"
    processes.env.update(
        {
            "DISPATCHER_DATABASE_URL": f"sqlite:///{processes.tmp / 'store.sqlite3'}",
            "DISPATCHER_BROKER_URL": broker,
            "DISPATCHER_REDIS_URL": "memory://",
            QUEUE_ENV: send,
        }
    )
    sender = make_celery(broker)
    sender.conf.task_default_queue = send
    # One task waiting on each queue: it leaves a file when it runs
    marks = {q: processes.tmp / f"ran-{q}" for q in (send, beat_queue(send))}
    for queue, marker in marks.items():
        sender.send_task("dispatcher.ping", kwargs={"marker": str(marker), "token": queue}, queue=queue)

    # When `dispatcher worker` starts (with -Q, or without)
    args = ["dispatcher", "worker", "-c", "1", "-l", "INFO"]
    if queues is not None:
        args += ["-Q", queues.format(send=send)]
    processes.start("worker", args)

    # Then it runs the tasks of the queues it consumes (both by default), and only those
    wanted = {q.format(send=send) for q in consumed}
    processes.wait_for(
        f"tasks of {sorted(wanted)} to run", lambda: all(marks[q].exists() for q in wanted), 180
    )
    assert {q for q, marker in marks.items() if marker.exists()} == wanted
    sender.close()


def test_given_the_embedded_broker_then_the_beats_tasks_reach_a_default_worker(processes: Processes) -> None:
    # Given no broker server: the embedded SQLite broker beside a SQLite store (the defaults)
    processes.env.update(
        {
            "DISPATCHER_DATABASE_URL": f"sqlite:///{processes.tmp / 'store.sqlite3'}",
            "DISPATCHER_REDIS_URL": "memory://",
            QUEUE_ENV: f"q-{uuid.uuid4().hex[:8]}",
        }
    )
    # When `dispatcher beat` and a `dispatcher worker` run
    beat = processes.start("beat", ["dispatcher", "beat"])
    worker = processes.start("worker", ["dispatcher", "worker", "-c", "1"])

    # Then the worker runs the beat's tick and results tasks from the beat's queue
    for task in (tasks.TICK, tasks.RESULTS):
        processes.wait_log(worker, f"Task {task}[", timeout=180)
    processes.wait_for("a tick to succeed", lambda: _succeeded(worker.output(), tasks.TICK), timeout=180)
    assert (
        "sqla+sqlite:///" in beat.output()
        and str(processes.tmp / "dispatcher-broker.sqlite3") in beat.output()
    )


def _succeeded(log: str, task: str) -> bool:
    return any(task in line and "succeeded" in line for line in log.splitlines())
