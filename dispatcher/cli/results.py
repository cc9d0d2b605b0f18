"""``reports pull``/``orphans``/``set-aside``, ``replies pull``, ``optout add|remove|list|import``, ``campaign export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from dispatcher.cli.common import fail, load_sessions, load_settings
from dispatcher.errors import DispatcherError

if TYPE_CHECKING:
    from dispatcher.config import Settings


AccountOpt = Annotated[str | None, typer.Option("--account", help="Only this account.")]


def _drain_now(
    settings: Settings, kind: Literal["reports", "replies"], account: str | None
) -> dict[str, Any]:
    """One drain of every pulling account (or one), paced by the accounts' limiters, then the inbox
    processed. What stopped a drain is printed; an account error makes the exit status 1."""
    from dispatcher.results.inbox import process_pending
    from dispatcher.results.pull import pull_account, pulls
    from dispatcher.runtime import Runtime

    sessions = load_sessions(settings)
    runtime = Runtime.from_settings(settings)
    alerts: list[str] = []
    refused: dict[str, str] = {}
    try:
        chosen = [settings.account(account)] if account else list(settings.accounts.values())
        pulled: dict[str, int] = {}
        for config in chosen:
            if not pulls(config):
                typer.echo(f"{config.name}: not pulled ({config.vendor}{', push' if config.push else ''})")
                continue
            result = pull_account(runtime, config, [kind])
            pulled[config.name] = result.bodies.get(kind, 0)
            if result.skipped:
                typer.echo(f"{config.name}: not pulled now: {result.skipped}")
            for failure in result.failures.values():
                refused[config.name] = failure
                typer.echo(f"{config.name}: {failure}", err=True)
            if result.alert:
                alerts.append(result.alert)
        stats = process_pending(sessions, settings)
    except DispatcherError as exc:
        raise fail(exc) from None
    finally:
        runtime.close()
    summary: dict[str, Any] = {
        "bodies": sum(pulled.values()),
        kind: getattr(stats, kind),
        "matched": stats.matched,
        "optouts": stats.optouts,
        "errors": stats.errors,
    }
    if refused:
        summary["refused"] = refused
    for alert in alerts:
        typer.echo(f"ALERT: {alert}", err=True)
    if alerts:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        raise typer.Exit(1)
    return summary


def campaign_export(
    campaign_id: int,
    file: Path,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang", help="zh or en: headers, states and reasons. Default: zh for xlsx, en for csv."
        ),
    ] = None,
) -> None:
    """Export every input row of a campaign, in input order (.xlsx or .csv by the file's suffix)."""
    from dispatcher.results.campaign_export import export

    settings = load_settings()
    sessions = load_sessions(settings)
    try:
        with sessions() as session:
            count = export(session, campaign_id, file, lang, settings)
    except DispatcherError as exc:
        raise fail(exc) from None
    typer.echo(f"campaign {campaign_id}: {count} rows written to {file}")


def register(app: typer.Typer) -> None:
    reports = typer.Typer(help="Delivery reports.", no_args_is_help=True)
    replies = typer.Typer(help="Replies (MO).", no_args_is_help=True)
    optout = typer.Typer(help="The opt-out list: numbers never sent to again.", no_args_is_help=True)

    @reports.command("pull")
    def reports_pull(account: AccountOpt = None) -> None:
        """Drain every account's reports now and reconcile them."""
        typer.echo(json.dumps(_drain_now(load_settings(), "reports", account), ensure_ascii=False))

    @reports.command("orphans")
    def reports_orphans(
        limit: Annotated[int, typer.Option("--limit")] = 100,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Reports that match no recipient (yet)."""
        from dispatcher.results.orphans import list_orphans

        with load_sessions(load_settings())() as session:
            rows = list_orphans(session, limit)
        if as_json:
            typer.echo(json.dumps(rows, ensure_ascii=False))
            return
        for r in rows:
            typer.echo(
                f"{r['account']}\t{r['batch_id'] or '-'}\t{r['mobile']}\t{r['status']}\t{r['ref'] or '-'}"
            )

    @reports.command("set-aside")
    def reports_set_aside(
        limit: Annotated[int, typer.Option("--limit")] = 100,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Report and reply bodies set aside: unreadable, or holding records the store cannot hold."""
        from dispatcher.results.orphans import list_set_aside

        with load_sessions(load_settings())() as session:
            rows = list_set_aside(session, limit)
        if as_json:
            typer.echo(json.dumps(rows, ensure_ascii=False))
            return
        for r in rows:
            typer.echo(
                f"{r['id']}\t{r['account']}\t{r['kind']}/{r['source']}\t{r['received_at']}\t{r['error']}"
            )

    @replies.command("pull")
    def replies_pull(account: AccountOpt = None) -> None:
        """Drain every account's replies now; opt-out words add the number to the opt-out list."""
        typer.echo(json.dumps(_drain_now(load_settings(), "replies", account), ensure_ascii=False))

    def _change(numbers: list[str], adding: bool, source: str = "manual") -> None:
        from dispatcher.results import optout_store

        good, bad = optout_store.normalise_all(numbers)
        for value in bad:
            typer.echo(f"not a mobile number: {value}", err=True)
        with load_sessions(load_settings())() as session:
            if adding:
                count = optout_store.add(session, good, source=source)
            else:
                count = optout_store.remove(session, good)
            session.commit()
        typer.echo(f"{count} number(s) {'added' if adding else 'removed'}")
        if bad and not good:
            raise typer.Exit(2)

    @optout.command("add")
    def optout_add(numbers: Annotated[list[str], typer.Argument(help="Mobile numbers.")]) -> None:
        """Add numbers; campaigns that have not sent to them yet will not."""
        _change(numbers, True)

    @optout.command("remove")
    def optout_remove(numbers: Annotated[list[str], typer.Argument(help="Mobile numbers.")]) -> None:
        _change(numbers, False)

    @optout.command("import")
    def optout_import(
        file: Annotated[Path, typer.Argument(help="Text or CSV file, one number a line.")],
    ) -> None:
        from dispatcher.results import optout_store

        try:
            numbers = optout_store.read_file(file)
        except DispatcherError as exc:
            raise fail(exc) from None
        _change(numbers, True, source="import")

    @optout.command("list")
    def optout_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        from dispatcher.results import optout_store

        with load_sessions(load_settings())() as session:
            entries = optout_store.entries(session)
        if as_json:
            data = [{"mobile": e.mobile, "source": e.source, "added_at": e.added_at.isoformat(), "note": e.note}
                    for e in entries]  # fmt: skip
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        for e in entries:
            typer.echo(f"{e.mobile}\t{e.source}\t{e.added_at:%Y-%m-%d %H:%M}\t{e.note or ''}")

    app.add_typer(reports, name="reports")
    app.add_typer(replies, name="replies")
    app.add_typer(optout, name="optout")
