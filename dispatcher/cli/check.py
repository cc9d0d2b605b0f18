"""``dispatcher check``: a dry run of upload, validation, rendering and chunking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from dispatcher import chunker
from dispatcher.config import Settings
from dispatcher.contacts import IngestResult, ingest, normalise
from dispatcher.errors import DispatcherError, StoreError
from dispatcher.web.sandbox import read_first_if_unscanned

SHOWN_REJECTIONS = 20


def summary(result: IngestResult, chunks: list[chunker.PlannedChunk]) -> dict[str, Any]:
    """The JSON object of ``check --json``."""
    return {
        "file": str(result.path),
        "sheet": result.sheet,
        "header_row": result.header_row,
        "phone_column": result.phone_column,
        "rows": result.rows,
        "valid": result.valid,
        "invalid": result.invalid,
        "duplicates": result.duplicates,
        "opted_out": result.opted_out,
        "messages": len(result.messages),
        "segments": result.segments,
        "requests": len(chunks),
        "by_method": chunker.by_method(chunks),
        "not_gb2312": len(result.not_gb2312),
        "warnings": result.warnings,
        "rejected": [
            {"row": r.row, "column": r.column, "value": r.value, "reason": r.reason, "kind": str(r.kind)}
            for r in result.rejected
        ],
    }


def _read_lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]


def stored_opt_outs() -> frozenset[str]:
    """The store's opt-out list (numbers that replied 退订 ...), if the configured store exists."""
    from sqlalchemy.engine import make_url

    from dispatcher.store import OptOut, make_engine

    url = Settings.load().database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).exists()):
        return frozenset()  # no store yet: nobody has opted out
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return frozenset(
                connection.execute(OptOut.__table__.select().with_only_columns(OptOut.mobile)).scalars()
            )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the opt-out list from the store: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()


def check(
    file: Annotated[Path, typer.Argument(help="Contact list: xlsx, xlsm, xls, ods or csv")],
    template: Annotated[str, typer.Option("--template", help="Message text with {column} placeholders")],
    vendor: Annotated[str, typer.Option("--vendor", help="webservice, yunxin, trigger or entinfo")],
    sheet: Annotated[str | None, typer.Option("--sheet", help="Sheet name or 0-based index")] = None,
    phone_column: Annotated[
        str | None, typer.Option("--phone-column", help="Header of the phone column")
    ] = None,
    opt_outs: Annotated[Path | None, typer.Option("--opt-outs", help="File of opted-out numbers")] = None,
    keywords: Annotated[Path | None, typer.Option("--keywords", help="File of forbidden keywords")] = None,
    same_text_max: Annotated[
        int | None, typer.Option("--same-text-max", help="Numbers per same-text request")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Dry run: read, validate and render a contact list, and plan the vendor requests."""
    err = Console(stderr=True)
    try:
        chunker.limits_for(vendor)
        settings = Settings.load()
        read_first_if_unscanned(file, sheet, settings)  # xls, xlsb, ods: in a limited child first
        blocked = frozenset(n for n in (normalise(x) for x in _read_lines(opt_outs)) if n) | stored_opt_outs()
        with Progress(
            TextColumn("reading"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=as_json,  # --json prints one object and nothing else
        ) as bar:
            task = bar.add_task("rows", total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            result = ingest(
                file,
                template,
                sheet=sheet,
                phone_column=phone_column,
                opt_outs=blocked,
                keywords=_read_lines(keywords),
                progress=progress,
                limits=settings.sheet_limits,
            )
        chunks = chunker.plan(
            result.messages.mobiles, result.messages.texts, vendor, campaign_id=0, same_text_max=same_text_max
        )
    except (DispatcherError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    data = summary(result, chunks)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    _print_summary(Console(), data)


def _print_summary(console: Console, data: dict[str, Any]) -> None:
    console.print(
        f"[bold]{data['file']}[/bold]" + (f", sheet {data['sheet']!r}" if data["sheet"] else ""),
        f"(header row {data['header_row']}, phone column {data['phone_column']!r})",
        highlight=False,
    )
    for key in ("rows", "valid", "invalid", "duplicates", "opted_out", "messages", "segments", "requests"):
        console.print(f"  {key:<11} {data[key]:>10,}")
    for method, count in data["by_method"].items():
        console.print(f"    {method:<17} {count:>8,}")
    for warning in data["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    rejected = data["rejected"]
    for r in rejected[:SHOWN_REJECTIONS]:
        console.print(
            f"  row {r['row']}, {r['column'] or '-'} {r['value']!r}: {r['reason']}", highlight=False
        )
    if len(rejected) > SHOWN_REJECTIONS:
        console.print(f"  … and {len(rejected) - SHOWN_REJECTIONS:,} more rejected rows (see --json)")


def register(app: typer.Typer) -> None:
    app.command("check")(check)
