"""A/B variants: two or more templates on one campaign (``--template A --template B --split 70,30``).

Each input row draws its variant from a hash of (campaign id, row number): random, yet the same every
time for that campaign (the seed is the campaign). Every template is rendered for the whole list; a row
takes its message (or its rejection) from its own variant's rendering. Chunks are planned per variant,
so each request carries one variant and packing stays optimal within it.

:func:`figures` gives the per-variant figures of ``status["variants"]`` and whether the reply rates
differ significantly (a two-sided two-proportion z-test, :func:`two_proportion`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, distinct, func, select, update
from sqlalchemy.orm import Session

from dispatcher import chunker
from dispatcher.config import AccountConfig
from dispatcher.contacts import IngestResult
from dispatcher.contacts.ingest import Messages, Rejection, RejectKind
from dispatcher.errors import InputError
from dispatcher.i18n import N_
from dispatcher.store import Campaign, Recipient, RecipientState, ReplyRow

_WEIGHT = re.compile(r"[0-9]{1,6}")
NAMES = "ABCDEFGH"  # variant names, in the order the templates were given
SIGNIFICANCE = 0.05  # two-sided
TAKEN = (
    RecipientState.ACCEPTED.value,
    RecipientState.DELIVERED.value,
    RecipientState.UNDELIVERED.value,
    RecipientState.EXPIRED.value,
)


def parse_split(text: str | None, count: int) -> list[int]:
    """``"70,30"`` → ``[70, 30]``: one positive whole number per template; none given: an even split."""
    if count > len(NAMES):
        raise InputError.say(N_("at most %(count)s templates per campaign"), count=len(NAMES))
    if not text:
        return [1] * count
    parts = [p.strip() for p in text.split(",")]
    # ASCII digits, at most six: str.isdigit() passes "²" and int() refuses 4,301 digits (a 500).
    if len(parts) != count or not all(_WEIGHT.fullmatch(p) and int(p) > 0 for p in parts):
        raise InputError.say(
            N_("split %(split)r must give one positive whole number per template (%(count)s), e.g. 70,30"),
            split=text,
            count=count,
        )
    return [int(p) for p in parts]


def draw(campaign_id: int, row: int, weights: Sequence[int]) -> int:
    """The variant of input row ``row``: uniform from a hash seeded by the campaign, cut by ``weights``."""
    digest = hashlib.sha256(f"{campaign_id}:{row}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(weights)
    for index, weight in enumerate(weights):
        if point < weight:
            return index
        point -= weight
    return len(weights) - 1


def merge(
    results: Sequence[IngestResult], campaign_id: int, weights: Sequence[int]
) -> tuple[IngestResult, list[int]]:
    """One result from each template's rendering: a row's message or rejection from its own variant's.
    Returns the result and each message's variant index.

    The renderings should not de-duplicate (``ingest(..., dedupe=False)``): a number is de-duplicated
    here, in input order, once each row has its variant, so that only a row its own variant sends (or
    an opted-out one, as ``ingest`` counts it) takes the number. Had a rendering de-duplicated, a row
    its variant rejects for its text (a value only that wording uses) could take the number there,
    and its later rows, drawn the other variant, be rejected as duplicates of a row never sent."""
    first = results[0]
    rows: list[tuple[int, int, int, Rejection | None]] = []  # row, variant, message index, or rejection
    for index, result in enumerate(results):
        for i, row in enumerate(result.messages.rows):
            if draw(campaign_id, row, weights) == index:
                rows.append((row, index, i, None))
        rows.extend(
            (r.row, index, -1, r) for r in result.rejected if draw(campaign_id, r.row, weights) == index
        )
    merged = Messages(values={})
    variant_of: list[int] = []
    rejected: list[Rejection] = []
    seen: dict[str, tuple[int, str | None]] = {}  # number: the row that took it, and its text sent
    for row, index, i, rejection in sorted(rows, key=lambda item: item[0]):  # input order
        if rejection is not None:
            claimed = rejection.mobile if rejection.kind is RejectKind.OPTED_OUT else None
            if claimed is not None and claimed in seen:
                rejection = _duplicate(first, row, claimed, seen[claimed][0], "duplicate")
            elif claimed is not None:
                seen[claimed] = (row, None)
            rejected.append(rejection)
            continue
        m = results[index].messages
        mobile = m.mobiles[i]
        if mobile in seen:
            kept_row, kept_text = seen[mobile]
            code = "duplicate" if kept_text in (None, m.texts[i]) else "duplicate_other_text"
            rejected.append(_duplicate(first, row, mobile, kept_row, code))
            continue
        seen[mobile] = (row, m.texts[i])
        merged.rows.append(row)
        merged.mobiles.append(mobile)
        merged.texts.append(m.texts[i])
        merged.segments.append(m.segments[i])
        variant_of.append(index)
    rejected.sort(key=lambda r: r.row)
    warnings = list(dict.fromkeys(w for r in results for w in r.warnings))
    notices: list[tuple[str, dict[str, Any]]] = []
    for r in results:
        for notice in r.notices:
            if notice not in notices:
                notices.append(notice)
    out = replace(
        first, messages=merged, rejected=rejected, warnings=warnings, notices=notices, not_gb2312=[]
    )
    return out, variant_of


def _duplicate(first: IngestResult, row: int, mobile: str, kept_row: int, code: str) -> Rejection:
    """Row ``row`` rejected as a repeat of ``kept_row``'s number (``duplicate_other_text``: its text differed
    from the one sent)."""
    return Rejection(row, first.phone_column, mobile, code, {"row": kept_row}, RejectKind.DUPLICATE, mobile)


def plan(
    result: IngestResult, variant_of: Sequence[int], account: AccountConfig, campaign_id: int
) -> tuple[list[chunker.PlannedChunk], list[int]]:
    """Chunks planned per variant (one variant per request), numbered in one sequence; and each
    chunk's variant index."""
    m = result.messages
    chunks: list[chunker.PlannedChunk] = []
    chunk_variant: list[int] = []
    for index in sorted(set(variant_of)):
        members = [i for i, v in enumerate(variant_of) if v == index]
        planned = chunker.plan(
            [m.mobiles[i] for i in members],
            [m.texts[i] for i in members],
            account.vendor,
            campaign_id=campaign_id,
            separators=account.separators(),
            same_text_max=account.same_text_max,
            encrypted=account.encrypted,
        )
        for p in planned:
            seq = len(chunks)
            p.seq, p.ref = seq, chunker.chunk_ref(campaign_id, seq)
            p.indexes = tuple(members[i] for i in p.indexes)
            chunks.append(p)
            chunk_variant.append(index)
    return chunks, chunk_variant


def describe(templates: Sequence[str], weights: Sequence[int]) -> list[dict[str, Any]]:
    """What ``campaigns.variants`` stores."""
    total = sum(weights)
    return [
        {"name": NAMES[i], "template": t, "share": round(100 * w / total, 2)}
        for i, (t, w) in enumerate(zip(templates, weights, strict=True))
    ]


def tag(session: Session, campaign_id: int, chunk_of: Sequence[int], variant_of: Sequence[int]) -> None:
    """Write each accepted row's variant (by its chunk: one variant per chunk). Caller's transaction."""
    by_variant: dict[int, set[int]] = {}
    for chunk_id, index in zip(chunk_of, variant_of, strict=True):
        by_variant.setdefault(index, set()).add(chunk_id)
    for index, chunk_ids in by_variant.items():
        ids = sorted(chunk_ids)
        for start in range(0, len(ids), 1000):
            session.execute(
                update(Recipient)
                .where(
                    Recipient.campaign_id == campaign_id, Recipient.chunk_id.in_(ids[start : start + 1000])
                )
                .values(variant=NAMES[index]),
                execution_options={"synchronize_session": False},
            )


def two_proportion(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float] | None:
    """Two-sided two-proportion z-test of x1/n1 against x2/n2 (pooled): ``(z, p)``, or None when it cannot
    be computed (an empty group, or no variation at all)."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return None
    z = (x1 / n1 - x2 / n2) / spread
    return z, math.erfc(abs(z) / math.sqrt(2))


def figures(session: Session, campaign: Campaign) -> dict[str, Any]:
    """``{"variants": {name: {...}}, "variant_test": {...}}`` for ``status``."""
    rows = session.execute(
        select(Recipient.variant, Recipient.state, func.count())
        .where(Recipient.campaign_id == campaign.id, Recipient.state != RecipientState.REJECTED.value)
        .group_by(Recipient.variant, Recipient.state)
    ).all()
    names = [v["name"] for v in campaign.variants or []]
    out: dict[str, dict[str, Any]] = {
        n: {"recipients": 0, "accepted": 0, "delivered": 0, "undelivered": 0, "replies": 0, "opt_outs": 0}
        for n in names
    }
    for variant, state, count in rows:
        if variant not in out:
            continue
        f = out[variant]
        f["recipients"] += int(count)
        if state in TAKEN:
            f["accepted"] += int(count)
        if state in ("delivered", "undelivered"):
            f[state] += int(count)
    # Replies: distinct numbers of the variant that replied to this campaign (and those that opted out).
    joined = and_(Recipient.campaign_id == ReplyRow.campaign_id, Recipient.mobile == ReplyRow.mobile)
    for variant, replied, opted in session.execute(
        select(
            Recipient.variant,
            func.count(distinct(ReplyRow.mobile)),
            func.count(distinct(ReplyRow.mobile)).filter(ReplyRow.is_optout.is_(True)),
        )
        .join(ReplyRow, joined)
        .where(Recipient.campaign_id == campaign.id, Recipient.state != RecipientState.REJECTED.value)
        .group_by(Recipient.variant)
    ).all():
        if variant in out:
            out[variant]["replies"], out[variant]["opt_outs"] = int(replied), int(opted)
    for f in out.values():
        reported = f["delivered"] + f["undelivered"]
        f["delivery_rate"] = round(f["delivered"] / reported, 4) if reported else None
        f["reply_rate"] = round(f["replies"] / f["accepted"], 4) if f["accepted"] else None
    data: dict[str, Any] = {"variants": out}
    if len(names) >= 2:
        a, b = out[names[0]], out[names[1]]
        test = two_proportion(a["replies"], a["accepted"], b["replies"], b["accepted"])
        data["variant_test"] = {
            "compared": [names[0], names[1]],
            "metric": "reply_rate",
            "z": None if test is None else round(test[0], 4),
            "p_value": None if test is None else round(test[1], 6),
            "significant": test is not None and test[1] < SIGNIFICANCE,
            "alpha": SIGNIFICANCE,
        }
    return data
