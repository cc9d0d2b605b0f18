"""Entinfo SDK API (2017): ``/webservice.asmx/<method>`` and plain ``/mdsmssend.ashx``; sans-I/O.

``Credentials.user`` is the SDK serial number (``sn``); the form never carries the password itself,
only ``pwd = MD5(sn + password)``. The gateway has no report or reply method (the document lists none), so
a submission ends at "accepted"; ``rrid`` (the chunk's ref) is the only way to match an answer that
was lost.

Notes on the document, resolved here:
- ``balance(sn, pwd)`` is not in the document, but the contract needs a balance and every public client of
  this gateway calls ``webservice.asmx/balance`` with exactly those two fields.
- ``Register`` / ``UnRegister`` are named in section 4.2 without fields; the fields are the ones the
  vendor's own demo client sends, and like it they carry the password itself in ``pwd`` (every other
  method: the MD5 form). The document gives them port 8060 (base URL is configuration). ``pwd`` is a
  secret field: never logged or stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from dispatcher.errors import UnsupportedMethodError
from dispatcher.vendors import crypto
from dispatcher.vendors.wire import (
    CHINA_TZ,
    Answer,
    CodeInfo,
    Credentials,
    Limits,
    Reply,
    Report,
    Request,
    Separators,
    VendorMethods,
    classify_code,
    load_tables,
    parse_amount_answer,
    parse_send_answer,
    parse_value_answer,
)

NAME = "entinfo"
DOCUMENT = "Entinfo SDK API (2017)"  # the vendor's document this module implements
LIMITS = Limits(
    same_text_numbers=10_000, personalised_messages=1000, reports_per_pull=500, same_text_advised=5_000
)
SEND_METHODS = VendorMethods(
    same_text="mdsmssend", personalised="mdgxsend", single="mdsmssend", separated=False
)
ENCRYPTED_SEND_METHODS: VendorMethods | None = None  # the Entinfo SDK API (2017) has no encrypted method
BALANCE_INTERVAL_S = 5.0  # the document states none: as the others
ENCODING = (
    "Form fields in UTF-8; `pwd` is MD5(sn + password), never the password (but Register and UnRegister "
    "take the password itself, as the vendor's demo client sends it). No encrypted method. "
    "`mdgxsend` URL-encodes each content (UTF-8) before joining them with `,`. `mdsmssend`'s content "
    "is an account's choice (`content_encoding`): `plain` (default: the text as is in the form, as the "
    "document's GET examples show it and a public Python client sends it), `url` (URL-encoded once "
    "more, as the vendor's Java SDK does: for a gateway that URL-decodes the field, as the document's "
    '"URLUTF8编码" says), or `gb2312` (the form in GBK, as the vendor\'s PHP demo converts it). If '
    "`plain` is wrong, only texts holding `+` or `%xx` change; a wrong `url` would garble every text. "
    "To find out, send a proof whose text holds `+`, `%` and 喆 and compare what arrives."
)
SERVICE_PATH = "/webservice.asmx"
ASMX = SERVICE_PATH + "/"
# Text length the gateway refuses with -10: single-byte text / text with any double-byte character.
MAX_SINGLE_BYTE_CHARS = 1000
MAX_DOUBLE_BYTE_CHARS = 500

CODES, METHODS = load_tables(NAME)  # entinfo.toml: every answer code with its class, and the methods

# ASCII digits: the gateway refuses full-width ones (-607, -610).
_EXT_RE = re.compile(r"[0-9]{1,9}")
_RRID_RE = re.compile(r"[0-9]{1,18}")


def classify(code: int) -> CodeInfo:
    return classify_code(CODES, code)


def text_too_long(text: str) -> bool:
    """Whether the gateway would refuse ``text`` with -10."""
    limit = MAX_SINGLE_BYTE_CHARS if text.isascii() else MAX_DOUBLE_BYTE_CHARS
    return len(text) > limit


def _login(creds: Credentials) -> dict[str, str]:
    return {"sn": creds.user, "pwd": crypto.entinfo_password(creds.user, creds.password)}


def _stime(stime: datetime | str | None) -> str:
    if stime is None:
        return ""
    if isinstance(stime, str):
        return stime.strip()
    at = stime.astimezone(CHINA_TZ) if stime.tzinfo else stime  # naive = already China time
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _options(ref: str | None, ext: str | None, stime: datetime | str | None, msgfmt: str) -> dict[str, str]:
    if ref is not None and not _RRID_RE.fullmatch(ref):
        raise ValueError("entinfo rrid must be 1-18 digits")
    if ext is not None and not _EXT_RE.fullmatch(ext):
        raise ValueError("entinfo ext must be 1-9 digits")
    return {"ext": ext or "", "stime": _stime(stime), "rrid": ref or "", "msgfmt": msgfmt}


def _check_mobiles(mobiles: Sequence[str], limit: int) -> None:
    if not mobiles:
        raise ValueError("no mobile number to send to")
    if len(mobiles) > limit:
        raise ValueError(f"entinfo takes at most {limit} numbers per request")
    if any("," in m for m in mobiles):
        raise ValueError("a mobile number contains ','")


def build_send(
    creds: Credentials,
    mobiles: Sequence[str],
    text: str,
    *,
    ref: str | None = None,
    ext: str | None = None,
    encrypted: bool = False,
    stime: datetime | str | None = None,
    msgfmt: str = "",
    plain_http: bool = False,
    content_encoding: str = "plain",
) -> Request:
    """mdsmssend (or ``/mdsmssend.ashx`` with ``plain_http``): same text to up to 10,000 numbers.

    ``content_encoding`` (an account setting, see ``ENCODING``): "plain" the text as is, "url" the text
    URL-encoded (UTF-8) once more, "gb2312" the whole form in GBK (``TextEncodingError`` for a text GBK
    cannot carry, before anything is sent)."""
    if encrypted:
        raise ValueError("entinfo has no encrypted send method")
    _check_mobiles(mobiles, LIMITS.same_text_numbers)
    charset = "utf-8"
    if content_encoding == "url":
        content = quote(text, safe="")
    elif content_encoding == "gb2312":
        content, charset = text, crypto.ENCRYPTED_CHARSET
        crypto.encode_encrypted_charset(text)  # TextEncodingError names what GBK cannot carry
    elif content_encoding == "plain":
        content = text
    else:
        raise ValueError(f"unknown entinfo content_encoding {content_encoding!r}")
    form = _login(creds) | {"mobile": ",".join(mobiles), "content": content}
    form |= _options(ref, ext, stime, msgfmt)
    return Request("/mdsmssend.ashx" if plain_http else ASMX + "mdsmssend", form, ref=ref, charset=charset)


def build_personalised(
    creds: Credentials,
    messages: Sequence[tuple[str, str]],
    *,
    separators: Separators = Separators(),
    ref: str | None = None,
    ext: str | None = None,
    stime: datetime | str | None = None,
    msgfmt: str = "",
    plain_http: bool = False,
) -> Request:
    """mdgxsend: ``mobile`` and ``content`` lists aligned one to one, up to 1,000.

    Each content is URL-encoded (UTF-8) before the join, so a ``,`` in a text cannot split it: no text
    conflicts with this gateway's separator, and ``separators`` (an account setting of the other
    gateways) does not apply.
    """
    del separators
    _check_mobiles([m for m, _ in messages], LIMITS.personalised_messages)
    form = _login(creds) | {
        "mobile": ",".join(m for m, _ in messages),
        "content": ",".join(quote(text, safe="") for _, text in messages),
    }
    form |= _options(ref, ext, stime, msgfmt)
    return Request("/mdgxsend.ashx" if plain_http else ASMX + "mdgxsend", form, ref=ref)


# Success is the rrid (1-18 digits, or the gateway's own long number); failure a negative code.
parse_send = parse_send_answer


def build_balance(creds: Credentials, *, encrypted: bool = False) -> Request:
    if encrypted:
        raise UnsupportedMethodError("entinfo has no encrypted balance method")
    return Request(ASMX + "balance", _login(creds))


parse_balance = parse_amount_answer  # a plain number; an HTML error page or words are unexpected


def build_register(  # noqa: PLR0913 (the document's registration form, a keyword per field)
    creds: Credentials,
    *,
    province: str,
    city: str,
    trade: str,
    entname: str,
    linkman: str,
    phone: str,
    mobile: str,
    email: str,
    fax: str,
    address: str,
    postcode: str,
    sign: str,
) -> Request:
    """Register: once per serial number, with the company's real details; the plain password, as the
    vendor's demo client sends it."""
    details = {"province": province, "city": city, "trade": trade, "entname": entname, "linkman": linkman}
    details |= {"phone": phone, "mobile": mobile, "email": email, "fax": fax, "address": address}
    details |= {"postcode": postcode, "sign": sign}
    return Request(ASMX + "Register", _plain_login(creds) | details)


def build_unregister(creds: Credentials) -> Request:
    """UnRegister: the plain password, as the vendor's demo client sends it."""
    return Request(ASMX + "UnRegister", _plain_login(creds))


def _plain_login(creds: Credentials) -> dict[str, str]:
    return {"sn": creds.user, "pwd": creds.password}


def parse_value(body: str) -> Answer:
    """Register / UnRegister answers: ``0`` or a value when done, a negative code otherwise."""
    return parse_value_answer(body)


def _no_reports() -> UnsupportedMethodError:
    return UnsupportedMethodError("entinfo has no report or reply method: submissions end at 'accepted'")


def build_pull_reports(creds: Credentials, *, encrypted: bool = False) -> Request:
    raise _no_reports()


def parse_reports(body: str) -> list[Report]:
    raise _no_reports()


def build_pull_replies(creds: Credentials, *, encrypted: bool = False) -> Request:
    raise _no_reports()


def parse_replies(body: str, now: datetime | None = None) -> list[Reply]:
    raise _no_reports()


def parse_replies_with_rejects(body: str, now: datetime | None = None) -> tuple[list[Reply], list[str]]:
    raise _no_reports()


def pull_error(body: str) -> CodeInfo | None:
    raise _no_reports()


def parse_push_reports(body: bytes, content_type: str) -> tuple[str, list[Report]]:
    raise _no_reports()


def parse_push_replies(
    body: bytes, content_type: str, now: datetime | None = None
) -> tuple[str, list[Reply]]:
    raise _no_reports()


def parse_push_reports_with_rejects(body: bytes, content_type: str) -> tuple[str, list[Report], list[str]]:
    raise _no_reports()


def parse_push_replies_with_rejects(
    body: bytes, content_type: str, now: datetime | None = None
) -> tuple[str, list[Reply], list[str]]:
    raise _no_reports()
