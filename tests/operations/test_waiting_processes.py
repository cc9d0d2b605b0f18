"""``"waiting": "workers"`` and ``"beat"``: a campaign says when the processes it needs are not running
(pure rules; the processes' tests start real ones), and the page and --watch say it in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher import i18n, labels
from dispatcher.operations.heartbeat import Liveness
from dispatcher.store import Campaign
from dispatcher.waiting import Pending, waiting

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 China time: inside the default window
SEEN = NOW - timedelta(minutes=5)
ALL_ALIVE = Liveness(True, NOW, True, NOW)
NO_WORKERS = Liveness(False, SEEN, True, NOW, beat_tasks_consumed=False)
SEND_ONLY_GONE = Liveness(False, SEEN, True, NOW)  # the beat's queue still has a worker
NO_BEAT = Liveness(True, NOW, False, SEEN)
NOBODY_EVER = Liveness(False, None, False, None, beat_tasks_consumed=False)
TO_SEND = Pending(4, 0, 4, None, False, False, None, 0)
NOTHING = Pending(0, 0, 0, None, False, False, None, 0)


def campaign(state: str, start_at: datetime | None = None) -> Campaign:
    return Campaign(id=1, state=state, vendor="yunxin", window_start=480, window_end=1260,
                    timezone="Asia/Shanghai", start_at=start_at)  # fmt: skip


@pytest.mark.parametrize(
    ("state", "pending", "liveness", "expected"),
    [
        ("running", TO_SEND, ALL_ALIVE, {"waiting": None}),
        ("running", TO_SEND, None, {"waiting": None}),  # heartbeats unreadable: nothing claimed
        ("running", TO_SEND, NO_WORKERS, {"waiting": "workers", "workers_seen_at": SEEN.isoformat(timespec="seconds")}),
        ("running", TO_SEND, NOBODY_EVER, {"waiting": "workers", "workers_seen_at": None}),
        ("running", TO_SEND, NO_BEAT, {"waiting": "beat", "beat_seen_at": SEEN.isoformat(timespec="seconds")}),
        ("running", NOTHING, SEND_ONLY_GONE, {"waiting": None}),  # nothing left to send
        ("running", TO_SEND, SEND_ONLY_GONE, {"waiting": "workers", "workers_seen_at": SEEN.isoformat(timespec="seconds")}),
        ("sent", NOTHING, NO_BEAT, {"waiting": "beat", "beat_seen_at": SEEN.isoformat(timespec="seconds")}),
        ("sent", NOTHING, SEND_ONLY_GONE, {"waiting": "reports", "reports_due": 0}),
        # the beat's tasks (pulling reports) need a worker on its queue
        ("sent", NOTHING, NO_WORKERS, {"waiting": "workers", "workers_seen_at": SEEN.isoformat(timespec="seconds")}),
        ("paused", TO_SEND, NOBODY_EVER, {"waiting": None}),  # a person paused it: nothing is needed
        # a wait for a time is said as it is; the processes are looked at when the time comes
        ("running", Pending(4, 0, 0, NOW + timedelta(minutes=1), True, False, None, 0), NOBODY_EVER,
         {"waiting": "rate_limit", "retry_at": (NOW + timedelta(minutes=1)).isoformat(timespec="seconds")}),
        ("completed", NOTHING, NOBODY_EVER, {"waiting": None}),
    ],
)  # fmt: skip
def test_given_the_processes_liveness_then_a_campaign_says_which_it_waits_for(
    state: str, pending: Pending, liveness: Liveness | None, expected: dict[str, object]
) -> None:
    assert waiting(campaign(state), pending, NOW, liveness) == expected


def test_given_a_scheduled_campaign_then_it_needs_the_beat_once_due() -> None:
    later = campaign("scheduled", start_at=NOW + timedelta(hours=1))
    assert waiting(later, NOTHING, NOW, NOBODY_EVER) == {"waiting": "schedule"}
    due = campaign("scheduled", start_at=NOW - timedelta(seconds=5))
    assert waiting(due, NOTHING, NOW, Liveness(True, NOW, False, None)) == {
        "waiting": "beat",
        "beat_seen_at": None,
    }
    assert waiting(due, NOTHING, NOW, NOBODY_EVER) == {"waiting": "workers", "workers_seen_at": None}


def test_given_no_worker_then_the_words_say_so_in_chinese_and_english() -> None:
    status = {"waiting": "workers", "workers_seen_at": SEEN.isoformat()}
    with i18n.use("zh"):
        words = labels.waiting_text(status) or ""
        assert (words.startswith("没有发送进程在运行（最近一次：") and "10:" in words) or "09:55" in words
        assert (
            labels.waiting_text({"waiting": "workers", "workers_seen_at": None})
            == "没有发送进程在运行（从未见到）"
        )
        assert "定时任务" in (labels.waiting_text({"waiting": "beat", "beat_seen_at": None}) or "")
    with i18n.use("en"):
        assert (labels.waiting_text(status) or "").startswith("No sending process is running (last seen: ")
