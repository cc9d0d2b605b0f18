"""Packing messages into the fewest vendor requests the vendors' limits allow.

Identical texts share a "same text" request (up to ``same_text_numbers`` numbers); the rest go into
personalised requests (up to ``personalised_messages``, any mix of texts). Each group of ``g``
identical texts offers same-text requests that take ``S, S, ..., g mod S`` messages off the
personalised pool; with ``K`` same-text requests the best is to take the ``K`` largest pieces, so the
minimum over ``K`` of ``K + ceil(rest / P)`` is the fewest requests possible. Ties go to the larger
``K`` (more numbers per request body). Texts that would form a personalised separator as packed go alone.
"""

from __future__ import annotations

import gc
import hashlib
import operator
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from dispatcher.vendors import default_separators, registry
from dispatcher.vendors.wire import Limits, Separators, VendorMethods, breaks_packing

REF_DIGITS = 18  # entinfo rrid: 1-18 digits; trigger customerUuid takes up to 60 characters
_SEQ_DIGITS = 7  # up to 10,000,000 chunks per campaign (one per message for webservice)
_CAMPAIGN_LIMIT = 10 ** (REF_DIGITS - _SEQ_DIGITS)


@dataclass(slots=True)
class PlannedChunk:
    """One vendor request: ``text`` for a same-text request, ``texts`` (aligned with mobiles) otherwise."""

    seq: int
    ref: str
    method: str
    mobiles: tuple[str, ...]
    indexes: tuple[int, ...]  # positions in the message list given to :func:`plan`
    text: str | None = None
    texts: tuple[str, ...] | None = None

    @property
    def personalised(self) -> bool:
        return self.texts is not None


def chunk_ref(campaign_id: int | str, seq: int) -> str:
    """Stable digits (≤ 18) naming chunk ``seq`` of a campaign: trigger customerUuid, entinfo rrid."""
    if not 0 <= seq < 10**_SEQ_DIGITS:
        raise ValueError(f"chunk sequence {seq} out of range")
    if isinstance(campaign_id, int) and 0 <= campaign_id < _CAMPAIGN_LIMIT:
        base = campaign_id
    else:  # other ids: a stable hash of their text (never Python's salted hash())
        digest = hashlib.sha256(str(campaign_id).encode("utf-8")).digest()
        base = int.from_bytes(digest[:8], "big") % _CAMPAIGN_LIMIT
    return str(base * 10**_SEQ_DIGITS + seq)


def limits_for(
    vendor: str, same_text_max: int | None = None, *, encrypted: bool = False
) -> tuple[Limits, VendorMethods]:
    module = registry.get(vendor)  # UnknownVendorError naming the four
    limits, methods = module.LIMITS, module.SEND_METHODS
    if encrypted and module.ENCRYPTED_SEND_METHODS is not None:
        return Limits(1, 1, limits.reports_per_pull), module.ENCRYPTED_SEND_METHODS
    if same_text_max is not None:
        if not 1 <= same_text_max <= limits.same_text_numbers:
            raise ValueError(f"{vendor}: same-text maximum must be 1..{limits.same_text_numbers}")
        limits = Limits(same_text_max, limits.personalised_messages, limits.reports_per_pull)
    return limits, methods


def capacity(vendor: str, *, encrypted: bool = False) -> tuple[int, int]:
    """(numbers a same-text request may carry, messages a personalised request may carry; 0: no such
    method) on an account of ``vendor``: what a chunk must fit to be sent there at all.

    A chunk is sent by its kind, not its planned method's name (``dispatch.build_request``: a text:
    the vendor's same-text or single method; none: its personalised one), so a chunk planned for
    another vendor fits when its kind exists here and its numbers are within this limit. The vendor's
    limits, not an account's ``same_text_max``: that one is advice the vendor does not enforce, and a
    chunk planned before it was lowered is still sent as planned."""
    limits, methods = limits_for(vendor, encrypted=encrypted)
    same = limits.same_text_numbers if methods.same_text is not None else 1  # the single method
    personalised = limits.personalised_messages if methods.personalised is not None else 0
    return same, personalised


def fits(capacity: tuple[int, int], *, personalised: bool, count: int) -> bool:
    """Whether a chunk of ``count`` messages (``personalised``: no common text) fits ``capacity``."""
    return count <= capacity[1 if personalised else 0]


def _optimum(pieces: Sequence[int], ones: int, pers: int) -> tuple[int, int]:
    """(requests, pieces sent same-text) for pooled messages.

    ``pieces`` are the same-text candidates of repeated texts, largest first; ``ones`` the number of
    texts that occur once. K same-text requests remove at most the K largest pieces from the pool.
    """
    pool = sum(pieces) + ones
    best_total, best_k = -(-pool // pers), 0
    for k, piece in enumerate(pieces, start=1):
        pool -= piece
        total = k + -(-pool // pers)
        if total <= best_total:  # ties: more numbers per request body
            best_total, best_k = total, k
    # Lone texts sent on their own never save a request (j + ceil((n - j) / P) >= ceil(n / P)): they
    # stay in the pool, and a pool remainder of one goes out through the single method.
    return best_total, best_k


def fewest_requests(group_sizes: Sequence[int], pooled_ok: Sequence[bool], same: int, pers: int) -> int:
    """The fewest requests that carry groups of identical texts of these sizes.

    ``pooled_ok[i]`` is False for a group that cannot go personalised (its text holds a separator).
    """
    forced = sum(-(-g // same) for g, ok in zip(group_sizes, pooled_ok, strict=True) if not ok)
    pieces: list[int] = []
    ones = 0
    for g, ok in zip(group_sizes, pooled_ok, strict=True):
        if ok and g == 1:
            ones += 1
        elif ok:
            full, rest = divmod(g, same)
            pieces.extend([same] * full)
            if rest:
                pieces.append(rest)
    pieces.sort(reverse=True)
    return forced + _optimum(pieces, ones, pers)[0]


def plan(
    mobiles: Sequence[str],
    texts: Sequence[str],
    vendor: str,
    *,
    campaign_id: int | str,
    separators: Separators | None = None,
    same_text_max: int | None = None,
    encrypted: bool = False,
) -> list[PlannedChunk]:
    """The fewest requests that carry every message ``(mobiles[i], texts[i])`` within ``vendor``'s limits
    (those of its encrypted methods for an ``encrypted`` account).

    Takes the columns of :class:`dispatcher.contacts.Messages`; chunk ``indexes`` point into them.
    """
    if len(mobiles) != len(texts):
        raise ValueError("mobiles and texts differ in length")
    limits, methods = limits_for(vendor, same_text_max, encrypted=encrypted)
    separators = separators or default_separators(vendor)
    # Millions of long-lived objects and no cycles: the cyclic GC would only re-traverse them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _plan(mobiles, texts, limits, methods, campaign_id, separators)
    finally:
        if collecting:
            gc.enable()


def _plan(
    mobiles: Sequence[str],
    texts: Sequence[str],
    limits: Limits,
    methods: VendorMethods,
    campaign_id: int | str,
    separators: Separators,
) -> list[PlannedChunk]:
    if methods.personalised is None and methods.same_text is None:  # webservice: one message per request
        return [
            PlannedChunk(i, chunk_ref(campaign_id, i), methods.single, (mobiles[i],), (i,), text=texts[i])
            for i in range(len(texts))
        ]
    same = limits.same_text_numbers
    pers = limits.personalised_messages
    # Usually every text is distinct (a coupon code per row): a set says so at C speed. Only when some
    # text repeats, a Python pass finds each text's first index and the members of repeated texts.
    distinct: Collection[str] = set(texts)
    first: dict[str, int] = {}
    repeated: dict[str, list[int]] = {}
    if len(distinct) < len(texts):
        for index, text in enumerate(texts):
            at = first.setdefault(text, index)
            if at != index:
                members = repeated.get(text)
                if members is None:
                    repeated[text] = [at, index]
                else:
                    members.append(index)
        distinct = first.keys()
    seps = (separators.pair, separators.message) if methods.separated else ()
    blob = "\x00".join(distinct) if seps else ""
    # Texts that would form a separator as packed (holding one, or completing one across their ends:
    # ``-|王`` after ``|~|``) go on their own; the join finds out cheaply that no text holds any of
    # the separators' characters, so none can (one scan for the usual '|').
    marks = set("".join(seps))
    alone = _breaking(distinct, separators, marks, blob) if any(m in blob for m in marks) else set()
    del blob

    same_text: list[tuple[int, int, list[int]]] = []  # (first index, start, indexes): requests of one text
    candidates: list[tuple[int, int, int, list[int]]] = []  # (-size, first index, start, indexes)
    for text, members in repeated.items():
        for start in range(0, len(members), same):
            piece = members[start : start + same]
            if text in alone:
                same_text.append((members[0], start, piece))
            else:
                candidates.append((-len(piece), members[0], start, piece))
    singles = (
        sorted(i for t, i in first.items() if t not in repeated) if repeated else list(range(len(texts)))
    )
    if alone:
        same_text.extend((i, 0, [i]) for i in singles if texts[i] in alone)
        singles = [i for i in singles if texts[i] not in alone]
    candidates.sort()
    _, k = _optimum([-c[0] for c in candidates], len(singles), pers)
    same_text.extend((c[1], c[2], c[3]) for c in candidates[:k])
    same_text.sort(key=lambda item: (item[0], item[1]))
    pool = singles
    if k < len(candidates):
        for c in candidates[k:]:
            pool.extend(c[3])
        pool.sort()

    chunks: list[PlannedChunk] = []
    for _, _, indexes in same_text:
        method = methods.same_text if len(indexes) > 1 and methods.same_text else methods.single
        seq = len(chunks)
        chunks.append(
            PlannedChunk(
                seq,
                chunk_ref(campaign_id, seq),
                method,
                _pick(mobiles, indexes),
                tuple(indexes),
                text=texts[indexes[0]],
            )
        )
    personalised = methods.personalised or methods.single
    for start in range(0, len(pool), pers):
        batch = pool[start : start + pers]
        seq = len(chunks)
        ref = chunk_ref(campaign_id, seq)
        chunk_mobiles = _pick(mobiles, batch)
        if len(batch) == 1:
            chunks.append(
                PlannedChunk(seq, ref, methods.single, chunk_mobiles, tuple(batch), text=texts[batch[0]])
            )
        else:
            chunk_texts = _pick(texts, batch)
            chunks.append(
                PlannedChunk(seq, ref, personalised, chunk_mobiles, tuple(batch), texts=chunk_texts)
            )
    return chunks


def _breaking(texts: Collection[str], separators: Separators, marks: set[str], blob: str) -> set[str]:
    """The texts that would form a separator as packed (``wire.breaks_packing``). A text can only if
    it holds a whole separator, or one of the separators' characters lies at one of its ends (within a
    separator's length of it): a cheap test picks those out before the exact one."""
    pair, message = separators.pair, separators.message
    whole = pair in blob or message in blob
    reach = max(len(pair), len(message)) - 1
    return {
        t
        for t in texts
        if (
            not marks.isdisjoint(t[:reach])
            or not marks.isdisjoint(t[-reach:])
            or (whole and (pair in t or message in t))
        )
        and breaks_packing(t, separators)
    }


def _pick(values: Sequence[str], indexes: list[int]) -> tuple[str, ...]:
    """``values`` at ``indexes``, at C speed: a slice when the indexes run consecutively (the usual pool)."""
    if len(indexes) == 1:
        return (values[indexes[0]],)
    first, last = indexes[0], indexes[-1]
    if last - first + 1 == len(indexes):
        return tuple(values[first : last + 1])
    picked: tuple[str, ...] = operator.itemgetter(*indexes)(values)
    return picked


def by_method(chunks: Sequence[PlannedChunk]) -> dict[str, int]:
    """Requests per vendor method."""
    counts: dict[str, int] = {}
    for chunk in chunks:
        counts[chunk.method] = counts.get(chunk.method, 0) + 1
    return counts
