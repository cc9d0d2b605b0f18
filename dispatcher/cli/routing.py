"""The CLI's side of routing (issue 14): the balance guard before ``campaign start``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from dispatcher.errors import DispatcherError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from dispatcher.config import Settings

# A person at the terminal may wait for the vendor's balance interval (yunxin: 10 s) to pass.
CLI_BALANCE_WAIT = 12.0


def balance_guard(
    settings: Settings,
    sessions: Callable[[Settings], sessionmaker[Session]],
    campaign_id: int,
    fail: Callable[[Exception], typer.Exit],
) -> None:
    """Refuse the start (exit 2, the figures on stderr) when the balance does not cover the cost."""
    from dispatcher import balance_guard as guard

    redis = guard.redis_for(settings)
    try:
        plan = guard.check(sessions(settings), settings, redis, campaign_id, wait=CLI_BALANCE_WAIT)
    except DispatcherError as exc:
        raise fail(exc) from None
    finally:
        if redis is not None:
            redis.close()
    if plan.refused:
        raise fail(guard.refusal(campaign_id, plan))
    typer.echo(f"balance check: {guard.describe(plan)}")
