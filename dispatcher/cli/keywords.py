"""``dispatcher keywords pull|list``: the vendors' forbidden words, kept in the store."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dispatcher.cli.common import ACTOR, fail, load_sessions, load_settings
from dispatcher.errors import DispatcherError

AccountArg = Annotated[str, typer.Argument(help="Account name from the config.")]
LIMITER_WAIT = 30.0  # seconds to wait for the account's rate-limit token


def pull(account: AccountArg) -> None:
    """Fetch the account's forbidden words from its vendor (yunxin GetKeyWords) and store them.

    ``check``, ``campaign create`` and the web preview then refuse texts holding one. The beat refreshes
    every such account daily.
    """
    from dispatcher import keywords
    from dispatcher.runtime import Runtime

    settings = load_settings()
    sessions = load_sessions(settings)
    runtime = Runtime.from_settings(settings)
    try:
        config = settings.account(account)
        sender = runtime.account(config.name)
        if sender.limiter is not None and not sender.limiter.acquire(timeout=LIMITER_WAIT):
            raise DispatcherError(
                f"account {config.name!r} is busy: no rate-limit token in {LIMITER_WAIT:.0f} s"
            )
        with sessions() as session:
            pulled = keywords.pull(session, config, sender.transport, ACTOR)
    except DispatcherError as exc:
        raise fail(exc) from None
    finally:
        runtime.close()
    typer.echo(
        f"account {pulled.account}: {pulled.words} forbidden words stored "
        f"({pulled.added} added, {pulled.removed} removed)"
    )


def list_(
    account: AccountArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The account's forbidden words: configured, and pulled from its vendor."""
    from dispatcher import keywords

    settings = load_settings()
    try:
        config = settings.account(account)
    except DispatcherError as exc:
        raise fail(exc) from None
    with load_sessions(settings)() as session:
        stored = keywords.stored(session, config.name)
    if as_json:
        typer.echo(
            json.dumps({"configured": list(config.keywords), "pulled": list(stored)}, ensure_ascii=False)
        )
        return
    for word in config.keywords:
        typer.echo(f"{word}\tconfigured")
    for word in stored:
        typer.echo(f"{word}\tpulled")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Forbidden words of the vendors' accounts.", no_args_is_help=True)
    group.command("pull")(pull)
    group.command("list")(list_)
    app.add_typer(group, name="keywords")
