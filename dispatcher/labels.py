"""What people read for the store's words: state names, and what a campaign waits for in a sentence.

The English msgids are the states themselves (``pgettext("campaign", "sent")``); the catalogs say them
in Chinese. ``waiting_text`` turns ``status["waiting"]`` into the sentence the campaign page, the preview
and ``campaign status --watch`` show ("等待发送时段，08:00 开始").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dispatcher.errors import DispatcherError
from dispatcher.i18n import N_, NP_, china_clock, gettext, pgettext

# Literal lists, so that extraction finds every one.
CAMPAIGN_STATES = (
    NP_("campaign", "draft"),
    NP_("campaign", "scheduled"),
    NP_("campaign", "running"),
    NP_("campaign", "paused"),
    NP_("campaign", "sent"),
    NP_("campaign", "completed"),
    NP_("campaign", "cancelled"),
)
RECIPIENT_STATES = (
    NP_("recipient", "rejected"),
    NP_("recipient", "planned"),
    NP_("recipient", "queued"),
    NP_("recipient", "sending"),
    NP_("recipient", "accepted"),
    NP_("recipient", "failed"),
    NP_("recipient", "unknown"),
    NP_("recipient", "delivered"),
    NP_("recipient", "undelivered"),
    NP_("recipient", "expired"),
    NP_("recipient", "cancelled"),
    NP_("recipient", "capped"),
)
ROLES = (NP_("role", "viewer"), NP_("role", "sender"), NP_("role", "admin"))
OPTOUT_SOURCES = (N_("reply"), N_("manual"), N_("import"))
# The history's entries (the audit log's actions); a campaign's move shows its new state.
HISTORY = {
    "campaign.create": N_("created"),
    "campaign.retry": N_("failed messages queued again"),
    "campaign.approve": N_("approved"),
    "campaign.proof": N_("proof sent"),
    "chunk.split": N_("a request split to find a refused number"),
    "campaign.failover": N_("moved to the next account"),  # issue 14
    "campaign.balance_hold": N_("not started: the balance does not cover the cost"),
    "campaign.transactional": N_("marked transactional: not held to the frequency caps"),
}
NO_WORKERS = N_("No sending process is running (last seen: %(time)s)")
NO_WORKERS_EVER = N_("No sending process is running (none has been seen)")
NO_BEAT = N_(
    "The scheduler (beat) is not running (last seen: %(time)s): nothing is launched, re-queued or completed"
)
NO_BEAT_EVER = N_(
    "The scheduler (beat) is not running (none has been seen): nothing is launched, re-queued or completed"
)
NO_REDIS = N_("Redis does not answer: nothing can be sent until it does (ask your operator)")
BALANCE_WAIT = N_(
    "Not started: it costs %(cost)s but the account holds %(balance)s (%(short)s segments not covered); "
    "top up the account"
)


def campaign_state(state: str) -> str:
    return pgettext("campaign", state)


def recipient_state(state: str) -> str:
    return pgettext("recipient", state)


def role(name: str) -> str:
    return pgettext("role", name)


def history_action(action: str) -> str:
    """An audit entry's action as the campaign's history says it."""
    if action in HISTORY:
        return gettext(HISTORY[action])
    kind, _dot, state = action.partition(".")
    if kind == "campaign" and state in CAMPAIGN_STATES:
        return "→ " + campaign_state(state)
    return action


def _when(value: Any) -> str:
    if not value:
        return ""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return china_clock(at)


def waiting_text(status: dict[str, Any]) -> str | None:
    """The sentence for ``status["waiting"]`` in the current language (China time), or None."""
    kind = status.get("waiting")
    if kind == "window":
        return gettext("Waiting for the send window: sending starts at %(time)s (China time)") % {
            "time": _when(status.get("window_opens_at"))
        }
    if kind == "schedule":
        return gettext("Scheduled: sending starts at %(time)s (China time)") % {
            "time": _when(status.get("start_at"))
        }
    if kind == "rate_limit":
        return gettext("The gateway asked us to slow down: sending again at %(time)s (China time)") % {
            "time": _when(status.get("retry_at"))
        }
    if kind == "account":
        error = status.get("account_error") or {}
        from dispatcher.i18n import current

        meaning = error.get("meaning_zh") if current() == "zh_CN" else error.get("meaning")
        return gettext("Paused by an account error (%(code)s: %(meaning)s): fix the account, then resume") % {
            "code": error.get("code") or "?",
            "meaning": meaning or "",
        }
    if kind == "reports":
        return gettext("Everything is sent; waiting for delivery reports (%(count)s still due)") % {
            "count": f"{int(status.get('reports_due') or 0):,}"
        }
    if kind == "workers":
        seen = status.get("workers_seen_at")
        return gettext(NO_WORKERS) % {"time": _when(seen)} if seen else gettext(NO_WORKERS_EVER)
    if kind == "beat":
        seen = status.get("beat_seen_at")
        return gettext(NO_BEAT) % {"time": _when(seen)} if seen else gettext(NO_BEAT_EVER)
    if kind == "redis":
        return gettext(NO_REDIS)
    if kind == "balance":  # the balance guard held a scheduled start
        hold = status.get("balance_hold") or {}
        return gettext(BALANCE_WAIT) % {
            "cost": hold.get("cost"),
            "balance": hold.get("balance"),
            "short": f"{int(hold.get('short_segments') or 0):,}",
        }
    return None


def js_strings() -> dict[str, Any]:
    """What the campaign page's script needs to say the same in the page's language."""
    return {
        "campaign": {state: campaign_state(state) for state in CAMPAIGN_STATES},
        "waiting": {
            "window": gettext("Waiting for the send window: sending starts at %(time)s (China time)"),
            "schedule": gettext("Scheduled: sending starts at %(time)s (China time)"),
            "rate_limit": gettext(
                "The gateway asked us to slow down: sending again at %(time)s (China time)"
            ),
            "account": gettext(
                "Paused by an account error (%(code)s: %(meaning)s): fix the account, then resume"
            ),
            "reports": gettext("Everything is sent; waiting for delivery reports (%(count)s still due)"),
            "balance": gettext(BALANCE_WAIT),
            "workers": gettext(NO_WORKERS),
            "workers_never": gettext(NO_WORKERS_EVER),
            "beat": gettext(NO_BEAT),
            "beat_never": gettext(NO_BEAT_EVER),
            "redis": gettext(NO_REDIS),
        },
    }


# Parameters of a message-as-data that are themselves words to say: states, and what was attempted.
_STATE_PARAMS = ("source", "target", "state")
_WORD_PARAMS = ("what", "why")  # words the code marked with N_ (a holiday's name ...)
_ROLE_PARAMS = ("role", "yours")


def describe(exc: Exception) -> str:
    """The error in the reader's language: its message as data when it has one (``DispatcherError.say``),
    else its English text."""
    if not isinstance(exc, DispatcherError):
        return str(exc)
    return say(str(exc), exc.msgid, exc.params)


def say(english: str, msgid: str | None, params: dict[str, Any] | None) -> str:
    """A message as data (English msgid and parameters) in the reader's language; ``english`` without one."""
    if msgid is None:
        return english
    shown = dict(params or {})
    for key in _STATE_PARAMS:
        if key in shown:
            shown[key] = campaign_state(str(shown[key]))
    for key in _WORD_PARAMS:
        if key in shown:
            shown[key] = gettext(str(shown[key]))
    for key in _ROLE_PARAMS:
        if key in shown:
            shown[key] = role(str(shown[key]))
    try:
        return gettext(msgid) % shown if shown else gettext(msgid)
    except (KeyError, TypeError, ValueError):  # a catalog entry that does not fit: the English
        return english
