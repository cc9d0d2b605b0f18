"""``dispatcher simulate``: the four vendor gateways on one loopback port, until interrupted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from dispatcher.simulator.config import SimulatorConfig
    from dispatcher.simulator.server import SimulatorServer

_PATHS = {
    "webservice": "/Services/MsgSend.aspx/<Method>, /Services/MsgSend.asmx/<Method>",
    "yunxin": "/api/MsgSend.asmx/<Method>, /api/IndividualSm.aspx",
    "trigger": "/winnerrxd/api/trigger/<Command>",
    "entinfo": "/webservice.asmx/<method>, /mdsmssend.ashx, /mdgxsend.ashx",
}


def simulate(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8790,
    latency_ms: Annotated[float, typer.Option(help="Delay before every gateway answer.")] = 0.0,
    rate_limit: Annotated[
        float, typer.Option(help="Requests per second per account (sliding 1 s window); 0: none.")
    ] = 0.0,
    deliver_ratio: Annotated[float, typer.Option(help="Share of accepted messages delivered.")] = 0.95,
    report_delay: Annotated[float, typer.Option(help="Seconds until a message's report is due.")] = 2.0,
    fault_rate: Annotated[
        float,
        typer.Option(help="Share of send requests answered 500, reset, or accepted with the answer lost."),
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for repeatable outcomes.")] = None,
    balance: Annotated[int, typer.Option(help="Billing segments per account.")] = 100_000_000,
    push_url: Annotated[
        str | None,
        typer.Option(
            help="Push reports and replies here ({vendor}, {account}, {kind}=reports|replies substituted)."
        ),
    ] = None,
    account: Annotated[
        list[str] | None, typer.Option(help="Extra account vendor:user:password (repeatable).")
    ] = None,
    accounts_file: Annotated[
        Path | None, typer.Option(help="TOML file of [[account]] tables (vendor, user, password, ...).")
    ] = None,
    keyword: Annotated[
        list[str] | None, typer.Option(help="Forbidden word (repeatable); replaces the default list.")
    ] = None,
    blacklist: Annotated[list[str] | None, typer.Option(help="Blacklisted number (repeatable).")] = None,
) -> None:
    """Run the vendor simulator. Default accounts: demo/demo on webservice, yunxin and trigger;
    entinfo sn SDK-DEMO-010-00001 with password demo."""
    # Here, not at the top: the simulator brings httpx and its server, which other commands never need.
    from dispatcher.simulator.config import SimulatorConfig, load_accounts, parse_account

    config = SimulatorConfig(
        host=host,
        port=port,
        latency_ms=latency_ms,
        rate_limit=rate_limit,
        deliver_ratio=deliver_ratio,
        report_delay=report_delay,
        fault_rate=fault_rate,
        seed=seed,
        balance=balance,
        push_url=push_url,
    )
    try:
        extra = [parse_account(spec) for spec in account or []]
        if accounts_file is not None:
            extra.extend(load_accounts(accounts_file))
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from None
    config = config.with_accounts(*extra)
    if keyword is not None:
        config = replace(config, keywords=tuple(keyword))
    if blacklist is not None:
        config = replace(config, blacklist=tuple(blacklist))
    _run(config)


def _announce(server: SimulatorServer) -> None:
    typer.echo(f"SMS gateway simulator listening on {server.base_url}")
    for vendor, paths in _PATHS.items():
        typer.echo(f"  {vendor:<10} {paths}")
    typer.echo("  control    GET /_sim/ledger, POST /_sim/reset, POST /_sim/mo")
    typer.echo("accounts (passwords not shown):")
    for acct in server.config.accounts:
        typer.echo(f"  {acct.vendor:<10} {acct.user}")
    typer.echo("Ctrl-C to stop.")


def _run(config: SimulatorConfig) -> None:
    import asyncio
    import contextlib
    import signal

    from dispatcher.simulator.server import new_event_loop, serve_forever

    loop = new_event_loop()
    task = loop.create_task(serve_forever(config, _announce))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(task)
    loop.close()
    typer.echo("simulator stopped")


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
