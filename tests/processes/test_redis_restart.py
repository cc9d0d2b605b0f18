"""A worker holding unacknowledged messages survives a Redis restart: it reconnects and goes on."""

from __future__ import annotations

import uuid

from tests.processes.harness import Processes, Redis
from workers.app import make_celery


def test_given_a_worker_holding_unacked_messages_when_redis_restarts_then_it_reconnects_and_works(
    processes: Processes,
) -> None:
    # Given a worker on a Redis of this test's own, holding messages it has not acknowledged
    # (countdown tasks are held by the worker until they are due)
    redis = Redis(processes, extra=["--appendonly", "no", "--save", ""])
    redis.start()
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    processes.env.update(
        {
            "DISPATCHER_DATABASE_URL": f"sqlite:///{processes.tmp / 'store.sqlite3'}",
            "DISPATCHER_BROKER_URL": redis.url,
            "DISPATCHER_REDIS_URL": redis.url,
            "DISPATCHER_QUEUE": queue,
        }
    )
    worker = processes.start("worker", ["dispatcher", "worker", "-c", "2", "-l", "INFO"])
    processes.wait_log(worker, " ready.", timeout=180)
    sender = make_celery(redis.url)
    sender.conf.task_default_queue = queue
    for n in range(3):
        sender.send_task("dispatcher.ping", kwargs={"token": str(n)}, countdown=600)
    processes.wait_for("the worker to hold them", lambda: worker.output().count(" received") == 3, 60)

    # When Redis is killed and comes back a second later, empty
    redis.restart(down_for=1.0)

    # Then the worker reconnects (it does not stop on an "unrecoverable error") and runs new tasks
    marker = processes.tmp / "after-restart"
    processes.wait_for("the worker to reconnect", lambda: worker.output().count("Connected to ") >= 2, 120)
    sender.send_task("dispatcher.ping", kwargs={"marker": str(marker), "token": "back"})
    processes.wait_for("a task sent after the restart to run", marker.exists, timeout=120)
    assert "Unrecoverable error" not in worker.output()
    sender.close()
