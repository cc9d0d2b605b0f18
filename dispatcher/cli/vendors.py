"""``dispatcher vendors`` (the four gateways, their methods and limits) and ``dispatcher explain``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dispatcher.errors import UnknownVendorError
from dispatcher.vendors import DEFAULT_SEPARATORS, SEPARATORS_TO_CONFIRM, VENDORS, registry


def separators_note() -> str:
    """What ``dispatcher vendors`` says about personalised separators: per account, some to confirm."""
    defaults = ", ".join(
        f"{vendor} {DEFAULT_SEPARATORS[vendor].pair} / {DEFAULT_SEPARATORS[vendor].message}"
        for vendor in VENDORS
        if vendor in DEFAULT_SEPARATORS
    )
    confirm = ", ".join(sorted(SEPARATORS_TO_CONFIRM))
    return (
        f"Personalised separators (number/text, message/message) are set per account with pair_separator "
        f"and message_separator; defaults: {defaults}. {confirm}: its document lost them, so the defaults "
        "must be confirmed with the vendor before use."
    )


def vendors_table() -> Table:
    table = Table(title="SMS gateways", caption=separators_note(), caption_justify="left")
    for column in ("vendor", "limits per request", "method", "what it does", "limit"):
        table.add_column(column, overflow="fold")
    for name in VENDORS:
        module = registry.get(name)
        limits = module.LIMITS
        summary = (
            f"same text: up to {limits.same_text_numbers}\n"
            f"personalised: up to {limits.personalised_messages}\n"
            f"reports: {limits.reports_per_pull} per pull\n"
            f"service: {module.SERVICE_PATH}"
        )
        for i, (method, what, limit) in enumerate(module.METHODS):
            table.add_row(name if i == 0 else "", summary if i == 0 else "", method, what, limit)
        table.add_section()
    return table


def vendors() -> None:
    """List the four gateways with their methods and limits."""
    Console().print(vendors_table())


def explain(
    vendor: Annotated[str, typer.Argument(help=f"one of: {', '.join(VENDORS)}")],
    code: Annotated[str, typer.Argument(help="the answer code, e.g. -16 or -6:促销 (16 means -16)")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """What a vendor's error code means and what the dispatcher does about it."""
    try:
        result = registry.explain(vendor, code)
    except (UnknownVendorError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    detail = f" [{result['detail']}]" if "detail" in result else ""
    Console(highlight=False).print(
        f"[bold]{result['vendor']} {result['code']}[/bold]{detail} → [bold]{result['class']}[/bold]: "
        f"{result['meaning']} ({result['meaning_en']})",
        markup=True,
    )


def register(app: typer.Typer) -> None:
    app.command("vendors")(vendors)
    # Codes are negative: let "-16" through as an argument instead of an unknown option.
    app.command("explain", context_settings={"ignore_unknown_options": True})(explain)
