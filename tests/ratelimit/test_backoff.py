"""Backoff maths and the per-class retry policy (pure)."""

from __future__ import annotations

import random

import pytest

from dispatcher.backoff import POLICIES, Action, compute_backoff, retry_policy
from dispatcher.vendors.wire import ErrorClass
from workers.app import MAX_COUNTDOWN


def test_given_no_jitter_then_backoff_doubles_per_attempt_up_to_the_cap() -> None:
    got = [compute_backoff(n, factor=1.5, jitter=False, max_backoff=20) for n in range(6)]
    assert got == [1.5, 3.0, 6.0, 12.0, 20.0, 20.0]


def test_given_a_huge_attempt_count_then_backoff_is_the_cap_not_an_overflow() -> None:
    assert compute_backoff(10_000, jitter=False, max_backoff=300) == 300.0


def test_given_jitter_then_backoff_is_spread_over_zero_to_the_unjittered_value() -> None:
    rng = random.Random(7)
    draws = [compute_backoff(3, factor=1.0, rng=rng) for _ in range(2000)]
    assert all(0.0 <= d <= 8.0 for d in draws)
    assert min(draws) < 0.5 and max(draws) > 7.5  # full jitter, not "half plus noise"
    assert 3.6 < sum(draws) / len(draws) < 4.4


def test_given_the_same_seed_then_the_same_backoff() -> None:
    assert compute_backoff(4, rng=random.Random(1)) == compute_backoff(4, rng=random.Random(1))


def test_given_negative_attempts_then_refused() -> None:
    with pytest.raises(ValueError):
        compute_backoff(-1)


def test_given_rate_limited_then_retry_soon_and_many_times() -> None:
    decision = retry_policy(ErrorClass.RATE_LIMITED, 1, rng=random.Random(0))
    assert decision.action is Action.RETRY and decision.retries
    assert 0.0 <= decision.delay_s <= 0.5
    assert retry_policy(ErrorClass.RATE_LIMITED, 30).action is Action.RETRY
    assert retry_policy(ErrorClass.RATE_LIMITED, 31).action is Action.FAIL


def test_given_retry_later_then_backoff_grows_and_gives_up_after_five_retries() -> None:
    caps = [
        retry_policy(ErrorClass.RETRY_LATER, n, rng=random.Random(n)).delay_s / 2.0 ** (n - 1)
        for n in range(1, 6)
    ]
    assert all(0.0 <= c <= 2.0 for c in caps)  # within factor * 2**(attempts - 1)
    assert retry_policy(ErrorClass.RETRY_LATER, 5).action is Action.RETRY
    assert retry_policy(ErrorClass.RETRY_LATER, 6).action is Action.FAIL


def test_given_retry_later_outside_sending_hours_then_wait_for_the_window() -> None:
    decision = retry_policy(ErrorClass.RETRY_LATER, 9, outside_window=True)
    assert decision.action is Action.WAIT_FOR_WINDOW


def test_given_bad_recipient_in_a_multi_number_request_then_split() -> None:
    assert retry_policy(ErrorClass.BAD_RECIPIENT, 1, recipients=50).action is Action.SPLIT


def test_given_bad_recipient_alone_then_it_fails() -> None:
    assert retry_policy(ErrorClass.BAD_RECIPIENT, 1, recipients=1).action is Action.FAIL


@pytest.mark.parametrize("error_class", [ErrorClass.BAD_CONTENT, ErrorClass.BAD_REQUEST])
def test_given_a_content_or_packing_error_then_fail_without_retry(error_class: ErrorClass) -> None:
    assert retry_policy(error_class, 1, recipients=500).action is Action.FAIL


def test_given_an_account_error_then_pause_the_campaign() -> None:
    assert retry_policy(ErrorClass.ACCOUNT, 1).action is Action.PAUSE_CAMPAIGN


def test_given_duplicate_then_split_a_batch_fail_one_number_unless_it_resends_an_unknown_one() -> None:
    # entinfo -20 refuses a whole request for one repeated number: the others must still go
    assert retry_policy(ErrorClass.DUPLICATE, 1, recipients=5).action is Action.SPLIT
    assert retry_policy(ErrorClass.DUPLICATE, 1).action is Action.FAIL
    # ... and proves an earlier acceptance only for an operator's re-send of its own unknown chunk
    assert retry_policy(ErrorClass.DUPLICATE, 2, requeued_from_unknown=True).action is Action.DONT_RESEND


def test_given_an_unknown_code_then_it_is_never_sent_again_by_itself() -> None:
    # A code missing from the table may mean "taken, with a remark": sent again, it could go twice
    assert {retry_policy(ErrorClass.UNKNOWN, n, recipients=5).action for n in (1, 2, 3)} == {
        Action.LEAVE_UNKNOWN
    }


def test_given_a_content_refusal_then_a_personalised_batch_splits_and_a_same_text_one_fails() -> None:
    # One message's words refuse a whole personalised request: halve it until that message is alone
    assert retry_policy(ErrorClass.BAD_CONTENT, 1, recipients=5, personalised=True).action is Action.SPLIT
    assert retry_policy(ErrorClass.BAD_CONTENT, 1, recipients=1, personalised=True).action is Action.FAIL
    assert retry_policy(ErrorClass.BAD_CONTENT, 1, recipients=5).action is Action.FAIL  # one text for all


def test_given_attempts_zero_then_refused() -> None:
    with pytest.raises(ValueError):
        retry_policy(ErrorClass.UNKNOWN, 0)


def test_given_every_class_then_it_has_a_policy_and_no_delay_exceeds_a_safe_countdown() -> None:
    assert set(POLICIES) == set(ErrorClass)
    assert all(p.max_backoff <= MAX_COUNTDOWN for p in POLICIES.values())
