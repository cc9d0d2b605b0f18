"""What an attempt's answer means and what comes next (pure: values in, values out).

:func:`interpret` turns a vendor's answer body, or the transport's error, into a :class:`Verdict`;
:func:`decide` turns one :class:`SendAttempt` (the chunk, what the claim moved to ``sending``, the
request, the verdict, the timings) into a :class:`Decision`: what the store records and what the task
does next. Every answer class goes through :func:`decide`, on time or late (docs/state-machine.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dispatcher.backoff import Action, retry_policy
from dispatcher.errors import HTTPStatusError, NotSentError, OutcomeUnknownError
from dispatcher.store import CampaignState, ChunkState, Outcome
from dispatcher.store.chunks import Claimed, ClaimedRecipient
from dispatcher.vendors.registry import VendorModule
from dispatcher.vendors.wire import AnswerKind, ErrorClass, Request

# A vendor's "outside sending hours" inside the campaign's own window: ask again this much later.
OUTSIDE_HOURS_WAIT = timedelta(minutes=15)
# ... but not for ever: answered so this long without a break, the chunk fails with the vendor's reason
# (a gateway whose channel is closed for good says the same words).
OUTSIDE_HOURS_LIMIT = timedelta(hours=72)
MAX_RETRY_AFTER = 600.0  # seconds: a longer Retry-After is capped (the beat re-queues the chunk)
CANCELLED = "cancelled"  # the error class of what a cancel ended
NOTHING_TO_SEND = "nothing_to_send"  # a claimed chunk none of whose recipients was still waiting
FIRST_REQUEST_UNKNOWN = "the first, unknown request of this chunk may have been accepted"
# Classes whose giving up says only that this request was not taken (a busy or slow gateway).
RESENDABLE = frozenset({ErrorClass.RATE_LIMITED, ErrorClass.RETRY_LATER, ErrorClass.UNKNOWN})
DUPLICATE_DETAIL = "the vendor already has this text for this number (sent earlier): not sent again"


class Next(enum.StrEnum):
    """What the task does after a chunk's turn."""

    DONE = "done"  # nothing more (accepted, failed, unknown, or another worker had it)
    LATER = "later"  # still queued: send again after ``delay``
    SPLIT = "split"  # children were queued: send them
    PAUSED = "paused"  # the campaign was paused (an account problem)


@dataclass(frozen=True)
class Result:
    chunk_id: int
    next: Next
    delay: float = 0.0
    children: tuple[int, ...] = ()
    state: str = ""


@dataclass(frozen=True)
class Verdict:
    """What an answer (or a transport failure) means for the chunk."""

    state: ChunkState
    error_class: ErrorClass | None = None
    code: str | None = None
    detail: str | None = None
    batch_id: str | None = None
    sent: bool = True  # the request may have reached the vendor
    retry_after: float | None = None  # seconds the vendor asked us to wait (HTTP Retry-After)
    outside_hours: bool = False  # the vendor's "outside sending hours"
    # False: nothing left, for a reason of the worker's own (no rate limiter slot in time, the task
    # stopped): the attempt does not use up the retry budget.
    counted: bool = True
    remark: str = ""  # the answer's words after its code (yunxin names the forbidden word: ``-6:促销``)


def interpret(vendor: VendorModule, *, body: str | None = None, error: Exception | None = None) -> Verdict:
    """Turn a vendor's answer body, or the transport's error, into a verdict.

    The HTTP rule: a refusal before the request was sent (connect error), a 429 and a 503 with
    ``Retry-After`` are safe to retry; any other 5xx came after the body was sent and may hide an
    acceptance (a proxy's 502/504, a 500 after the gateway read the request), so it is ``unknown``.
    """
    if isinstance(error, NotSentError):
        return Verdict(ChunkState.QUEUED, ErrorClass.RETRY_LATER, detail=str(error), sent=False)
    if isinstance(error, OutcomeUnknownError):
        # Sent, no answer: the vendor may have accepted it. Never re-sent automatically.
        return Verdict(ChunkState.UNKNOWN, detail=str(error))
    if isinstance(error, HTTPStatusError):
        code, status = f"HTTP {error.status_code}", error.status_code
        wait = None if error.retry_after is None else min(error.retry_after, MAX_RETRY_AFTER)
        if status == 429:
            return Verdict(ChunkState.QUEUED, ErrorClass.RATE_LIMITED, code, str(error), retry_after=wait)
        if status == 503 and wait is not None:
            return Verdict(ChunkState.QUEUED, ErrorClass.RETRY_LATER, code, str(error), retry_after=wait)
        if status >= 500:
            detail = f"{error}: the request was sent, the gateway may have accepted it"
            return Verdict(ChunkState.UNKNOWN, code=code, detail=detail)
        return Verdict(ChunkState.FAILED, ErrorClass.BAD_REQUEST, code, str(error))
    if error is not None:
        raise error
    assert body is not None
    answer = vendor.parse_send(body)
    if answer.kind is AnswerKind.OK:
        return Verdict(ChunkState.ACCEPTED, batch_id=answer.value)
    if answer.kind is AnswerKind.UNEXPECTED:
        # Neither a batch id nor a code (a proxy's page, a truncated body): it may have been accepted.
        return Verdict(ChunkState.UNKNOWN, detail=f"unexpected answer: {answer.value[:200]}")
    assert answer.code is not None
    info = vendor.classify(answer.code)
    detail = f"{info.meaning_en}{': ' + answer.detail if answer.detail else ''}"
    if info.error_class is ErrorClass.UNKNOWN:
        # A code missing from the vendor's table may mean "taken, with a remark" (a gateway's new
        # code): sent again, every number could go twice. It may have been accepted.
        return Verdict(ChunkState.UNKNOWN, code=str(answer.code), detail=f"unclassified answer: {detail}")
    return Verdict(
        ChunkState.FAILED,
        info.error_class,
        str(answer.code),
        detail,
        outside_hours=info.outside_hours,
        remark=answer.detail,
    )


def in_window(now: datetime, window: tuple[int, int], tz: str) -> bool:
    if window == (0, 1440):
        return True
    local = now.astimezone(ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    return window[0] <= minute < window[1]


def next_window_open(now: datetime, window: tuple[int, int], tz: str) -> datetime:
    """When sending may next start: ``now`` inside the window, else the window's next opening."""
    if in_window(now, window, tz):
        return now
    local = now.astimezone(ZoneInfo(tz))
    opening = local.replace(hour=window[0] // 60, minute=window[0] % 60, second=0, microsecond=0)
    if opening <= local:
        opening += timedelta(days=1)
    return opening.astimezone(now.tzinfo)


@dataclass(frozen=True)
class ChunkRow:
    """What deciding about a chunk needs: its own columns and its campaign's, as loaded."""

    id: int
    state: str
    not_before: datetime | None
    ref: str
    text: str | None
    campaign_id: int
    account: str
    campaign_state: str
    window: tuple[int, int]
    timezone: str
    requeued_from_unknown: bool = False
    seen_at: datetime | None = None  # the database's clock when loaded
    recipient_count: int | None = None  # None: not loaded (fits any account)
    packed_for: str | None = None  # the account it was packed for (None: not known, or not loaded)


@dataclass(frozen=True)
class SendAttempt:
    """One attempt of one chunk, as the worker saw it: the value :func:`decide` works on."""

    chunk: ChunkRow
    claimed: Claimed  # the attempt number and the recipients the claim moved to ``sending``
    verdict: Verdict
    started: datetime
    finished: datetime
    request: Request | None = None  # None: nothing was sent (failed to build, or nothing to send)
    body: str | None = None
    url: str | None = None
    # Another request of the account carried (or may have carried) one of its numbers: a "duplicate"
    # answer may be about that one, so it proves nothing of this chunk's earlier, unknown request.
    sent_elsewhere: bool = False
    # When the vendor began to answer "outside sending hours" for this chunk, every attempt since
    # (this one included); None: this is the first.
    outside_hours_since: datetime | None = None

    def in_campaign(self, state: str) -> SendAttempt:
        """This attempt as seen when its campaign is in ``state`` (read when the outcome is recorded)."""
        return replace(self, chunk=replace(self.chunk, campaign_state=state))


@dataclass(frozen=True)
class Decision:
    outcome: Outcome  # what the store records for the chunk
    result: Result  # what the task does next (a split's children are filled in when created)
    split: tuple[tuple[int, ...], ...] = ()  # recipient ids of each child chunk
    pause: str | None = None  # pause the campaign, for this reason

    @property
    def waits(self) -> bool:
        """The chunk stays to be sent (queued, or split): what happens depends on its campaign."""
        return self.outcome.state is ChunkState.QUEUED or bool(self.split)


def _split(recipients: tuple[ClaimedRecipient, ...], v: Verdict) -> tuple[tuple[int, ...], ...]:
    """The parts a refused request's recipients are re-sent in: halves, until the refused one is alone.
    A content refusal naming its word (yunxin's ``-6:促销``) parts the texts holding it from the rest at
    once (one part only: every text holds it); a word no text holds as written halves as usual."""
    ids = tuple(r.id for r in recipients)
    if v.error_class is ErrorClass.BAD_CONTENT and v.remark:
        holding = tuple(r.id for r in recipients if v.remark in r.text)
        if holding:
            return tuple(part for part in (holding, tuple(i for i in ids if i not in holding)) if part)
    half = (len(ids) + 1) // 2
    return (ids[:half], ids[half:])


def decide(a: SendAttempt) -> Decision:
    """What the store records for ``a`` and what comes next, for every answer class.

    A campaign cancelled while the request was in flight ends it: an answer that would send it
    again (retry, split, pause, outside hours) fails it as ``cancelled``; accepted and unknown stand.
    """
    v, chunk_id = a.verdict, a.chunk.id

    def outcome(state: ChunkState, **changes: object) -> Outcome:
        record = Outcome(
            state,
            a.started,
            a.finished,
            batch_id=v.batch_id,
            error_class=v.error_class.value if v.error_class else None,
            code=v.code,
            detail=v.detail,
            request=a.request.form if a.request is not None else None,
            answer=a.body,
            url_used=a.url,
        )
        return replace(record, **changes)  # type: ignore[arg-type]

    def done(state: ChunkState, **changes: object) -> Decision:
        return Decision(outcome(state, **changes), Result(chunk_id, Next.DONE, state=state.value))

    if not a.claimed.recipients:
        return done(ChunkState.FAILED, error_class=NOTHING_TO_SEND, detail="no recipient was still waiting")
    if v.state is ChunkState.ACCEPTED:
        return done(ChunkState.ACCEPTED)
    if v.state is ChunkState.UNKNOWN or v.error_class is ErrorClass.UNKNOWN:
        # Nothing tells whether it was taken (``Action.LEAVE_UNKNOWN``): never re-sent by itself.
        return done(ChunkState.UNKNOWN, error_class=None)
    if a.request is None:  # nothing left the machine: failed to build, or nothing left to send
        return done(ChunkState.FAILED)

    error_class = v.error_class or ErrorClass.BAD_REQUEST  # refused for no reason given: not sent again
    recipients = a.claimed.recipients
    policy = retry_policy(
        error_class,
        a.claimed.attempts if v.counted else max(1, a.claimed.attempts - 1),
        recipients=len(recipients),
        outside_window=v.outside_hours,
        requeued_from_unknown=a.chunk.requeued_from_unknown,
        personalised=a.chunk.text is None,
    )
    action = policy.action
    again = a.chunk.requeued_from_unknown  # an operator's re-send of a chunk that may have been taken
    if again and (
        (action is Action.DONT_RESEND and a.sent_elsewhere)
        or (action is Action.FAIL and error_class in RESENDABLE)
    ):
        # Nothing here proves the first request was, or was not, taken: unknown it stays.
        return done(ChunkState.UNKNOWN, detail=f"{v.detail}; {FIRST_REQUEST_UNKNOWN}")
    if a.chunk.campaign_state == CampaignState.CANCELLED and action not in (Action.FAIL, Action.DONT_RESEND):
        detail = f"campaign cancelled while the request was in flight; the vendor answered: {v.detail}"
        if again:  # its first request may have been taken: never "not sent"
            return done(ChunkState.UNKNOWN, detail=f"{detail}; {FIRST_REQUEST_UNKNOWN}")
        return done(ChunkState.FAILED, error_class=CANCELLED, detail=detail)
    if action is Action.RETRY:
        delay = max(policy.delay_s, v.retry_after or 0.0)
        return Decision(
            outcome(ChunkState.QUEUED, retry_in=delay, counted=v.counted),
            Result(chunk_id, Next.LATER, delay=delay, state="queued"),
        )
    since = a.outside_hours_since or a.started
    if action is Action.WAIT_FOR_WINDOW and a.finished - since >= OUTSIDE_HOURS_LIMIT:
        hours = round(OUTSIDE_HOURS_LIMIT.total_seconds() / 3600)
        detail = f"{v.detail}; answered so for {hours} h since {since.isoformat(timespec='minutes')}: gave up"
        if again:
            return done(ChunkState.UNKNOWN, detail=f"{detail}; {FIRST_REQUEST_UNKNOWN}")
        return done(ChunkState.FAILED, detail=detail)
    if action is Action.WAIT_FOR_WINDOW:
        opening = next_window_open(a.finished, a.chunk.window, a.chunk.timezone)
        until = max(opening, a.finished + OUTSIDE_HOURS_WAIT)
        detail = f"{v.detail}; waiting until {until.isoformat(timespec='minutes')}"
        delay = (until - a.finished).total_seconds()
        return Decision(
            outcome(ChunkState.QUEUED, not_before=until, counted=False, detail=detail),
            Result(chunk_id, Next.LATER, delay=delay, state="queued"),
        )
    if action is Action.SPLIT:
        parts = _split(recipients, v)
        if len(parts) == 1:  # the word the vendor named is in every text: none of them can go
            return done(ChunkState.FAILED, detail=f"{v.detail} (every text holds it)")
        return Decision(
            outcome(ChunkState.FAILED, detail=f"{v.detail}; {policy.reason}"),
            Result(chunk_id, Next.SPLIT, state="split"),
            split=parts,
        )
    if action is Action.PAUSE_CAMPAIGN:
        # Not accepted: the chunk goes back to the queue and leaves when a person resumes.
        return Decision(
            outcome(ChunkState.QUEUED), Result(chunk_id, Next.PAUSED, state="paused"), pause=v.detail
        )
    if action is Action.DONT_RESEND:
        return done(ChunkState.ACCEPTED, detail=f"{v.detail}: {policy.reason}")
    duplicate = error_class is ErrorClass.DUPLICATE
    return done(
        ChunkState.FAILED,
        detail=f"{DUPLICATE_DETAIL} ({v.code})" if duplicate else f"{v.detail} ({policy.reason})",
    )
