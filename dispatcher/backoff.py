"""Retry maths and the per-class retry policy (pure: values in, values out).

:func:`compute_backoff` is exponential backoff with full jitter, bounded (dramatiq's is the model).
:func:`retry_policy` turns an answer's :class:`ErrorClass` and the attempts so far into what the
dispatcher does next (docs/state-machine.md, "What each answer does"); :data:`POLICIES` is that table.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from types import MappingProxyType

from dispatcher.vendors.wire import ErrorClass

# 2**32 seconds is far beyond any cap: larger exponents only risk float overflow.
_MAX_EXPONENT = 32


def compute_backoff(
    attempts: int,
    *,
    factor: float = 1.0,
    jitter: bool = True,
    max_backoff: float = 300.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after ``attempts`` failed attempts (0 = the first one failed).

    ``factor * 2**attempts`` capped at ``max_backoff``; with ``jitter``, a uniform draw in
    ``[0, that]`` ("full jitter"), so that workers that failed together do not retry together.
    """
    if attempts < 0:
        raise ValueError("attempts must be >= 0")
    backoff = min(factor * 2.0 ** min(attempts, _MAX_EXPONENT), max_backoff)
    if jitter:
        backoff = (rng or random).uniform(0.0, backoff)
    return backoff


class Action(enum.StrEnum):
    """What to do with a request after an error answer."""

    RETRY = "retry"  # send the same request again after ``delay_s``
    WAIT_FOR_WINDOW = "wait_for_window"  # outside sending hours: resend when the window opens
    SPLIT = "split"  # halve a multi-number request to isolate the bad numbers, send the halves
    FAIL = "fail"  # give up: the request's recipients fail with the code
    PAUSE_CAMPAIGN = "pause_campaign"  # an account problem: stop the campaign and tell a person
    DONT_RESEND = "dont_resend"  # the vendor already has this re-sent submission: it was accepted
    LEAVE_UNKNOWN = "leave_unknown"  # the answer does not say whether it was taken: a person decides


@dataclass(frozen=True)
class RetryDecision:
    action: Action
    delay_s: float = 0.0  # for RETRY
    reason: str = ""

    @property
    def retries(self) -> bool:
        return self.action is Action.RETRY


@dataclass(frozen=True)
class ClassPolicy:
    """How one error class is handled."""

    action: Action  # what the first answer of this class leads to
    max_retries: int = 0  # for RETRY: resends before giving up with FAIL
    factor: float = 1.0  # backoff factor, seconds
    max_backoff: float = 300.0  # backoff cap, seconds
    note: str = ""


# What each error class leads to, as data.
POLICIES: MappingProxyType[ErrorClass, ClassPolicy] = MappingProxyType(
    {
        # The limiter slows the whole account (penalise) and paces the resend; the delay only
        # spreads the resends. Not the request's fault, so it may wait many times.
        ErrorClass.RATE_LIMITED: ClassPolicy(Action.RETRY, max_retries=30, factor=0.5, max_backoff=10.0),
        ErrorClass.RETRY_LATER: ClassPolicy(Action.RETRY, max_retries=5, factor=2.0, max_backoff=300.0),
        ErrorClass.BAD_RECIPIENT: ClassPolicy(Action.SPLIT, note="a single number fails"),
        # A personalised request splits instead (``retry_policy``): one message may refuse it whole.
        ErrorClass.BAD_CONTENT: ClassPolicy(
            Action.FAIL, note="every recipient of the text fails; a personalised request splits"
        ),
        ErrorClass.BAD_REQUEST: ClassPolicy(Action.FAIL, note="a packing bug: fail loudly"),
        ErrorClass.ACCOUNT: ClassPolicy(Action.PAUSE_CAMPAIGN),
        # entinfo -20 refuses the whole request for one repeated number: split like a bad number.
        ErrorClass.DUPLICATE: ClassPolicy(
            Action.SPLIT, note="the vendor already has this text for this number"
        ),
        # A code the client cannot classify may mean "taken, with a remark": sent again, it could go
        # twice. Never re-sent by itself; logged with the body so that the table can be extended.
        ErrorClass.UNKNOWN: ClassPolicy(Action.LEAVE_UNKNOWN, note="an answer the client cannot classify"),
    }
)


def retry_policy(
    error_class: ErrorClass,
    attempts: int,
    *,
    recipients: int = 1,
    outside_window: bool = False,
    requeued_from_unknown: bool = False,
    personalised: bool = False,
    rng: random.Random | None = None,
) -> RetryDecision:
    """What to do after the ``attempts``-th attempt (1 = the first send) was answered ``error_class``.

    ``recipients``: numbers in the request (a bad recipient among several splits the request).
    ``outside_window``: the vendor said "outside sending hours" (a ``retry_later`` code): wait for
    the window rather than burn retries.
    ``requeued_from_unknown``: the request is an operator's re-send of an ``unknown`` one; a
    ``duplicate`` answer for a single number then proves the first one was accepted.
    ``personalised``: each number has its own text. A content refusal then may be one message's words
    (a forbidden word in one name) refusing the whole request: it splits like a bad number.
    """
    if attempts < 1:
        raise ValueError("attempts counts the attempt just made: >= 1")
    policy = POLICIES[error_class]
    if error_class is ErrorClass.BAD_CONTENT and personalised and recipients > 1:
        return RetryDecision(Action.SPLIT, reason=f"{error_class}: isolate the refused message")
    if policy.action is Action.SPLIT:
        if recipients > 1:
            return RetryDecision(Action.SPLIT, reason=f"{error_class}: isolate the bad numbers")
        if error_class is ErrorClass.DUPLICATE and requeued_from_unknown:
            return RetryDecision(Action.DONT_RESEND, reason="the earlier, unknown attempt was accepted")
        return RetryDecision(Action.FAIL, reason=f"{error_class}: {policy.note}")
    if policy.action is not Action.RETRY:
        return RetryDecision(
            policy.action, reason=f"{error_class}{': ' + policy.note if policy.note else ''}"
        )
    if error_class is ErrorClass.RETRY_LATER and outside_window:
        return RetryDecision(Action.WAIT_FOR_WINDOW, reason="outside the vendor's sending hours")
    if attempts > policy.max_retries:
        return RetryDecision(Action.FAIL, reason=f"{error_class}: gave up after {attempts} attempts")
    delay = compute_backoff(attempts - 1, factor=policy.factor, max_backoff=policy.max_backoff, rng=rng)
    return RetryDecision(Action.RETRY, delay_s=delay, reason=f"{error_class}: attempt {attempts}")
