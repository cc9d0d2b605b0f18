"""What people read for the store's words: state names, and what a campaign waits for in a sentence.

The English msgids are the states themselves (``pgettext("campaign", "sent")``); the catalogs say them
in Chinese. ``waiting_text`` turns ``status["waiting"]`` into the sentence the campaign page, the preview
and ``campaign status --watch`` show ("等待发送时段，08:00 开始").
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from dispatcher.errors import DispatcherError
from dispatcher.i18n import N_, NP_, china_clock, gettext, pgettext
from dispatcher.vendors.statuses import VENDOR_LABELS

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
# Who acted, as the history and the lists say it: the system's own actors; people by their names.
ACTORS = {
    "cli": N_("command line"),
    "scheduler": N_("system scheduler"),
    "beat": N_("system scheduler"),
    "demo": N_("demo"),
    "test": N_("test"),
}
SCHEDULE_ACTOR = N_("schedule %(name)s")
# ``dispatcher doctor``'s checks, named for the status page.
CHECKS = {
    "store": N_("database"),
    "broker": N_("message queue"),
    "redis": N_("Redis"),
    "workers": N_("sending processes"),
    "beat": N_("scheduler process"),
    "fingerprints": N_("same settings everywhere"),
    "clock": N_("clock"),
    "send_window": N_("send window"),
    "account": N_("account %(name)s"),
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


def actor(name: str | None) -> str:
    """Who acted, in the reader's language: ``cli`` → 命令行, ``schedule:会员日`` → 定时任务「会员日」."""
    name = name or ""
    if name in ACTORS:
        return gettext(ACTORS[name])
    if name.startswith("schedule:"):
        return gettext(SCHEDULE_ACTOR) % {"name": _quoted(name.partition(":")[2])}
    return name


def vendor(vendor_id: str) -> str:
    """A gateway as people say it, its id after it: 云信（yunxin）."""
    if vendor_id not in VENDOR_LABELS:
        return vendor_id
    return gettext("%(label)s (%(vendor)s)") % {
        "label": gettext(VENDOR_LABELS[vendor_id]),
        "vendor": vendor_id,
    }


def check_name(name: str) -> str:
    """A doctor check's name for the status page (``account:NAME`` → 账户 NAME)."""
    kind, _colon, rest = name.partition(":")
    if rest and kind in CHECKS:
        return gettext(CHECKS[kind]) % {"name": rest}
    return gettext(CHECKS[name]) if name in CHECKS else name


def amount(value: Any) -> str:
    """A sum or a balance with thousands separators, its decimals kept (100000000 → 100,000,000;
    "1234.50" → 1,234.50); anything that is not a number as it is."""
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    return f"{number:,}"


def paren(text: Any) -> str:
    """``text`` in brackets, Chinese ones in Chinese: （管理员）."""
    return gettext("(%(text)s)") % {"text": text}


def _quoted(text: str) -> str:
    return gettext("'%(text)s'") % {"text": text}


def history_action(action: str, detail: dict[str, Any] | None = None) -> str:
    """An audit entry's action as the campaign's history says it. "Start now" goes through ``scheduled``
    (``start="now"``): it says it was started by hand, not scheduled."""
    if action in HISTORY:
        return gettext(HISTORY[action])
    if action == "campaign.scheduled" and (detail or {}).get("start") == "now":
        return gettext("started by hand")
    kind, _dot, state = action.partition(".")
    if kind == "campaign" and state in CAMPAIGN_STATES:
        return "→ " + campaign_state(state)
    return action


WINDOW_BADGE = N_("waiting for the send window")


def badge(status: dict[str, Any]) -> str:
    """The campaign's state badge: a running campaign outside its send window sends nothing, and says so."""
    if status.get("state") == "running" and status.get("waiting") == "window":
        return gettext(WINDOW_BADGE)
    return campaign_state(str(status.get("state")))


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
        "badge_window": gettext(WINDOW_BADGE),
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
# Where a reader found a problem ("名单.xlsx, sheet '客户'"), and the headers it saw ("row 1: 姓名, 备注"):
# built in the sandbox's child, said here in the reader's language.
_WHERE = re.compile(r"(?P<file>.*), sheet (?P<q>['\"])(?P<sheet>.*)(?P=q)", re.S)
_HEADERS = re.compile(r"row (?P<row>\d+): (?P<names>.*)", re.S)


def _where(where: str) -> str:
    m = _WHERE.fullmatch(where)
    if not m:
        return where
    return gettext("%(file)s, sheet %(sheet)s") % {"file": m["file"], "sheet": _quoted(m["sheet"])}


def _headers(headers: str) -> str:
    m = _HEADERS.fullmatch(headers)
    if not m:
        return headers
    names = gettext("(empty)") if m["names"] == "(empty)" else m["names"]
    return gettext("row %(row)s: %(names)s") % {"row": m["row"], "names": names}


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
    if "where" in shown:
        shown["where"] = _where(str(shown["where"]))
    if "headers" in shown:
        shown["headers"] = _headers(str(shown["headers"]))
    for key, value in shown.items():
        if value == "never":  # doctor's "last seen: never"
            shown[key] = gettext("never")
    try:
        return gettext(msgid) % shown if shown else gettext(msgid)
    except (KeyError, TypeError, ValueError):  # a catalog entry that does not fit: the English
        return english
