"""Wire helpers the four simulated gateways share: forms, answers, numbers, texts, times."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from dispatcher.simulator.crypto import decode_submit_info

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")
ASMX_NAMESPACE = "http://tempuri.org/"

# A form with lower-cased field names: ASP.NET looks form fields up case-insensitively.
Form = dict[str, str]

_MOBILE = re.compile(r"1[3-9][0-9]{9}")  # ASCII digits: the gateways refuse full-width ones
_SIGNATURE_AT_END = re.compile(r"【[^【】]+】$")
_SIGNATURE_AT_START = re.compile(r"^【[^【】]+】")


@dataclass(frozen=True, slots=True)
class Answer:
    """A gateway's answer value, before the plain / ``<string>`` wrapping."""

    text: str
    code: int | None = None  # the negative code, when the answer is an error


def error(code: int, detail: str = "") -> Answer:
    return Answer(f"{code}:{detail}" if detail else str(code), code)


def wrap_asmx(value: str) -> str:
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<?xml version="1.0" encoding="utf-8"?>\r\n<string xmlns="{ASMX_NAMESPACE}">{escaped}</string>'


def parse_form(query: bytes, body: bytes, encoding: str = "utf-8") -> Form:
    """GET query and POSTed urlencoded body, UTF-8 (or ``encoding``); body fields win over query fields."""
    form: Form = {}
    for raw in (query, body):
        if raw:
            for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding=encoding):
                form[key.lower()] = value
    return form


def is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes full-width ``１２`` and ``²``, which gateways refuse)."""
    return text.isascii() and text.isdigit()


def split_numbers(desno: str) -> list[str]:
    return [part.strip() for part in desno.split(",") if part.strip()]


def is_mobile(number: str) -> bool:
    return _MOBILE.fullmatch(number) is not None


def ends_with_signature(text: str) -> bool:
    """``...【签名】``: a bracketed signature is the last thing in the text."""
    return _SIGNATURE_AT_END.search(text) is not None


def has_signature(text: str) -> bool:
    """``【签名】...`` or ``...【签名】``: trigger's and entinfo's documents do not say where it goes, and
    their public clients put it first as often as last."""
    return _SIGNATURE_AT_START.search(text) is not None or ends_with_signature(text)


def segments(text: str) -> int:
    """Billing segments: up to 70 characters is one; longer texts go 67 characters per segment; pure
    single-byte text up to 140 characters is one (Entinfo SDK API 3.1: "纯单字节是140一条"). Characters are
    counted in UTF-16 units, as the UCS-2 payload of an SMS holds them: an emoji takes two."""
    n = len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2
    if n <= 70 or (n <= 140 and text.isascii()):
        return 1
    return math.ceil(n / 67)


def china_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, CHINA_TZ).strftime("%Y/%m/%d %H:%M:%S")


def decrypt_submit_info(submit_info: str, password: str) -> Form | None:
    """The ``k=v&k=v`` fields (lower-cased keys) DES-encrypted in ``submitInfo``; None if undecryptable.

    The plaintext is split at every ``&``, as a query-string reader does: a ``&`` inside ``Msg`` cuts
    the text there, and the piece after it (no ``=``) names no field and is lost, which is what a real
    gateway does to such a message.
    """
    plain = decode_submit_info(submit_info, password)
    if plain is None:
        return None
    fields: Form = {}
    for pair in plain.split("&"):
        key, sep, value = pair.partition("=")
        if sep:
            fields[key.lower()] = value
    return fields
