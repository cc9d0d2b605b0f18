"""The one decision over a send attempt (``decisions.decide``), answer class by answer class: pure, no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.decisions import (
    OUTSIDE_HOURS_WAIT,
    ChunkRow,
    Next,
    SendAttempt,
    Verdict,
    decide,
    interpret,
)
from dispatcher.errors import HTTPStatusError, NotSentError, OutcomeUnknownError
from dispatcher.store import ChunkState
from dispatcher.store.chunks import Claimed, ClaimedRecipient
from dispatcher.vendors import entinfo, trigger, yunxin
from dispatcher.vendors.wire import Request

NOON_CST = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
DAY = (8 * 60, 21 * 60)


def attempt(
    verdict: Verdict,
    *,
    numbers: int = 1,
    campaign: str = "running",
    at: datetime = NOON_CST,
    window: tuple[int, int] = DAY,
    requeued_from_unknown: bool = False,
    attempts: int = 1,
    personalised: bool = False,
    texts: tuple[str, ...] = (),
) -> SendAttempt:
    text = None if personalised or texts else "hi【店】"
    row = ChunkRow(7, "sending", None, "123", text, 1, "acct", campaign, window, "Asia/Shanghai",
                   requeued_from_unknown)  # fmt: skip
    texts = texts or ("hi【店】",) * numbers
    recipients = tuple(ClaimedRecipient(100 + i, f"1390000000{i}", texts[i]) for i in range(len(texts)))
    request = Request("/SendMsg", {"DesNo": ",".join(r.mobile for r in recipients)}) if numbers else None
    return SendAttempt(row, Claimed(7, attempts, recipients), verdict, at, at, request)


def test_accepted_and_unknown_stand_whatever_the_campaign() -> None:
    for campaign in ("running", "paused", "cancelled"):
        assert (
            decide(attempt(interpret(trigger, body="2200001"), campaign=campaign)).outcome.state == "accepted"
        )
        lost = interpret(trigger, error=OutcomeUnknownError("read timeout"))
        assert decide(attempt(lost, campaign=campaign)).outcome.state == "unknown"


@pytest.mark.parametrize("status", [500, 502, 504, 503])
def test_a_5xx_after_the_body_was_sent_is_unknown_never_retried(status: int) -> None:
    decision = decide(attempt(interpret(trigger, error=HTTPStatusError(status))))
    assert (decision.outcome.state, decision.result.next) == (ChunkState.UNKNOWN, Next.DONE)


def test_a_503_with_retry_after_and_a_refused_connection_are_retried() -> None:
    busy = decide(attempt(interpret(trigger, error=HTTPStatusError(503, headers={"Retry-After": "30"}))))
    assert busy.outcome.state is ChunkState.QUEUED and busy.outcome.retry_in == busy.result.delay >= 30
    refused = decide(attempt(interpret(trigger, error=NotSentError("refused"))))
    assert refused.outcome.state is ChunkState.QUEUED and refused.result.next is Next.LATER


def test_outside_the_vendors_hours_inside_ours_waits_a_while_without_counting_the_attempt() -> None:
    decision = decide(attempt(interpret(trigger, body="-8"), attempts=9))
    assert decision.outcome.state is ChunkState.QUEUED and not decision.outcome.counted
    assert decision.outcome.not_before == NOON_CST + OUTSIDE_HOURS_WAIT


def test_outside_the_vendors_hours_and_ours_waits_for_our_window_to_open() -> None:
    evening = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)  # 21:30 in Shanghai: our window (08-21) closed
    decision = decide(attempt(interpret(trigger, body="-8"), at=evening))
    assert decision.outcome.not_before == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # 08:00 next day
    assert decision.result.delay == pytest.approx(timedelta(hours=10, minutes=30).total_seconds())


def test_a_bad_number_or_a_duplicate_in_a_batch_splits_it_into_halves_of_the_claimed_recipients() -> None:
    for verdict in (interpret(trigger, body="-9"), interpret(entinfo, body="-20")):
        decision = decide(attempt(verdict, numbers=5))
        assert decision.result.next is Next.SPLIT
        assert decision.split == ((100, 101, 102), (103, 104))
        assert decision.outcome.state is ChunkState.FAILED


def test_a_duplicate_for_one_number_fails_unless_it_is_the_resend_of_an_unknown_chunk() -> None:
    failed = decide(attempt(interpret(entinfo, body="-20")))
    assert (failed.outcome.state, failed.outcome.error_class) == (ChunkState.FAILED, "duplicate")
    assert (
        failed.outcome.detail is not None and "already has this text for this number" in failed.outcome.detail
    )
    resent = decide(attempt(interpret(entinfo, body="-20"), requeued_from_unknown=True))
    assert resent.outcome.state is ChunkState.ACCEPTED


def test_an_account_problem_requeues_and_pauses() -> None:
    decision = decide(attempt(interpret(trigger, body="-3")))
    assert (decision.outcome.state, decision.result.next) == (ChunkState.QUEUED, Next.PAUSED)
    assert decision.pause


@pytest.mark.parametrize("body", ["-16", "-1", "-8", "-3", "-9"])
def test_in_a_cancelled_campaign_what_would_send_again_ends_as_cancelled(body: str) -> None:
    decision = decide(attempt(interpret(trigger, body=body), numbers=3, campaign="cancelled"))
    assert (decision.outcome.state, decision.outcome.error_class) == (ChunkState.FAILED, "cancelled")
    assert not decision.split and decision.pause is None and decision.result.next is Next.DONE


def test_a_final_refusal_keeps_its_class_in_a_cancelled_campaign() -> None:
    decision = decide(attempt(interpret(trigger, body="-4"), campaign="cancelled"))
    assert (decision.outcome.state, decision.outcome.error_class) == (ChunkState.FAILED, "bad_content")


def test_a_claim_with_nobody_left_waiting_sends_nothing_and_closes_the_chunk() -> None:
    decision = decide(attempt(Verdict(ChunkState.FAILED, sent=False), numbers=0))
    assert (decision.outcome.state, decision.outcome.error_class) == (ChunkState.FAILED, "nothing_to_send")


@pytest.mark.parametrize("body", ["-1", "-16"])
def test_a_resend_of_an_unknown_chunk_that_gives_up_is_unknown_again_not_failed(body: str) -> None:
    # Giving up on "try later" says only that the re-send was not taken; the first request may have
    # been: failed (and so "retry failed" without --include-unknown) would send it again
    plain = decide(attempt(interpret(trigger, body=body), attempts=40))
    assert plain.outcome.state is ChunkState.FAILED
    resent = decide(attempt(interpret(trigger, body=body), attempts=40, requeued_from_unknown=True))
    assert (resent.outcome.state, resent.result.next) == (ChunkState.UNKNOWN, Next.DONE)


def test_a_duplicate_for_a_resend_proves_nothing_when_another_request_carried_the_number() -> None:
    resent = attempt(interpret(entinfo, body="-20"), requeued_from_unknown=True)
    assert decide(replace(resent, sent_elsewhere=True)).outcome.state is ChunkState.UNKNOWN


@pytest.mark.parametrize(("module", "body"), [(trigger, "-54"), (trigger, "-4"), (entinfo, "-5")])
def test_a_content_refusal_of_a_personalised_batch_splits_it_until_the_refused_message_is_alone(
    module: object, body: str
) -> None:
    # entinfo's -5 "数据格式错误" is what gateways answer for content (a signature): refused content too
    verdict = interpret(module, body=body)  # type: ignore[arg-type]
    assert verdict.error_class == "bad_content"
    split = decide(attempt(verdict, numbers=5, personalised=True))
    assert (split.result.next, split.split) == (Next.SPLIT, ((100, 101, 102), (103, 104)))
    alone = decide(attempt(verdict, numbers=1, personalised=True))
    assert (alone.outcome.state, alone.outcome.error_class) == (ChunkState.FAILED, "bad_content")
    same_text = decide(attempt(verdict, numbers=5))  # one text for all: every recipient fails
    assert (same_text.outcome.state, same_text.result.next) == (ChunkState.FAILED, Next.DONE)


@pytest.mark.parametrize("requeued_from_unknown", [False, True])
@pytest.mark.parametrize("campaign", ["running", "cancelled"])
def test_a_code_missing_from_the_vendors_table_is_unknown_never_sent_again(
    campaign: str, requeued_from_unknown: bool
) -> None:
    verdict = interpret(trigger, body="-987:ok")
    decision = decide(
        attempt(verdict, numbers=3, campaign=campaign, requeued_from_unknown=requeued_from_unknown)
    )
    assert (decision.outcome.state, decision.outcome.code, decision.result.next) == (
        ChunkState.UNKNOWN,
        "-987",
        Next.DONE,
    )


def test_a_content_refusal_naming_its_word_parts_the_texts_holding_it_from_the_rest() -> None:
    refused = interpret(yunxin, body="-6:六合彩")
    texts = ("张三您好【店】", "六合彩李四【店】", "王五您好【店】", "赵六六合彩【店】", "钱七您好【店】")
    decision = decide(attempt(refused, texts=texts))
    assert (decision.result.next, decision.split) == (Next.SPLIT, ((101, 103), (100, 102, 104)))
    # ... and the part where every text holds it fails at once, without halving it further
    held = decide(attempt(refused, texts=(texts[1], texts[3])))
    assert (held.outcome.state, held.outcome.error_class, held.split) == (
        ChunkState.FAILED,
        "bad_content",
        (),
    )
    # a word no text holds as written (the vendor's own spelling): halves, as without one
    other = decide(attempt(interpret(yunxin, body="-6:赌博"), texts=texts))
    assert other.split == ((100, 101, 102), (103, 104))
