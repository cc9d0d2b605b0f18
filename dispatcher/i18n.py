"""The people's languages: Simplified Chinese first, English by choice; China time for every date shown.

The messages are gettext catalogs in ``dispatcher/locale/<locale>/LC_MESSAGES/messages.po``, English
msgids, extracted with Babel (``babel.cfg``; README, Development). The ``.po`` files are compiled in
memory the first time a language is used, so no compiled file can be older than its source.

    with use("en"):              # the web app does this per request (cookie, ?lang=, Accept-Language)
        gettext("campaign %(id)s created") % {"id": 3}

The CLI stays English for operators: nothing here is used unless a language is chosen.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from babel.support import Translations

LOCALES = ("zh_CN", "en")
DEFAULT = "zh_CN"
CATALOGS = Path(__file__).parent / "locale"
CHINA = ZoneInfo("Asia/Shanghai")

_current: ContextVar[str] = ContextVar("dispatcher_locale", default=DEFAULT)


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def NP_(context: str, message: str) -> str:
    """Mark ``message`` in ``context`` for extraction (shown with :func:`pgettext`)."""
    return message


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> Translations:
    """The compiled catalog of ``locale`` (read from its ``.po`` once per process)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    path = CATALOGS / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain="messages")


def current() -> str:
    return _current.get()


@contextlib.contextmanager
def use(locale: str) -> Iterator[None]:
    token = _current.set(locale if locale in LOCALES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def set_locale(locale: str) -> None:
    """Use ``locale`` for the rest of this context (a request's)."""
    _current.set(locale if locale in LOCALES else DEFAULT)


def gettext(message: str) -> str:
    return translations(current()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ungettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return translations(current()).upgettext(context, message)


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return translations(current()).unpgettext(context, singular, plural, n)


_ = gettext


def parse_accept_language(header: str) -> list[str]:
    """Language tags of an ``Accept-Language`` header, most wanted first (q=0 left out)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag.strip().lower()))
    return [tag for _q, _i, tag in sorted(ranked)]


def negotiate(asked: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page's language: ``?lang=``, else the cookie, else the first of Chinese or English the
    browser asks for, else Chinese."""
    for choice in (asked, cookie):
        if choice:
            found = normalise(choice)
            if found:
                return found
    for tag in parse_accept_language(accept_language or ""):
        found = normalise(tag)
        if found:
            return found
    return DEFAULT


def normalise(tag: str) -> str | None:
    """``zh``, ``zh-CN``, ``zh_Hans`` → ``zh_CN``; ``en``, ``en-US`` → ``en``; anything else None."""
    primary = tag.replace("_", "-").split("-")[0].lower()
    return {"zh": "zh_CN", "en": "en"}.get(primary)


def html_lang(locale: str) -> str:
    return "zh-CN" if locale == "zh_CN" else "en"


def china_time(at: datetime | None, *, seconds: bool = False) -> str:
    """``2026-12-01 09:00（北京时间）``: a UTC (aware) time as China's wall clock, the zone named (Chinese
    brackets in Chinese)."""
    if at is None:
        return ""
    local = at.astimezone(CHINA)
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return gettext("%(time)s (China time)") % {"time": shown}


def china_clock(at: datetime) -> str:
    """``08:00``, or ``12-02 08:00`` when not today (China time)."""
    local = at.astimezone(CHINA)
    today = datetime.now(CHINA).date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%m-%d %H:%M")
