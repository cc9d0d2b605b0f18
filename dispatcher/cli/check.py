"""``dispatcher check``: a dry run of upload, validation, rendering and chunking."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from dispatcher.cli.common import fail
from dispatcher.errors import DispatcherError, StoreError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dispatcher.config import Settings
    from dispatcher.text import TextRules
    from dispatcher.vendors.wire import Separators

T = TypeVar("T")

SHOWN_REJECTIONS = 20


def _read_lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]


def _read_store(url: str, what: str, read: Callable[[Session], T], empty: T) -> T:
    """``read`` on the configured store; ``empty`` when there is no store yet (a new SQLite file)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from dispatcher.store import make_engine, session_factory

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).exists()):
        return empty
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return read(session)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read {what} from the store: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()


def stored_opt_outs(url: str | None = None) -> frozenset[str]:
    """The store's opt-out list (numbers that replied 退订 ...), if the configured store exists."""
    from dispatcher.campaigns import opt_out_set
    from dispatcher.config import Settings

    return _read_store(url or Settings.load().database_url, "the opt-out list", opt_out_set, frozenset())


def would_be_capped(url: str, caps: Any, mobiles: list[str]) -> int:
    """How many of ``mobiles`` the frequency caps would hold back if the list were sent now."""
    from dispatcher.store.caps import would_cap

    def read(session: Session) -> int:
        return int(would_cap(session.connection(), caps, mobiles)["capped"])

    return _read_store(url, "the frequency caps' counts", read, 0)


def account_rules(settings: Settings, name: str) -> TextRules:
    """What account ``name``'s gateway refuses: its configured and stored forbidden words, '&' when it
    sends encrypted, its length limit."""
    from dispatcher import keywords

    account = settings.account(name)

    def read(session: Session) -> TextRules:
        return keywords.rules(session, account)

    return _read_store(settings.database_url, "the forbidden words", read, keywords.rules_for(account))


def check(
    file: Annotated[Path, typer.Argument(help="Contact list: xlsx, xlsm, xls, ods or csv")],
    template: Annotated[str, typer.Option("--template", help="Message text with {column} placeholders")],
    vendor: Annotated[
        str | None, typer.Option("--vendor", help="webservice, yunxin, trigger or entinfo")
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            "--account",
            help="Account from the config: its vendor, forbidden words (configured and pulled), "
            "encryption and packing",
        ),
    ] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Sheet name or 0-based index")] = None,
    phone_column: Annotated[
        str | None, typer.Option("--phone-column", help="Header of the phone column")
    ] = None,
    opt_outs: Annotated[Path | None, typer.Option("--opt-outs", help="File of opted-out numbers")] = None,
    keywords_file: Annotated[
        Path | None, typer.Option("--keywords", help="File of forbidden keywords")
    ] = None,
    same_text_max: Annotated[
        int | None, typer.Option("--same-text-max", help="Numbers per same-text request")
    ] = None,
    each_number: Annotated[
        bool,
        typer.Option(
            "--each-number", help="A phone cell holding two numbers or more: send to each, not the first"
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Dry run: read, validate and render a contact list, and plan the vendor requests."""
    # Here, not at the top: reading contacts brings calamine, phonenumbers and the store, which
    # `dispatcher --help` and the other commands must not pay for at start-up.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dispatcher import chunker
    from dispatcher.config import Settings
    from dispatcher.contacts import ingest, normalise
    from dispatcher.contacts.sandbox import read_first_if_unscanned
    from dispatcher.contacts.summary import summary
    from dispatcher.text import TextRules

    err = Console(stderr=True)
    try:
        settings = Settings.load()
        rules = TextRules()
        separators: Separators | None = None  # the vendor's default
        encrypted = False
        if account is not None:
            config = settings.account(account)
            if vendor is not None and vendor != config.vendor:
                raise ValueError(f"--vendor {vendor} but account {account!r} is a {config.vendor} account")
            vendor, rules = config.vendor, account_rules(settings, account)
            separators, encrypted = config.separators(), config.encrypted
            same_text_max = config.same_text_max if same_text_max is None else same_text_max
        if vendor is None:
            raise ValueError("give --vendor or --account")
        if account is None:
            from dispatcher import keywords

            rules = keywords.vendor_rules(vendor)  # what the vendor refuses whatever the account
        chunker.limits_for(vendor)
        read_first_if_unscanned(file, sheet, settings)  # xls, xlsb, ods: in a limited child first
        blocked = frozenset(n for n in (normalise(x) for x in _read_lines(opt_outs)) if n)
        blocked |= stored_opt_outs(settings.database_url)
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
                keywords=_read_lines(keywords_file),
                rules=rules,
                progress=progress,
                limits=settings.sheet_limits,
                each_number=each_number,
            )
        chunks = chunker.plan(
            result.messages.mobiles,
            result.messages.texts,
            vendor,
            campaign_id=0,
            separators=separators,
            same_text_max=same_text_max,
            encrypted=encrypted,
        )
    except (DispatcherError, ValueError, OSError) as exc:
        if as_json:
            raise fail(exc, as_json=True) from None
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    data = summary(result, chunks)
    if account is not None and (caps := settings.caps_for(account)):
        data["capped"] = would_be_capped(settings.database_url, caps, result.messages.mobiles)
    nobody = f"no recipient left to send to: all {data['rows']:,} rows were rejected"
    if not data["messages"]:  # every row rejected: nothing would be sent, which is an error
        data["error"] = {"code": "no_recipients", "message": nobody}
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
    else:
        _print_summary(Console(), data)
    if not data["messages"]:
        err.print(f"[red]error:[/red] {nobody}", highlight=False)
        raise typer.Exit(1)


def _print_summary(console: Console, data: dict[str, Any]) -> None:
    console.print(
        f"[bold]{data['file']}[/bold]" + (f", sheet {data['sheet']!r}" if data["sheet"] else ""),
        f"(header row {data['header_row']}, phone column {data['phone_column']!r})",
        highlight=False,
    )
    keys = (
        "rows",
        "valid",
        "invalid",
        "duplicates",
        "opted_out",
        "capped",
        "messages",
        "segments",
        "requests",
    )
    for key in (k for k in keys if k in data):
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
