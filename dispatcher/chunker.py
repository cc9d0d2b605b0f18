"""Packing messages into the fewest vendor requests the limits of VENDORS.md allow.

Identical texts share a "same text" request (up to ``same_text_numbers`` numbers); the rest go into
personalised requests (up to ``personalised_messages``, any mix of texts). Each group of ``g``
identical texts offers same-text requests that take ``S, S, ..., g mod S`` messages off the
personalised pool; with ``K`` same-text requests the best is to take the ``K`` largest pieces, so the
minimum over ``K`` of ``K + ceil(rest / P)`` is the fewest requests possible. Ties go to the larger
``K`` (more numbers per request body). Texts containing the personalised separator must go alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from dispatcher.errors import UnknownVendorError
from dispatcher.vendors.wire import Limits, Separators

ENTINFO_SAME_TEXT_ADVISED = 5_000  # the vendor's advice; 10,000 is the hard limit


@dataclass(frozen=True)
class VendorMethods:
    """A vendor's send methods: ``None`` where it has no such method."""

    same_text: str | None  # many numbers, one text
    personalised: str | None  # number/text pairs
    single: str  # one number, one text
    separated: bool = True  # personalised messages joined by Separators (entinfo URL-encodes instead)


LIMITS: dict[str, Limits] = {
    "webservice": Limits(same_text_numbers=1, personalised_messages=1),
    "yunxin": Limits(same_text_numbers=500, personalised_messages=1000),
    "trigger": Limits(same_text_numbers=50, personalised_messages=50),
    "entinfo": Limits(same_text_numbers=10_000, personalised_messages=1000),
}

METHODS: dict[str, VendorMethods] = {
    "webservice": VendorMethods(same_text=None, personalised=None, single="SendMsg"),
    "yunxin": VendorMethods(same_text="SendMsg", personalised="IndividualSm", single="SendMsg"),
    "trigger": VendorMethods(same_text="SendBatchMsg", personalised="SendIndividualMsg", single="SendMsg"),
    "entinfo": VendorMethods(
        same_text="mdsmssend", personalised="mdgxsend", single="mdsmssend", separated=False
    ),
}

REF_DIGITS = 18  # entinfo rrid: 1-18 digits; trigger customerUuid takes up to 60 characters
_SEQ_DIGITS = 7  # up to 10,000,000 chunks per campaign (one per message for webservice)
_CAMPAIGN_LIMIT = 10 ** (REF_DIGITS - _SEQ_DIGITS)


@dataclass(frozen=True, slots=True)
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


def limits_for(vendor: str, same_text_max: int | None = None) -> tuple[Limits, VendorMethods]:
    try:
        limits, methods = LIMITS[vendor], METHODS[vendor]
    except KeyError:
        raise UnknownVendorError(f"unknown vendor {vendor!r}; one of: {', '.join(LIMITS)}") from None
    if same_text_max is not None:
        if not 1 <= same_text_max <= limits.same_text_numbers:
            raise ValueError(f"{vendor}: same-text maximum must be 1..{limits.same_text_numbers}")
        limits = Limits(same_text_max, limits.personalised_messages, limits.reports_per_pull)
    return limits, methods


def fewest_requests(
    group_sizes: Sequence[int], pooled_ok: Sequence[bool], same: int, pers: int
) -> tuple[int, int]:
    """(fewest requests, same-text requests to use) for groups of identical texts.

    ``pooled_ok[i]`` is False for a group that cannot go personalised (its text holds a separator).
    """
    forced = sum(-(-g // same) for g, ok in zip(group_sizes, pooled_ok, strict=True) if not ok)
    pieces: list[int] = []
    for g, ok in zip(group_sizes, pooled_ok, strict=True):
        if ok:
            full, rest = divmod(g, same)
            pieces.extend([same] * full)
            if rest:
                pieces.append(rest)
    pieces.sort(reverse=True)
    pool = sum(pieces)
    best_total, best_k = -(-pool // pers), 0
    for k, piece in enumerate(pieces, start=1):
        pool -= piece
        total = k + -(-pool // pers)
        if total <= best_total:
            best_total, best_k = total, k
    return forced + best_total, best_k


def plan(
    mobiles: Sequence[str],
    texts: Sequence[str],
    vendor: str,
    *,
    campaign_id: int | str,
    separators: Separators = Separators(),
    same_text_max: int | None = None,
) -> list[PlannedChunk]:
    """The fewest requests that carry every message ``(mobiles[i], texts[i])`` within ``vendor``'s limits."""
    if len(mobiles) != len(texts):
        raise ValueError("mobiles and texts differ in length")
    limits, methods = limits_for(vendor, same_text_max)
    same = limits.same_text_numbers if methods.same_text else 1
    pers = limits.personalised_messages if methods.personalised else 1
    if same == 1 and pers == 1:  # webservice: one request per message, in message order
        return [
            PlannedChunk(i, chunk_ref(campaign_id, i), methods.single, (mobiles[i],), (i,), text=texts[i])
            for i in range(len(texts))
        ]
    groups: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        members = groups.get(text)
        if members is None:
            groups[text] = [index]
        else:
            members.append(index)
    group_texts = list(groups)
    sizes = [len(groups[t]) for t in group_texts]
    seps = (separators.pair, separators.message) if methods.separated and methods.personalised else ()
    pooled_ok = [not any(s in t for s in seps) for t in group_texts]
    _, k = fewest_requests(sizes, pooled_ok, same, pers)

    # Which pieces go same-text: the k largest (ties: earliest group first, so the plan is stable).
    pieces: list[tuple[int, int, int]] = []  # (-size, group, start)
    same_text: list[tuple[int, int, int]] = []  # (group, start, size)
    for g, (size, ok) in enumerate(zip(sizes, pooled_ok, strict=True)):
        for start in range(0, size, same):
            piece = (g, start, min(same, size - start))
            if ok:
                pieces.append((-piece[2], g, start))
            else:
                same_text.append(piece)
    if k:
        pieces.sort()
        same_text.extend((g, start, min(same, sizes[g] - start)) for _, g, start in pieces[:k])
        same_text.sort()
    taken = {(g, start) for g, start, _ in same_text}
    pool: list[int] = []
    for g, text in enumerate(group_texts):
        if pooled_ok[g]:
            members = groups[text]
            for start in range(0, sizes[g], same):
                if (g, start) not in taken:
                    pool.extend(members[start : start + same])
    pool.sort()

    chunks: list[PlannedChunk] = []
    for g, start, size in same_text:
        indexes = tuple(groups[group_texts[g]][start : start + size])
        method = methods.same_text if size > 1 and methods.same_text else methods.single
        seq = len(chunks)
        chunks.append(
            PlannedChunk(
                seq,
                chunk_ref(campaign_id, seq),
                method,
                tuple(mobiles[i] for i in indexes),
                indexes,
                text=group_texts[g],
            )
        )
    for start in range(0, len(pool), pers):
        indexes = tuple(pool[start : start + pers])
        seq = len(chunks)
        ref = chunk_ref(campaign_id, seq)
        chunk_mobiles = tuple(mobiles[i] for i in indexes)
        if len(indexes) == 1 or methods.personalised is None:
            chunks.append(
                PlannedChunk(seq, ref, methods.single, chunk_mobiles, indexes, text=texts[indexes[0]])
            )
        else:
            chunk_texts = tuple(texts[i] for i in indexes)
            chunks.append(
                PlannedChunk(seq, ref, methods.personalised, chunk_mobiles, indexes, texts=chunk_texts)
            )
    return chunks


def by_method(chunks: Sequence[PlannedChunk]) -> dict[str, int]:
    """Requests per vendor method."""
    counts: dict[str, int] = {}
    for chunk in chunks:
        counts[chunk.method] = counts.get(chunk.method, 0) + 1
    return counts
