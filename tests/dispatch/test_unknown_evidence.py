"""What may settle an ``unknown`` chunk, and what may not (docs/state-machine.md, "How unknown chunks
get settled"): evidence that names the chunk, or a number no other request of the account could have
carried. A guess either way sends a number twice or loses one.

Against the simulator over real HTTP and the real store, driven as a worker drives it.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from sqlalchemy import select

from dispatcher import campaigns
from dispatcher.dispatch import build_request, load_group
from dispatcher.results.inbox import process_pending
from dispatcher.results.pull import drain
from dispatcher.store import Chunk, sweep_expired_leases
from dispatcher.store.chunks import claim_chunks
from tests.dispatch.scenario import (
    FIRST,
    SAME,
    chunks,
    create,
    drive,
    ledger,
    numbers,
    recipients,
    runtime_for,
    send,
    sent_then_worker_died,
)
from tests.stack import Stack
from tests.vendors.loopback import gateway


def claimed_then_worker_died(stack: Stack, ids: list[int]) -> None:
    """Claim ``ids`` and die before sending anything: the sweep makes them ``unknown``, though the
    vendor never saw them."""
    with stack.sessions() as session:
        claim_chunks(session, ids, "dead-worker", -1)
        assert sweep_expired_leases(session) == sorted(ids)


def reports_arrive(stack: Stack, vendor: str) -> int:
    """The results beat: pull the account's reports and reconcile them; returns chunks settled."""
    runtime = runtime_for(stack, vendor)
    drain(stack.sessions, runtime.transport, runtime.account, "reports")
    return process_pending(stack.sessions, stack.settings).settled_chunks


def chunk_states(stack: Stack, campaign_id: int) -> set[str]:
    return {c.state for c in chunks(stack, campaign_id)}


# ---- a report for a chunk an operator re-queued from unknown ------------------------------------------


def test_given_an_unknown_chunk_requeued_by_an_operator_when_its_report_comes_then_it_is_not_sent_again(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "webservice")
    campaign_id = create(stack, "webservice", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    # Given the vendor took the request, its worker died, and an operator re-queued the unknown chunk
    sent_then_worker_died(stack, runtime, ids)
    assert campaigns.retry(stack.sessions, campaign_id, "t", include_unknown=True) == ids

    # When the vendor's report for the first request arrives before a worker claims the chunk again
    assert reports_arrive(stack, "webservice") == 1

    # Then it settles the chunk: it is not sent a second time
    assert recipients(stack, campaign_id)[str(FIRST)][0] == "delivered"
    send(stack, runtime, ids)
    assert ledger(stack) == Counter([str(FIRST)])


# ---- a report of a number that two requests may have carried -----------------------------------------


def test_given_a_number_in_two_unknown_chunks_when_one_report_comes_then_neither_is_guessed_accepted(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "webservice")
    mobile = str(FIRST)
    # Given the same number in two campaigns of one account: the first campaign's request reached the
    # vendor, the second's never left; both workers died, both chunks are unknown
    first = create(stack, "webservice", [mobile])
    second = create(stack, "webservice", [mobile])
    sent_then_worker_died(stack, runtime, campaigns.start(stack.sessions, first, "t"))
    claimed_then_worker_died(stack, campaigns.start(stack.sessions, second, "t"))

    # When the vendor's one report for that number arrives
    assert reports_arrive(stack, "webservice") == 0

    # Then it settles neither: it cannot say whose it is (the second was never sent)
    assert recipients(stack, second)[mobile][0] == "unknown"
    assert recipients(stack, first)[mobile][0] == "unknown"


def test_given_a_number_in_flight_elsewhere_when_a_report_of_it_comes_then_the_unknown_chunk_is_not_guessed(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "webservice")
    mobile = str(FIRST)
    # Given an unknown chunk that never reached the vendor, and the same number in another campaign,
    # whose request the vendor took, its answer not recorded yet (still sending)
    lost = create(stack, "webservice", [mobile])
    claimed_then_worker_died(stack, campaigns.start(stack.sessions, lost, "t"))
    other = create(stack, "webservice", [mobile])
    ids = campaigns.start(stack.sessions, other, "t")
    with stack.sessions() as session:
        claimed = claim_chunks(session, ids, "w2", 120)
    (row,) = load_group(stack.sessions, ids)
    runtime.transport.send(build_request(runtime, row, claimed[ids[0]].pairs))

    # When the report of that request arrives
    assert reports_arrive(stack, "webservice") == 0

    # Then the unknown chunk is not settled with it: it is the other campaign's
    assert recipients(stack, lost)[mobile][0] == "unknown"
    assert chunk_states(stack, lost) == {"unknown"}


def test_given_an_entinfo_resend_of_an_unknown_chunk_when_minus_20_comes_for_a_number_another_campaign_sent_then_it_stays_unknown(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "entinfo")
    mobile = str(FIRST)
    # Given a campaign that sent the number this text, and another whose chunk of it never left
    # (its worker died after the claim): unknown, re-queued by an operator
    sent = create(stack, "entinfo", [mobile], SAME)
    campaigns.start(stack.sessions, sent, "t")
    drive(stack, runtime, sent)
    lost = create(stack, "entinfo", [mobile], SAME)
    claimed_then_worker_died(stack, campaigns.start(stack.sessions, lost, "t"))
    campaigns.retry(stack.sessions, lost, "t", include_unknown=True)

    # When it is sent again and entinfo answers -20 ("already sent this text to this number")
    drive(stack, runtime, lost)

    # Then -20 proves nothing about this chunk (the other campaign's send explains it): still unknown,
    # not recorded as accepted
    assert ledger(stack) == Counter([mobile])
    assert recipients(stack, lost)[mobile][0] == "unknown"
    assert chunk_states(stack, lost) == {"unknown"}


# ---- a cancel of a chunk re-queued from unknown ---------------------------------------------------


def test_given_a_chunk_requeued_from_unknown_when_the_campaign_is_cancelled_then_it_is_unknown_again(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "webservice")
    mobiles = numbers(2)
    campaign_id = create(stack, "webservice", mobiles)
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    # Given one chunk the vendor may have taken (unknown), re-queued by an operator, and one not sent
    sent_then_worker_died(stack, runtime, ids[:1])
    campaigns.retry(stack.sessions, campaign_id, "t", include_unknown=True)

    # When the campaign is cancelled
    campaigns.cancel(stack.sessions, campaign_id, "t")

    # Then the re-queued chunk is unknown again (it may have been accepted), not "never sent"
    states = recipients(stack, campaign_id)
    assert states[mobiles[0]][0] == "unknown"
    assert states[mobiles[1]][:2] == ("cancelled", "cancelled")
    with stack.sessions() as session:
        by_id = dict(session.execute(select(Chunk.id, Chunk.state)).tuples().all())
    assert (by_id[ids[0]], by_id[ids[1]]) == ("unknown", "failed")


def test_given_a_resend_of_an_unknown_chunk_in_flight_when_cancelled_and_answered_try_later_then_it_is_unknown(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    sent_then_worker_died(stack, runtime_for(stack, "webservice"), ids)
    campaigns.retry(stack.sessions, campaign_id, "t", include_unknown=True)
    with gateway("stall", delay=1.5, answer=b"-1") as gw:  # "try again later"
        sender = threading.Thread(target=send, args=(stack, runtime_for(stack, "webservice", gw.url), ids))
        sender.start()
        stack.wait_for(lambda: chunk_states(stack, campaign_id) == {"sending"})
        # When the campaign is cancelled while the re-send is on the wire, answered "try again later"
        campaigns.cancel(stack.sessions, campaign_id, "t")
        sender.join(timeout=60)

    # Then the chunk is unknown (the first request may have been taken), not cancelled
    assert chunk_states(stack, campaign_id) == {"unknown"}
    assert recipients(stack, campaign_id)[str(FIRST)][0] == "unknown"
