"""The web form's side of routing (issue 14): the A/B template and fallback accounts it sends, and the
balance guard's figures for the preview (the same :func:`dispatcher.balance_guard.plan` a start uses)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from dispatcher import balance_guard
from dispatcher.web.context import WebContext

MAX_FALLBACKS = 3  # selects on the form


def form_values(request_form: Any) -> dict[str, str]:
    """``template_b``, ``split``, and ``fallbacks`` (the chosen selects in order, joined by commas)."""
    chosen = (
        [str(v).strip() for v in request_form.getlist("fallback")] if hasattr(request_form, "getlist") else []
    )
    return {
        "template_b": str(request_form.get("template_b") or ""),
        "split": str(request_form.get("split") or ""),
        "fallbacks": ",".join(v for v in chosen if v),
    }


def fallbacks(values: dict[str, str]) -> list[str]:
    return [v for v in (values.get("fallbacks") or "").split(",") if v]


def variant_templates(values: dict[str, str]) -> list[str]:
    second = (values.get("template_b") or "").strip()
    return [second] if second else []


def preview_variant(ctx: WebContext, upload: Any, values: dict[str, str], result: dict[str, Any]) -> None:
    """With a template B: its preview's samples and segments go into ``result["variant_b"]`` (an error in
    it, or in the split, is raised like template A's)."""
    second = variant_templates(values)
    if not second:
        return
    from dispatcher import variants
    from dispatcher.web import uploads

    weights = variants.parse_split(values.get("split") or None, 2)
    other = uploads.preview(
        ctx, upload, values["account"], second[0], values["sheet"], values["phone_column"]
    )
    result["variant_b"] = {
        "samples": other["samples"],
        "segments": other["segments"],
        "messages": other["messages"],
        "weights": weights,
    }


def _segments(preview: dict[str, Any]) -> int:
    """What the campaign will bill: with a template B, each wording's segments in its share."""
    a = int(preview.get("segments") or 0)
    b = preview.get("variant_b")
    if not b:
        return a
    wa, wb = (int(w) for w in b["weights"])
    total: int = round((a * wa + int(b["segments"]) * wb) / (wa + wb))
    return total


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def preview_plan(
    ctx: WebContext, values: dict[str, str], preview: dict[str, Any], balance: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The guard's plan for the previewed campaign: its account's balance (already read for the page),
    then the fallbacks' (each through its balance gate)."""
    account = values.get("account") or ""
    if account not in ctx.settings.accounts:
        return None
    rows = [
        (
            account,
            ctx.settings.account(account).price_per_segment,
            _amount((balance or {}).get("value")),
            None,
        )
    ]
    for name in fallbacks(values):
        if name not in ctx.settings.accounts or name == account:
            continue
        config = ctx.settings.account(name)
        reading = (
            balance_guard.read_balance(ctx.settings, ctx.redis, name) if config.price_per_segment else None
        )
        rows.append((name, config.price_per_segment, reading.amount if reading else None, None))
    return balance_guard.plan(_segments(preview), rows).as_dict()
