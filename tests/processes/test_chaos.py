"""Exactly once under chaos, with the processes users run.

Two scheduled campaigns (webservice, one number per request; trigger) are sent by two Procfile workers
and launched by the Procfile beat, against the simulator answering 10 % of sends with a 500, a reset
or an accepted message whose answer is lost. Mid-campaign a worker is SIGKILLed twice (and started
again), the beat is SIGKILLed and started again, and Redis (broker, limiters, locks) is SIGKILLed and
started again empty. Leases and the re-queue of lost messages are shortened to seconds.

The test prints the share of recipients left unknown. Then: no number twice in the simulator's ledger; every recipient in a final state; the numbers the
store says the vendor has are exactly the ledger's; and no ``unknown`` chunk is left that the vendor's
reports (its numbers are in the ledger: a report comes for each) or a late answer could settle.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest

from tests.processes.deployment import (
    FINAL,
    VENDOR_HAS_IT,
    AccountSpec,
    Deployment,
    ledger_mobiles,
    mobiles,
)
from tests.processes.harness import Proc, Processes, Redis, Simulator, procfile

# webservice: one number per request (a task sends 32 such chunks at once); trigger: personalised
# requests of 50 numbers with the chunk's customerUuid, which its reports carry. The texts differ per
# recipient. About 640 requests in all (about 64 faults), some 60 s at the accounts' rates.
# Without ``settle_unknown_after``: with it on, two CI runs left recipients of re-sent requests
# ``accepted`` without their reports past the settle time (2 of 600, 100 of 2,000): an open problem of
# the automatic re-send (docs/state-machine.md), measured apart until it is solved.
SETTLE = os.environ.get("CHAOS_SETTLE", "off")  # e.g. CHAOS_SETTLE=15s measures it on
_EXTRA = (f'settle_unknown_after = "{SETTLE}"',) if SETTLE != "off" else ()
CAMPAIGNS = {
    "webservice": (AccountSpec("ws", "webservice", rate_limit=10.0, extra=_EXTRA), mobiles(13500000000, 600)),
    "trigger": (AccountSpec("tg", "trigger", rate_limit=0.8, extra=_EXTRA), mobiles(13900000000, 2000)),
}
TOTAL = sum(len(numbers) for _, numbers in CAMPAIGNS.values())
TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"
LATE_VERDICTS = ("late_accepted", "late_failed")
SETTLE_TIMEOUT = 360.0  # after the last event, for the campaigns to finish and every report to come


@pytest.mark.slow
@pytest.mark.serial  # it times how its campaigns settle: run alone (CI: -n 0)
@pytest.mark.timeout(1500)
def test_given_faults_kills_and_a_redis_restart_then_each_number_goes_once_and_the_store_agrees(
    processes: Processes, database_url: str
) -> None:
    # Given Redis without persistence, a faulty simulator, and the Procfile's worker (twice) and beat
    redis = Redis(processes, extra=["--appendonly", "no", "--save", ""])
    redis.start()
    knobs = ["--fault-rate", "0.1", "--latency-ms", "100", "--report-delay", "1", "--deliver-ratio", "1"]
    simulator = Simulator(processes, [*knobs, "--seed", "11"])
    simulator.start()
    deployment = Deployment(
        processes,
        database_url,
        redis.url,
        simulator.base_url,
        [spec for spec, _ in CAMPAIGNS.values()],
        settings={
            "DISPATCHER_QUEUE": f"chaos-{uuid.uuid4().hex[:8]}",
            "DISPATCHER_LEASE_SECONDS": "6",
            "DISPATCHER_STALE_QUEUED_SECONDS": "5",
        },
    )
    lines = procfile()
    victim = processes.shell("worker", lines["worker"])
    survivor = processes.shell("worker", lines["worker"])
    beat = processes.shell("beat", lines["beat"])
    for proc in (victim, survivor):
        processes.wait_log(proc, " ready.", timeout=240)
    processes.wait_log(beat, "beat: Starting...", timeout=240)

    # ... and two campaigns scheduled a few seconds ahead (nobody starts them)
    created = {
        vendor: deployment.create_campaign(spec.name, numbers, TEMPLATE, start_in=10)[0]
        for vendor, (spec, numbers) in CAMPAIGNS.items()
    }
    assert {c["state"] for c in created.values()} == {"scheduled"}

    def sent() -> int:
        return len(simulator.ledger()["accepted"])

    def at(share: float) -> Callable[[], bool]:
        return lambda: sent() >= share * TOTAL

    def kill_and_restart(dead: Proc, name: str) -> Proc:
        processes.kill(dead)  # SIGKILL to the group: the worker and its pool's children
        return processes.shell(name, lines[name])

    # When a worker is SIGKILLed mid-campaign and started again, and once it is back, SIGKILLed again
    progress: dict[str, int] = {}
    processes.wait_for("10 % of the numbers sent", at(0.10), timeout=300)
    progress["first worker kill"] = sent()
    victim = kill_and_restart(victim, "worker")
    processes.wait_log(victim, " ready.", timeout=240)
    processes.wait_for("30 % of the numbers sent", at(0.30), timeout=300)
    progress["second worker kill"] = sent()
    victim = kill_and_restart(victim, "worker")
    # ... the beat is SIGKILLed and started again
    processes.wait_for("45 % of the numbers sent", at(0.45), timeout=300)
    progress["beat kill"] = sent()
    beat = kill_and_restart(beat, "beat")
    # ... and Redis is SIGKILLed and started again, empty: queued messages, limiters and locks gone
    processes.wait_for("60 % of the numbers sent", at(0.60), timeout=300)
    progress["redis restart"] = sent()
    redis.restart()
    print(f"numbers accepted by the vendor at each event (of {TOTAL}): {progress}")
    assert all(n < TOTAL * 0.95 for n in progress.values()), progress  # every event hit mid-campaign

    # Then both campaigns end and the store settles (reports pulled by the beat's results task)
    ids = {vendor: int(c["id"]) for vendor, c in created.items()}

    def settled() -> bool:
        if any(deployment.campaign_state(i) != "completed" for i in ids.values()):
            return False
        ledger = simulator.ledger()
        for vendor, campaign_id in ids.items():
            states = deployment.recipients(campaign_id)
            if any(s not in FINAL for s in states.values()):
                return False
            if {m for m, s in states.items() if s in VENDOR_HAS_IT} != set(ledger_mobiles(ledger, vendor)):
                return False
        return True

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not settled() and time.monotonic() < deadline:
        processes.check_alive()
        time.sleep(1.0)

    # Assertions, strictest first, each with what is needed to see why
    ledger = simulator.ledger()
    if os.environ.get("CHAOS_DUMP"):  # diagnosis: recipients still accepted, with their evidence
        _dump(deployment, ids, ledger)
    left = {v: sum(s == "unknown" for s in deployment.recipients(i).values()) for v, i in ids.items()}
    print(f"recipients left unknown with settle_unknown_after = {SETTLE}: {left} of {TOTAL} "
          f"({sum(left.values()) / TOTAL:.2%})")  # fmt: skip
    for vendor, campaign_id in ids.items():  # why each is left: its attempts (a re-send's included)
        for chunk_id, chunk in sorted(deployment.unknown_chunks(campaign_id).items()):
            print(
                f"  {vendor} unknown chunk {chunk_id}: {len(chunk['mobiles'])} numbers, {chunk['attempts']}"
            )
    faults = Counter(f["kind"] for f in ledger["faults"])
    assert set(faults) == {"http500", "reset", "lost"}, faults  # the chaos did happen
    for vendor, campaign_id in ids.items():
        numbers = CAMPAIGNS[vendor][1]
        vendor_has = ledger_mobiles(ledger, vendor)
        states = deployment.recipients(campaign_id)
        report = _report(deployment, campaign_id, vendor, vendor_has, states, faults, progress)
        # No number twice at the vendor, none the campaign does not have
        assert {m: n for m, n in vendor_has.items() if n > 1} == {}, report
        assert set(vendor_has) <= set(numbers), report
        # Every recipient is in the store, in a final state; the campaign is completed
        assert sorted(states) == sorted(numbers), report
        assert {m: s for m, s in states.items() if s not in FINAL} == {}, report
        assert deployment.campaign_state(campaign_id) == "completed", report
        # No unknown chunk left that the vendor's reports or a late answer settle
        unknown = deployment.unknown_chunks(campaign_id)
        settleable = {
            chunk_id: chunk
            for chunk_id, chunk in unknown.items()
            if set(chunk["mobiles"]) & set(vendor_has)
            or any(a[0] in LATE_VERDICTS for a in chunk["attempts"])
        }
        assert settleable == {}, report
        # The numbers the store says the vendor has are exactly the ledger's
        store_has = {m for m, s in states.items() if s in VENDOR_HAS_IT}
        assert sorted(store_has - set(vendor_has)) == [], report  # a false "accepted": a number lost
        assert sorted(set(vendor_has) - store_has) == [], report  # sent, but not known to be
    deployment.close()


def _report(
    deployment: Deployment,
    campaign_id: int,
    vendor: str,
    vendor_has: Counter[str],
    states: dict[str, str],
    faults: Counter[str],
    progress: dict[str, int],
) -> str:
    """What a failed assertion shows: counts, and each unknown chunk with its numbers' fate."""
    unknown = deployment.unknown_chunks(campaign_id)
    lines = [
        f"{vendor} campaign {campaign_id}: recipients by state {dict(Counter(states.values()))}",
        f"ledger: {len(vendor_has)} numbers, {sum(vendor_has.values())} messages; faults {dict(faults)}",
        f"accepted at each event: {progress}",
        f"unknown chunks: {len(unknown)}",
    ]
    for chunk_id, chunk in sorted(unknown.items()):
        in_ledger = [m for m in chunk["mobiles"] if m in vendor_has]
        lines.append(
            f"  chunk {chunk_id} ref {chunk['ref']} ({chunk['detail']}): {len(chunk['mobiles'])} numbers, "
            f"{len(in_ledger)} in the ledger; attempts {chunk['attempts']}"
        )
    return "\n".join(lines)


def _dump(deployment: Deployment, ids: dict[str, int], ledger: dict) -> None:
    """DIAGNOSIS: recipients still accepted, their chunk, attempts, reports, the ledger's entries."""
    import json as _json

    from sqlalchemy import select as _select

    from dispatcher.store import Attempt, Chunk, Recipient, ReportRow, UnknownRequest

    out = {}
    with deployment.sessions() as s:
        for cid in ids.values():
            rows = (
                s.execute(
                    _select(Recipient).where(Recipient.campaign_id == cid, Recipient.state == "accepted")
                )
                .scalars()
                .all()
            )
            for r in rows:
                ch = s.get(Chunk, r.chunk_id)
                out[r.mobile] = {
                    "recipient": [r.id, r.state, r.batch_id, str(r.submitted_at), r.account, r.chunk_id],
                    "chunk": [
                        ch.id,
                        ch.ref,
                        ch.state,
                        ch.batch_id,
                        ch.requeued_from_unknown,
                        ch.detail,
                        str(ch.updated_at),
                    ],
                    "attempts": [
                        [a.outcome, a.code, a.error_class, str(a.started_at), (a.answer or "")[:60]]
                        for a in s.execute(
                            _select(Attempt).where(Attempt.chunk_id == r.chunk_id).order_by(Attempt.id)
                        ).scalars()
                    ],
                    "unknown_requests": [
                        [u.chunk_id, u.ref, u.account, str(u.sent_from), str(u.sent_until)]
                        for u in s.execute(
                            _select(UnknownRequest).where(UnknownRequest.recipient_id == r.id)
                        ).scalars()
                    ],
                    "reports": [
                        [
                            x.id,
                            x.batch_id,
                            x.ref,
                            x.status,
                            x.recipient_id,
                            str(x.reported_at),
                            x.raw_pull_id,
                            x.account,
                        ]
                        for x in s.execute(_select(ReportRow).where(ReportRow.mobile == r.mobile)).scalars()
                    ],
                    "ledger": [e for e in ledger["accepted"] if e.get("mobile") == r.mobile],
                }
    path = os.environ.get("CHAOS_DUMP", "/tmp/chaos_dump.json")
    with open(path, "w") as f:
        _json.dump(out, f, default=str, ensure_ascii=False, indent=1)
    print(f"DUMP {len(out)} accepted recipients -> {path}")
