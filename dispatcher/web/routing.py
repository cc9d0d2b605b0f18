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
    return balance_guard.plan(int(preview.get("segments") or 0), rows).as_dict()
