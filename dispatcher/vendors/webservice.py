"""The ``webservice`` gateway (WebService API v9.9.6): sans-I/O requests and parsers.

One number per request, no personalised method. Every method is POSTed to
``/Services/MsgSend.asmx/<Method>`` (:data:`SERVICE_PATH`). The document writes the same service as
``MsgSend.aspx`` in its send sections and ``MsgSend.asmx`` in its report and reply sections; ``.asmx``
is ASP.NET's web-service endpoint, the one that answers ``<Method>`` with the ``<string>`` XML the
document shows, and public clients of this gateway post every method there. An account whose gateway
wants another path sets ``service_path`` (e.g. ``/Services/MsgSend.aspx``).

The pull and push formats (``batch,mobile[,time],status|``, ``phone|,|text|,|time|;|``, push form
``account=..&GetReport=..``) are shared with ``yunxin`` (same vendor family); yunxin reuses the parsers
defined here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from dispatcher.errors import UnsupportedMethodError
from dispatcher.vendors import mo
from dispatcher.vendors.crypto import des_encrypt
from dispatcher.vendors.wire import (
    CodeInfo,
    Credentials,
    Limits,
    Reply,
    Report,
    Request,
    Separators,
    VendorMethods,
    check_encryptable,
    classify_code,
    decode_push,
    form_pairs,
    load_tables,
    parse_amount_answer,
    parse_china_time,
    parse_send_answer,
    pull_error_code,
    unwrap,
)

NAME = "webservice"
DOCUMENT = "WebService API v9.9.6"  # the vendor's document this module implements
LIMITS = Limits(same_text_numbers=1, personalised_messages=1)
SEND_METHODS = VendorMethods(same_text=None, personalised=None, single="SendMsg")
ENCRYPTED_SEND_METHODS: VendorMethods | None = None  # the same one number per request
BALANCE_INTERVAL_S = 5.0  # GetBalance at most once per 5 s, else -16
ENCODING = (
    "Form fields in UTF-8. Encrypted accounts: `submitInfo` is DES over the whole query, its text in GBK "
    "(code page 936, what the document calls GB2312); a character outside GBK is refused before sending."
)

SERVICE_PATH = "/Services/MsgSend.asmx"

EXT_CHANNEL = "543296"  # SendMsgExt_Sub: 固定参数 543296
VOICE_CHANNEL = "999"  # SendVoiceCode: 固定填写 999
INTERNATIONAL_CHANNEL = "999"  # international SendMsg
INTERNATIONAL_MAX_CHARS = 140

_DIGITS_RE = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts "１２" and "²"

CODES, METHODS = load_tables(NAME)  # webservice.toml: every answer code with its class, and the methods

# Voice report hangup types (WebService API v9.9.6, 语音验证码状态).
VOICE_HANGUP_TYPES: dict[str, str] = {
    "0": "unknown reason, usually answered",
    "1": "call failed, not answered",
    "2": "call timed out, system hung up",
    "3": "done, system hung up",
    "4": "callee hung up first",
}


def classify(code: int) -> CodeInfo:
    return classify_code(CODES, code)


# ---------------------------------------------------------------------------------------------- sending


def _login(creds: Credentials) -> dict[str, str]:
    return {"userCode": creds.user, "userPass": creds.password}


def _encrypted(creds: Credentials, plaintext: str) -> dict[str, str]:
    return {"userCode": creds.user, "submitInfo": des_encrypt(plaintext, creds.password)}


def _one_mobile(mobiles: Sequence[str]) -> str:
    if len(mobiles) != 1:
        raise ValueError(f"{NAME} takes exactly 1 number per request, got {len(mobiles)}")
    mobile = mobiles[0].strip()
    if not mobile:
        raise ValueError("empty mobile number")
    return mobile


def check_ext(ext: str) -> str:
    if not _DIGITS_RE.fullmatch(ext):
        raise ValueError(f"extension number must be digits, got {ext!r}")
    return ext


def build_send(
    creds: Credentials,
    mobiles: Sequence[str],
    text: str,
    *,
    ref: str | None = None,
    ext: str | None = None,
    encrypted: bool = False,
) -> Request:
    """Same text to one number: ``SendMsg``, ``SendMsgExt_Sub`` (ext) or ``sendMsgByEncrypt``.

    The document has no encrypted extension method: ``ext`` with ``encrypted`` is a ``ValueError``.
    ``ref`` only rides on the Request: webservice has no client reference field.
    """
    mobile = _one_mobile(mobiles)
    if ext is not None and encrypted:
        raise ValueError(f"{NAME} has no encrypted send with an extension number")
    if ext is not None:
        form = {
            **_login(creds),
            "DesNo": mobile,
            "Msg": text,
            "Channel": EXT_CHANNEL,
            "ExeNo": check_ext(ext),
        }
        return Request(f"{SERVICE_PATH}/SendMsgExt_Sub", form, ref=ref)
    if encrypted:
        check_encryptable(text + mobile)
        # Field order exactly as the document; "Channel: 输入 0 即可".
        plain = f"userPass={creds.password}&DesNo={mobile}&Msg={text}&Channel={creds.channel or '0'}"
        return Request(f"{SERVICE_PATH}/sendMsgByEncrypt", _encrypted(creds, plain), ref=ref)
    form = {**_login(creds), "DesNo": mobile, "Msg": text, "Channel": creds.channel}
    return Request(f"{SERVICE_PATH}/SendMsg", form, ref=ref)


def build_personalised(
    creds: Credentials,
    messages: Sequence[tuple[str, str]],
    *,
    separators: Separators = Separators(),
    ref: str | None = None,
) -> Request:
    raise UnsupportedMethodError(f"{NAME} has no personalised method: send one request per message")


def build_international(creds: Credentials, mobile: str, text: str, *, ref: str | None = None) -> Request:
    """International ``SendMsg`` (Channel 999): English text of at most 140 characters."""
    if not text.isascii() or len(text) > INTERNATIONAL_MAX_CHARS:
        raise ValueError(
            f"international text must be English (ASCII), at most {INTERNATIONAL_MAX_CHARS} chars"
        )
    form = {**_login(creds), "DesNo": _one_mobile([mobile]), "Msg": text, "Channel": INTERNATIONAL_CHANNEL}
    return Request(f"{SERVICE_PATH}/SendMsg", form, ref=ref)


def _check_voice(code: str, amount: int) -> None:
    # Checked here so the vendor's -13/-14/-15 (packing bugs) never happen.
    if not (_DIGITS_RE.fullmatch(code) and len(code) <= 6):
        raise ValueError("voice code must be 1-6 digits")
    if not 1 <= amount <= 3:
        raise ValueError("voice code Amount (times played) must be 1-3")


def build_voice_code(
    creds: Credentials, mobile: str, code: str, *, amount: int = 1, ref: str | None = None
) -> Request:
    """``SendVoiceCode``: a 1-6 digit code read out ``amount`` (1-3) times."""
    _check_voice(code, amount)
    form = {
        **_login(creds),
        "DesNo": _one_mobile([mobile]),
        "VoiceCode": code,
        "Channel": VOICE_CHANNEL,
        "Amount": str(amount),
    }
    return Request(f"{SERVICE_PATH}/SendVoiceCode", form, ref=ref)


def build_voice_template(
    creds: Credentials, mobile: str, code: str, *, template_id: int, amount: int = 1, ref: str | None = None
) -> Request:
    """``SendVoiceCodeWithTemplate``: templates 1-6 (male/female "校验码", "验证码", "注册码")."""
    _check_voice(code, amount)
    if not 1 <= template_id <= 6:
        raise ValueError("voice TemplateID must be 1-6")
    form = {
        **_login(creds),
        "DesNo": _one_mobile([mobile]),
        "VoiceCode": code,
        "Amount": str(amount),
        "TemplateID": str(template_id),
    }
    return Request(f"{SERVICE_PATH}/SendVoiceCodeWithTemplate", form, ref=ref)


parse_send = parse_send_answer


# ------------------------------------------------------------------------------------- balance, pulls


def build_balance(creds: Credentials, *, encrypted: bool = False) -> Request:
    if encrypted:
        return Request(f"{SERVICE_PATH}/GetBalanceByEncrypt", _encrypted(creds, f"userPass={creds.password}"))
    return Request(f"{SERVICE_PATH}/GetBalance", _login(creds))


parse_balance = parse_amount_answer  # a plain number; an HTML error page or words are unexpected


def build_pull_reports(creds: Credentials, *, encrypted: bool = False) -> Request:
    """``GetReport2`` (with operator time) or ``GetReport2ByEncrypt``; consumes up to 500 records."""
    if encrypted:
        return Request(f"{SERVICE_PATH}/GetReport2ByEncrypt", _encrypted(creds, f"userPass={creds.password}"))
    return Request(f"{SERVICE_PATH}/GetReport2", _login(creds))


def build_report_legacy(creds: Credentials, *, batch_number: str = "") -> Request:
    """``GetReport`` without time; ``batchNumber`` is "备用，空值即可" (reserved, leave empty)."""
    return Request(f"{SERVICE_PATH}/GetReport", {**_login(creds), "batchNumber": batch_number})


def build_pull_replies(creds: Credentials, *, encrypted: bool = False) -> Request:
    """``GetMo2`` (with channel number) or ``GetMo2ByEncrypt``."""
    if encrypted:
        return Request(f"{SERVICE_PATH}/GetMo2ByEncrypt", _encrypted(creds, f"userPass={creds.password}"))
    return Request(f"{SERVICE_PATH}/GetMo2", _login(creds))


def build_replies_legacy(creds: Credentials) -> Request:
    """``GetMo``: replies without the channel number."""
    return Request(f"{SERVICE_PATH}/GetMo", _login(creds))


def pull_error(body: str) -> CodeInfo | None:
    """The error when a pull answered a bare negative code, else None.

    ``parse_reports``/``parse_replies`` return ``[]`` for such a body; a puller calls this to tell
    "nothing to fetch" from "the vendor refused". Webservice answers ``""`` to a bad password.
    """
    code = pull_error_code(body)
    return None if code is None else classify(code)


# ------------------------------------------------------------------------ reports and replies (family)

_BATCH_RE = re.compile(r"[0-9]{1,25}")
_MOBILE_RE = re.compile(r"\+?[0-9]{5,20}")
_STATUS_RE = re.compile(r"[A-Za-z][\w:.\- ]{0,31}")
_MO_RECORD_SEP = re.compile(r"\|;\|?")  # "|;|" between records; GetMo2's example writes "|;" at the end


def _norm(field: str) -> str:
    # Collapse inner whitespace: the documents' examples wrap "2014/06/10\n15:34:11" and pad " UNDELIVRD ".
    return " ".join(field.split())


def _time_field(value: str) -> bool:
    return not _DIGITS_RE.fullmatch(value) and parse_china_time(value) is not None


def _voice_report(batch: str, fields: list[str]) -> Report:
    # Voice: mobile,talk_s,ring_s,hangup_type. Someone listened iff talk time > 0; otherwise the
    # status keeps the raw hangup type as VOICE:<n> (see VOICE_HANGUP_TYPES).
    mobile, talk, ring, hangup = fields
    status = "DELIVRD" if int(talk) > 0 else f"VOICE:{hangup}"
    return Report(mobile, status, batch, extra={"talk_s": talk, "ring_s": ring, "hangup_type": hangup})


def parse_report_record(record: str) -> Report | None:
    """One ``batch,mobile[,time],status`` (or voice) record; None when it is not one.

    Fields are recognised by shape, empty ones skipped: the document's ``batch,,mobile,status`` is the
    report of ``mobile`` for ``batch`` with a stray empty field.
    """
    fields = [_norm(f) for f in record.split(",")]
    batch = fields[0]
    if batch and not _BATCH_RE.fullmatch(batch):
        return None
    rest = [f for f in fields[1:] if f]
    if len(rest) == 4 and all(_DIGITS_RE.fullmatch(f) for f in rest):
        return _voice_report(batch, rest)
    if len(rest) < 2:
        return None
    status = rest[-1]
    if not _STATUS_RE.fullmatch(status) or _time_field(status):
        return None
    mobile, at = "", None
    for value in rest[:-1]:
        if not mobile and _MOBILE_RE.fullmatch(value):
            mobile = value
        elif at is None and _time_field(value):
            at = parse_china_time(value)
    if not mobile:
        return None
    return Report(mobile, status, batch, at=at)


def parse_reports_with_rejects(body: str) -> tuple[list[Report], list[str]]:
    """Reports of a pulled/pushed list, plus the records that could not be read (for logs)."""
    value = unwrap(body)
    if value.startswith("<"):  # an HTML error page or unknown XML: no records at all
        return [], [value[:200]] if value else []
    reports: list[Report] = []
    rejects: list[str] = []
    for record in value.split("|"):
        if not record.strip():
            continue
        report = parse_report_record(record)
        if report is None:
            rejects.append(record.strip())
        else:
            reports.append(report)
    return reports, rejects


def parse_reports(body: str) -> list[Report]:
    """``GetReport``/``GetReport2``/voice records; ``""`` (nothing, or webservice's bad password) = []."""
    return parse_reports_with_rejects(body)[0]


# GetMo: phone|,|text|,|time; GetMo2 adds the channel number. "|;|" between records; GetMo2's example
# writes "|;" at the end. Read from the records' ends (dispatcher.vendors.mo): a text holding "|;|" or
# "|,|" stays one reply's text.
MO_FORMAT = mo.MoFormat("|,|", re.compile(r"\|;\|?"), ((mo.CHANNEL,), ()))


def _reply(record: mo.MoRecord) -> Reply:
    channel = record.tail[0] if record.tail else ""
    return Reply(record.mobile, record.text, at=parse_china_time(record.time), channel=channel)


def parse_replies_with_rejects(body: str, now: datetime | None = None) -> tuple[list[Reply], list[str]]:
    """Replies of a ``GetMo``/``GetMo2`` list received at ``now``, and the parts of it that are no record."""
    value = unwrap(body)
    if value.startswith("<"):  # an HTML error page or unknown XML: no records at all
        return [], [value[:200]] if value else []
    records, rejects = mo.split(value, MO_FORMAT, now)
    return [_reply(r) for r in records], rejects


def parse_replies(body: str, now: datetime | None = None) -> list[Reply]:
    """``GetMo``/``GetMo2`` records separated by ``|;|``; ``""`` = none."""
    return parse_replies_with_rejects(body, now)[0]


# ------------------------------------------------------------------------------------------------- push

_REPORT_KEYS = ("getreport", "getreport2")
_REPLY_KEYS = ("getmo", "getmo2", "mo")


def parse_push_form(body: bytes, content_type: str, keys: Sequence[str]) -> tuple[str, str]:
    """``(account, list)`` of a pushed form ``account=XXX&<key>=<list>``.

    ``ValueError`` for JSON or a form without one of ``keys``. The charset comes from the content type
    (UTF-8 by default, GB18030 as a fallback for undeclared Chinese bytes).
    """
    if "json" in content_type.lower():
        raise ValueError("expected a form push (account=..&GetReport=..), got JSON")
    text, charset = decode_push(body, content_type)
    pairs = [(k.lower(), v) for k, v in form_pairs(text, charset)]
    named = [k for k, _ in pairs if k in keys or k == "account"]
    lists = [k for k in named if k in keys]  # GetMo, GetMo2 and Mo name the same list
    if len(named) != len(set(named)) or len(lists) > 1:
        # A gateway that does not encode the form lets a reply's "&GetMo=..." (or another name of the
        # list) become a second list, read instead of the real one: such a body is set aside, never read.
        raise ValueError(f"push form repeats a field ({', '.join(sorted(named))}): a text was not encoded")
    fields = dict(pairs)
    for key in keys:
        if key in fields:
            return fields.get("account", "").strip(), fields[key]
    raise ValueError(f"push form has none of the fields {', '.join(keys)}")


def parse_push_reports_with_rejects(body: bytes, content_type: str) -> tuple[str, list[Report], list[str]]:
    """Pushed reports, and the records of the list that could not be read."""
    account, records = parse_push_form(body, content_type, _REPORT_KEYS)
    return account, *parse_reports_with_rejects(records)


def parse_push_reports(body: bytes, content_type: str) -> tuple[str, list[Report]]:
    """Pushed reports: POST form ``account=XXX&GetReport=<GetReport or GetReport2 format>``."""
    account, reports, _ = parse_push_reports_with_rejects(body, content_type)
    return account, reports


def parse_push_replies_with_rejects(
    body: bytes, content_type: str, now: datetime | None = None
) -> tuple[str, list[Reply], list[str]]:
    """Pushed replies, and the parts of the list that are no record."""
    account, records = parse_push_form(body, content_type, _REPLY_KEYS)
    return account, *parse_replies_with_rejects(records, now)


def parse_push_replies(
    body: bytes, content_type: str, now: datetime | None = None
) -> tuple[str, list[Reply]]:
    """Pushed replies. The document has no reply push format; mirror the report push with the MO list:
    ``account=XXX&GetMo=<GetMo or GetMo2 format>`` (``GetMo2``/``Mo`` accepted too)."""
    account, replies, _ = parse_push_replies_with_rejects(body, content_type, now)
    return account, replies
