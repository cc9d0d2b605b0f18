"""Wire types and helpers shared by the four vendor modules (sans-I/O: no network here).

A vendor module builds :class:`Request` objects and parses answer bodies into :class:`Answer`,
:class:`Report` and :class:`Reply`. The transport (``dispatcher.vendors.transport``) is the only
place that sends anything.
"""

from __future__ import annotations

import codecs
import enum
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html import unescape
from importlib.resources import files
from urllib.parse import parse_qsl

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

# Form fields that carry a secret: never logged, stored or shown.
SECRET_FIELDS = frozenset({"userPass", "pwd", "password", "submitInfo", "pass"})


class ErrorClass(enum.StrEnum):
    """What the dispatcher does about a vendor's answer (each vendor maps each of its codes to one)."""

    RATE_LIMITED = "rate_limited"
    RETRY_LATER = "retry_later"
    BAD_RECIPIENT = "bad_recipient"
    BAD_CONTENT = "bad_content"
    BAD_REQUEST = "bad_request"
    ACCOUNT = "account"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CodeInfo:
    code: int
    error_class: ErrorClass
    meaning: str  # the document's Chinese wording
    meaning_en: str
    # "Outside sending hours" (a retry_later code): wait for the hours rather than use up retries.
    outside_hours: bool = False


def code_table(
    rows: list[tuple[int, ErrorClass, str, str]], *, outside_hours: Collection[int] = ()
) -> dict[int, CodeInfo]:
    return {code: CodeInfo(code, cls, zh, en, code in outside_hours) for code, cls, zh, en in rows}


def load_tables(vendor: str) -> tuple[dict[int, CodeInfo], list[tuple[str, str, str]]]:
    """``vendor``'s answer codes with their classes, and its methods, from ``<vendor>.toml`` beside this
    module (data kept as data: each table is the vendor document's list, row for row)."""
    data = tomllib.loads(files("dispatcher.vendors").joinpath(f"{vendor}.toml").read_text(encoding="utf-8"))
    rows = [(int(code), ErrorClass(cls), zh, en) for code, (cls, zh, en) in data["codes"].items()]
    methods = [(m["name"], m["what"], m["limit"]) for m in data["methods"]]
    return code_table(rows, outside_hours=data.get("outside_hours", ())), methods


def classify_code(table: Mapping[int, CodeInfo], code: int) -> CodeInfo:
    """Look ``code`` up in a vendor's own table; a code not there is ``unknown``."""
    info = table.get(code)
    if info is not None:
        return info
    return CodeInfo(code, ErrorClass.UNKNOWN, "未知错误代码", "code not in the vendor's table")


@dataclass(frozen=True)
class Credentials:
    """An account's login. The password is never part of ``repr``."""

    user: str
    password: str = field(repr=False)
    channel: str = ""


@dataclass(frozen=True)
class Separators:
    """Personalised packing: ``pair`` between number and text, ``message`` between messages."""

    pair: str = "|!|"
    message: str = "|^|"


def breaks_packing(text: str, separators: Separators) -> bool:
    """Whether ``text``, packed as ``<mobile><pair><text><message><mobile>``, forms a separator anywhere
    but where the packing puts one: holding one, or completing one across its ends (``-|王`` after
    ``|~|`` makes ``|~|-|``, which holds ``|-|``; ``王|-`` before ``|-|`` makes ``|-|-|``). Such a text
    breaks the whole request it is packed in: it must go alone. Separators are taken to hold no digit
    (the numbers around them); :func:`packed_conflict` checks a whole packed body exactly."""
    pair, message = separators.pair, separators.message
    if pair in text or message in text:
        return True
    reach = max(len(pair), len(message)) - 1  # an occurrence crossing an end lies this far into the text
    if len(text) > 2 * reach:  # the usual text: only its two ends can complete a separator
        head, tail = pair + text[:reach], text[-reach:] + message
        return (
            message in head
            or head.find(pair, 1) != -1
            or pair in tail
            or tail.find(message) != len(tail) - len(message)
        )
    packed = pair + text + message
    for sep, at in ((pair, 0), (message, len(packed) - len(message))):
        found = packed.find(sep)
        while found != -1:
            if found != at:
                return True
            found = packed.find(sep, found + 1)
    return False


def packed_conflict(messages: list[tuple[str, str]], separators: Separators) -> str | None:
    """The number of the first message whose packing forms a separator where none belongs, in the body
    ``mobile<pair>text<message>mobile<pair>text...`` exactly as sent (None: the body parses back into
    ``messages``, whichever separator a gateway splits on first, and at every occurrence)."""
    pair, message = separators.pair, separators.message
    intended: dict[str, set[int]] = {pair: set(), message: set()}
    starts: list[tuple[int, str]] = []  # where each message begins, with its number
    at = 0
    for i, (mobile, text) in enumerate(messages):
        if i:
            intended[message].add(at)
            at += len(message)
        starts.append((at, mobile))
        intended[pair].add(at + len(mobile))
        at += len(mobile) + len(pair) + len(text)
    body = message.join(f"{mobile}{pair}{text}" for mobile, text in messages)
    for sep, places in intended.items():
        found = body.find(sep)
        while found != -1:
            if found not in places:
                return next(mobile for begin, mobile in reversed(starts) if begin <= found)
            found = body.find(sep, found + 1)
    return None


@dataclass(frozen=True)
class Request:
    """One HTTP request to a gateway, relative to the account's base URL. Always POSTed as a form."""

    path: str
    form: dict[str, str]
    method: str = "POST"
    # The dispatcher's own reference sent with it (trigger customerUuid, entinfo rrid), if any.
    ref: str | None = None
    # The charset the form is URL-encoded in: UTF-8, or a gateway's own (entinfo's "gb2312" reading: GBK).
    charset: str = "utf-8"

    def redacted(self) -> dict[str, str]:
        """The form without secrets, safe for logs and the store."""
        return {k: ("***" if k in SECRET_FIELDS else v) for k, v in self.form.items()}

    def redact(self, text: str, *secrets: str) -> str:
        """``text`` (an answer body, for a log) with this request's secret values, and ``secrets``
        (the account's password, which an encrypted request carries only inside its cipher), masked."""
        values = {v for k, v in self.form.items() if k in SECRET_FIELDS} | set(secrets)
        for value in sorted((v for v in values if v), key=len, reverse=True):
            text = text.replace(value, "***")
        return text

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path} {self.redacted()!r})"


class AnswerKind(enum.StrEnum):
    OK = "ok"  # a batch id / rrid / value
    ERROR = "error"  # a negative code, maybe with ``:detail``
    UNEXPECTED = "unexpected"  # anything else; kept raw


@dataclass(frozen=True)
class Answer:
    kind: AnswerKind
    raw: str
    value: str = ""  # batch id (or other value) when OK
    code: int | None = None  # the negative code when ERROR
    detail: str = ""  # text after ``:`` in ``-6:促销``

    @property
    def ok(self) -> bool:
        return self.kind is AnswerKind.OK


@dataclass(frozen=True)
class Report:
    """A delivery report (DLR) for one number of one submission."""

    mobile: str
    status: str  # raw vendor status: DELIVRD, UNDELIVRD, MK:0001, ...
    batch_id: str = ""
    at: datetime | None = None
    ref: str = ""  # trigger customerUuid / entinfo rrid, when given
    extra: dict[str, str] = field(default_factory=dict)  # voice: talk/ring seconds, hangup type

    @property
    def delivered(self) -> bool:
        return self.status.upper() == "DELIVRD"


@dataclass(frozen=True)
class Reply:
    """A reply (MO) from a recipient."""

    mobile: str
    text: str
    at: datetime | None = None
    channel: str = ""  # GetMo2's channel / show number
    ref: str = ""  # trigger customerUuid


_STRING_RE = re.compile(r"<string[^>]*>(.*?)</string>", re.S)
_STRING_EMPTY_RE = re.compile(r"<string[^>]*/>")
_SOAP_RESULT_RE = re.compile(r"<(?:\w+:)?(\w+)Result[^>]*>(.*?)</(?:\w+:)?\w+Result>", re.S)
_SOAP_EMPTY_RE = re.compile(r"<(?:\w+:)?\w+Result\s*/>")
# ASCII digits only: ``\d`` (and str.isdigit) also take full-width "１２３", which the gateways refuse.
_BATCH_RE = re.compile(r"[0-9]{1,19}")
_CODE_RE = re.compile(r"(-[0-9]+)(?::(.*))?", re.S)
_AMOUNT_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def unwrap(body: str) -> str:
    """The value of a plain, ASMX ``<string>`` or SOAP ``<XxxResult>`` answer body, stripped."""
    text = body.strip().lstrip("\ufeff")
    if text.startswith("<"):
        if m := _SOAP_RESULT_RE.search(text):
            return unescape(m.group(2)).strip()
        if m := _STRING_RE.search(text):
            return unescape(m.group(1)).strip()
        if _STRING_EMPTY_RE.search(text) or _SOAP_EMPTY_RE.search(text):
            return ""
    return text


def parse_send_answer(body: str) -> Answer:
    """A send answer: digits = batch id, negative integer (``:detail``) = error, else unexpected."""
    value = unwrap(body)
    if _BATCH_RE.fullmatch(value):
        return Answer(AnswerKind.OK, body, value=value)
    if m := _CODE_RE.fullmatch(value):
        return Answer(AnswerKind.ERROR, body, code=int(m.group(1)), detail=(m.group(2) or "").strip())
    return Answer(AnswerKind.UNEXPECTED, body, value=value)


def parse_value_answer(body: str) -> Answer:
    """An answer carrying a value (balance, keyword list): a negative integer is an error code."""
    value = unwrap(body)
    if m := _CODE_RE.fullmatch(value):
        return Answer(AnswerKind.ERROR, body, code=int(m.group(1)), detail=(m.group(2) or "").strip())
    if value == "":
        return Answer(AnswerKind.UNEXPECTED, body, value=value)
    return Answer(AnswerKind.OK, body, value=value)


def parse_amount_answer(body: str) -> Answer:
    """A balance: a plain number; anything else (an HTML error page, words) is unexpected, never a value."""
    answer = parse_value_answer(body)
    if answer.ok and not _AMOUNT_RE.fullmatch(answer.value):
        return Answer(AnswerKind.UNEXPECTED, body, value=answer.value)
    return answer


def is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes "１２" and "²")."""
    return text.isascii() and text.isdigit()


_PULL_CODE_RE = re.compile(r"-[0-9]+(?::.*)?", re.S)


def pull_error_code(body: str) -> int | None:
    """The negative code when a report or reply pull answered one (``-16``, ``-3``), else None."""
    value = unwrap(body)
    return int(value.split(":", 1)[0]) if _PULL_CODE_RE.fullmatch(value) else None


def check_encryptable(text: str) -> None:
    """The decrypted submitInfo is an unescaped ``k=v&k=v`` string: a ``&`` in a value would cut it."""
    if "&" in text:
        raise ValueError(
            "a text or number containing '&' cannot go through an encrypted method; send it plain"
        )


def declared_charset(content_type: str) -> str | None:
    """The charset a Content-Type names, as Python calls it; None when it names none we know."""
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        name = value.strip().strip('"')
        if key.strip().lower() == "charset" and name:
            try:
                info = codecs.lookup(name)
                # A text charset that writes ASCII as ASCII (a form's "&", "=", "+" and %-escapes):
                # not rot13 or base64 (bytes codecs), nor UTF-16 or UTF-7 (they would garble the rest)
                ascii_safe = (
                    info._is_text_encoding and _ASCII_PROBE.encode(info.name) == _ASCII_PROBE.encode()
                )
            except (LookupError, UnicodeError, TypeError, ValueError):
                return None
            return info.name if ascii_safe else None
    return None


_ASCII_PROBE = "a=1&b=+%2B~-_.:;,/?@[]{}|<>!*'()$ \t0123456789"


def decode_push(body: bytes, content_type: str) -> tuple[str, str | None]:
    """A pushed body's text, and the charset it was read in when not the default UTF-8: the declared
    one, else UTF-8, else GB18030 (Chinese gateways' other charset; what it cannot read is replaced,
    never dropped). The same charset holds the %-escapes of a form (:func:`form_pairs`)."""
    declared = declared_charset(content_type)
    for charset in (declared, "utf-8"):
        if charset is not None:
            try:
                return body.decode(charset), None if charset == "utf-8" else charset
            except UnicodeDecodeError:
                continue
    return body.decode("gb18030", errors="replace"), "gb18030"


def form_pairs(text: str, charset: str | None) -> list[tuple[str, str]]:
    """A form's fields, its %-escapes read in ``charset``; without one, UTF-8, else GB18030: a gateway
    that escapes GBK bytes and declares nothing must not lose a Chinese "退订"."""
    if charset is not None:
        return parse_qsl(text, keep_blank_values=True, encoding=charset, errors="replace")
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return parse_qsl(text, keep_blank_values=True, encoding="gb18030", errors="replace")


_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y%m%d%H%M%S")


MIN_YEAR, MAX_YEAR = 2000, 2100  # the years a gateway's time may name


def parse_china_time(value: str) -> datetime | None:
    """A vendor time (China Standard Time, or epoch seconds/milliseconds) as an aware datetime."""
    text = value.strip()
    if not text:
        return None
    if is_digits(text) and len(text) in (10, 13):
        seconds = int(text) / (1000 if len(text) == 13 else 1)
        return datetime.fromtimestamp(seconds, UTC).astimezone(CHINA_TZ)
    text = text.replace("T", " ")
    for fmt in _TIME_FORMATS:
        try:
            moment = datetime.strptime(text, fmt).replace(tzinfo=CHINA_TZ)
        except ValueError:
            continue
        # Year 1 or 9999 is no gateway's time (and no store's: converted to UTC it overflows): not a time.
        return moment if MIN_YEAR <= moment.year <= MAX_YEAR else None
    return None


def split_records(body: str, record_sep: str) -> list[str]:
    """Non-empty, stripped records of a pulled list (lenient about trailing separators)."""
    return [r.strip() for r in body.split(record_sep) if r.strip()]


@dataclass(frozen=True)
class VendorMethods:
    """A vendor's send methods: ``None`` where it has no such method."""

    same_text: str | None  # many numbers, one text
    personalised: str | None  # number/text pairs
    single: str  # one number, one text
    separated: bool = True  # personalised messages joined by Separators (entinfo URL-encodes instead)


@dataclass(frozen=True)
class Limits:
    """What one request of a vendor may carry (the vendors' documents)."""

    same_text_numbers: int  # numbers per same-text request (1 = no batch method)
    personalised_messages: int  # messages per personalised request (1 = no personalised method)
    reports_per_pull: int = 500
    same_text_advised: int | None = None  # an account's default when the vendor advises less than the most
