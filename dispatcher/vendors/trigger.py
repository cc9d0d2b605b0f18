"""Trigger API v1.8 (2020): ``/winnerrxd/api/trigger/<Command>``; sans-I/O.

Notes on the document, resolved here:
- Some commands are printed ``/winerrxd/...`` in section 2; the command list in section 1 says
  ``/winnerrxd/...``: the list is taken as right (it is also the Java example's address).
- ``SendIndividualMsg``'s separators did not survive in the copy of the document we have: its text reads
  "每条个性化短信以英文  ~  分割, 号码与短信内容以 英文 ~  分割", the ``|`` characters lost as they
  are in the same family's 云信 API v8.3, whose "以英文 ^ 分割 ... 以英文 ! 分割" is ``|^|`` and ``|!|``
  (its example URL shows them). What survives is a ``~`` between number and text, and nothing supports
  yunxin's ``|!|``/``|^|`` here. A public Java client of this gateway family's ``SendIndividualMsg``
  (reported to the project; no copy of it is quoted here) packs ``phone|~|text|-|phone|~|text``: ``|~|`` agrees with the surviving ``~`` between number and
  text, and ``|-|`` is its message separator (the document's second ``~`` cannot also be the message
  separator: the two must differ). So the default is ``|~|`` between number and text and ``|-|``
  between messages (:data:`SEPARATORS`). They must be confirmed with the vendor: an account sets its own
  (``pair_separator``, ``message_separator``); wrong separators break every message of a personalised
  request (the document's -18, "Msg 内容格式错误", is the answer to expect).
- Reply lists are read as ``|,|`` / ``|;|`` (the family's other two gateways) when the first record's
  number is followed by ``|,|``, else as bare ``,`` / ``;`` as the garbled example shows; either way
  from the records' ends (``dispatcher.vendors.mo``), so a text cannot make a record or a field.
- ``SendBatchMsg`` and ``sendMsgByEncrypt`` have no ``customerUuid`` field: their ``ref`` stays on the
  ``Request`` only, and their reports are matched by batch id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dispatcher.errors import UnsupportedMethodError
from dispatcher.vendors import DEFAULT_SEPARATORS, crypto, mo
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
    is_digits,
    load_tables,
    packed_conflict,
    parse_amount_answer,
    parse_china_time,
    parse_send_answer,
    pull_error_code,
    split_records,
    unwrap,
)

NAME = "trigger"
DOCUMENT = "Trigger API v1.8 (2020)"  # the vendor's document this module implements
LIMITS = Limits(same_text_numbers=50, personalised_messages=50, reports_per_pull=500)
SEND_METHODS = VendorMethods(same_text="SendBatchMsg", personalised="SendIndividualMsg", single="SendMsg")
# The encrypted send takes one number and no personalised list (Trigger API v1.8, 2.8: sendMsgByEncrypt
# "每次只能提交 1 个号码"): every message of an encrypted account is a request of its own.
ENCRYPTED_SEND_METHODS: VendorMethods | None = VendorMethods(
    same_text=None, personalised=None, single="sendMsgByEncrypt"
)
BALANCE_INTERVAL_S = 5.0  # the balance method at most once per 5 s, else -16
ENCODING = (
    "Form fields in UTF-8. Encrypted accounts send one number per request (`sendMsgByEncrypt`): "
    "`submitInfo` is DES, its text in GBK (code page 936); a character outside GBK is refused before "
    "sending. Pushes come as JSON or as a form."
)
SERVICE_PATH = "/winnerrxd/api/trigger"
PREFIX = SERVICE_PATH + "/"
DEFAULT_SMS_TYPE = 101  # the document: "未指定类型可填写 101"
MAX_CUSTOMER_UUID = 60
SEPARATORS = DEFAULT_SEPARATORS[NAME]  # |~| and |-|: see the module's notes; confirm with the vendor

CODES, METHODS = load_tables(NAME)  # trigger.toml: every answer code with its class, and the methods

_EXT_RE = re.compile(r"[0-9]{1,16}")  # ASCII digits: the gateway refuses full-width ones (-44)


def classify(code: int) -> CodeInfo:
    return classify_code(CODES, code)


def _login(creds: Credentials) -> dict[str, str]:
    return {"userCode": creds.user, "userPass": creds.password}


def _encrypted_login(creds: Credentials, plaintext: str) -> dict[str, str]:
    return {"userCode": creds.user, "submitInfo": crypto.des_encrypt(plaintext, creds.password)}


def _check_ref(ref: str | None) -> str:
    if ref is not None and len(ref) > MAX_CUSTOMER_UUID:
        raise ValueError(f"customerUuid is at most {MAX_CUSTOMER_UUID} characters, got {len(ref)}")
    return ref or ""


def build_send(
    creds: Credentials,
    mobiles: Sequence[str],
    text: str,
    *,
    ref: str | None = None,
    ext: str | None = None,
    encrypted: bool = False,
    sms_type: int = DEFAULT_SMS_TYPE,
    autograph: str = "",
) -> Request:
    """Same text to 1..50 numbers: SendMsg, SendBatchMsg, sendMsgExt (``ext``) or sendMsgByEncrypt."""
    if not mobiles:
        raise ValueError("no mobile number to send to")
    if len(mobiles) > LIMITS.same_text_numbers:
        raise ValueError(f"trigger takes at most {LIMITS.same_text_numbers} numbers per request")
    customer_uuid = _check_ref(ref)
    single = len(mobiles) == 1
    if encrypted:
        if not single or ext is not None:
            raise ValueError("trigger's sendMsgByEncrypt takes one number and no extension number")
        # The document's field order, values unescaped (that is what its known answer encrypts).
        check_encryptable(text + mobiles[0])
        plain = f"userPass={creds.password}&DesNo={mobiles[0]}&Msg={text}&smsType={sms_type}&Channel=0"
        form = _encrypted_login(creds, plain) | {"autograph": autograph}
        return Request(PREFIX + "sendMsgByEncrypt", form, ref=ref)
    if ext is not None:
        if not single:
            raise ValueError("trigger's sendMsgExt takes one number")
        if ext and not _EXT_RE.fullmatch(ext):  # "可为空": an empty ExeNo is allowed
            raise ValueError("ExeNo must be empty or 1-16 digits")
        form = _login(creds) | {"DesNo": mobiles[0], "Msg": text, "autograph": autograph, "ExeNo": ext}
        form |= {"customerUuid": customer_uuid, "smsType": str(sms_type)}
        return Request(PREFIX + "sendMsgExt", form, ref=ref)
    if single:
        form = _login(creds) | {"DesNo": mobiles[0], "Msg": text, "autograph": autograph}
        form |= {"customerUuid": customer_uuid, "smsType": str(sms_type)}
        return Request(PREFIX + "SendMsg", form, ref=ref)
    form = _login(creds) | {"DesNo": ",".join(mobiles), "Msg": text, "autograph": autograph}
    form |= {"smsType": str(sms_type)}
    return Request(PREFIX + "SendBatchMsg", form, ref=ref)


def build_personalised(
    creds: Credentials,
    messages: Sequence[tuple[str, str]],
    *,
    separators: Separators = SEPARATORS,
    ref: str | None = None,
    sms_type: int = DEFAULT_SMS_TYPE,
) -> Request:
    """SendIndividualMsg: ``phone<pair>text<message>phone<pair>text`` (by default ``|~|`` and ``|-|``), up
    to 50 messages."""
    if not messages:
        raise ValueError("no message to send")
    if len(messages) > LIMITS.personalised_messages:
        raise ValueError(f"trigger takes at most {LIMITS.personalised_messages} personalised messages")
    if (number := packed_conflict(list(messages), separators)) is not None:
        raise ValueError(f"message for {number} forms a separator as packed: send it on its own")
    msg = separators.message.join(f"{mobile}{separators.pair}{text}" for mobile, text in messages)
    form = _login(creds) | {"Msg": msg, "smsType": str(sms_type), "customerUuid": _check_ref(ref)}
    return Request(PREFIX + "SendIndividualMsg", form, ref=ref)


parse_send = parse_send_answer


def build_balance(creds: Credentials, *, encrypted: bool = False) -> Request:
    if encrypted:
        raise UnsupportedMethodError("trigger has no encrypted balance method")
    return Request(PREFIX + "GetBalanceConnect", _login(creds))


parse_balance = parse_amount_answer  # a plain number; an HTML error page or words are unexpected


def build_pull_reports(creds: Credentials, *, encrypted: bool = False) -> Request:
    """GetReport2Connect (or GetReport2ByEncrypt): ``batch,mobile,time,status,customerUuid|``."""
    if encrypted:
        return Request(PREFIX + "GetReport2ByEncrypt", _encrypted_login(creds, f"userPass={creds.password}"))
    return Request(PREFIX + "GetReport2Connect", _login(creds))


def build_report_legacy(creds: Credentials) -> Request:
    """GetReportConnect (no time): ``batch,mobile,status,customerUuid|``."""
    return Request(PREFIX + "GetReportConnect", _login(creds) | {"batchNumber": ""})


def build_pull_replies(creds: Credentials, *, encrypted: bool = False) -> Request:
    """GetMo2Connect (with the sending number) or GetMo2ByEncrypt."""
    if encrypted:
        return Request(PREFIX + "GetMo2ByEncrypt", _encrypted_login(creds, f"userPass={creds.password}"))
    return Request(PREFIX + "GetMo2Connect", _login(creds))


def build_replies_legacy(creds: Credentials) -> Request:
    """GetMoConnect: ``phone,text,time,customerId`` records."""
    return Request(PREFIX + "GetMoConnect", _login(creds))


def pull_error(body: str) -> CodeInfo | None:
    """The error when a report or reply pull answered a negative code (``-16`` too frequent, ``-3`` bad
    password ...), else None: such a body is the vendor refusing, not a record list."""
    code = pull_error_code(body)
    return None if code is None else classify(code)


def _is_clock_time(field: str) -> bool:
    # A report time has date punctuation; bare digits are batch ids and numbers, never times.
    return not is_digits(field) and parse_china_time(field) is not None


def _parse_report_record(record: str) -> Report | None:
    fields = [f.strip() for f in record.split(",")]
    time_at = next((i for i, f in enumerate(fields) if _is_clock_time(f)), None)
    if time_at is not None:  # GetReport2: batch, mobile, time, status, customerUuid
        head, tail, at = fields[:time_at], fields[time_at + 1 :], parse_china_time(fields[time_at])
    else:  # GetReport: batch, mobile, status, customerUuid; the status is the first non-digit field
        status_at = next((i for i, f in enumerate(fields) if i > 0 and f and not is_digits(f)), None)
        if status_at is None:
            return None
        head, tail, at = fields[:status_at], fields[status_at:], None
    head = [f for f in head if f]  # lenient about empty fields (``batch,,mobile,...``)
    tail_values = [f for f in tail if f]
    if not head or not tail_values:
        return None
    status = tail_values[0]
    status_index = tail.index(status)
    ref = tail[-1] if len(tail) > status_index + 1 else ""
    batch = head[0] if len(head) > 1 else ""
    return Report(mobile=head[-1], status=status, batch_id=batch, at=at, ref=ref)


def parse_reports(body: str) -> list[Report]:
    """GetReportConnect / GetReport2Connect / GetReport2ByEncrypt lists (``|`` between records)."""
    reports = (_parse_report_record(r) for r in split_records(unwrap(body), "|"))
    return [r for r in reports if r is not None]


# GetMo2Connect: phone, text, time, show number, customer id; GetMoConnect and GetMo2ByEncrypt: phone,
# text, time, customer id. Read from the records' ends (dispatcher.vendors.mo): a text holding a
# separator stays one reply's text.
_MO_TAILS = ((mo.CHANNEL, mo.CUSTOMER_ID), (mo.CUSTOMER_ID,))
_MO_PIPES = mo.MoFormat("|,|", re.compile(r"\|;\|?"), _MO_TAILS)
_MO_BARE = mo.MoFormat(",", re.compile(r";"), _MO_TAILS)
# The first record's number is the gateway's, never a person's text: what follows it says the format.
_PIPE_START = re.compile(r"\s*\+?[0-9]{5,20}\s*\|,\|")


def _reply(record: mo.MoRecord) -> Reply:
    channel = record.tail[0] if len(record.tail) == 2 else ""
    ref = record.tail[-1] if record.tail else ""
    return Reply(record.mobile, record.text, at=parse_china_time(record.time), channel=channel, ref=ref)


def parse_replies_with_rejects(body: str, now: datetime | None = None) -> tuple[list[Reply], list[str]]:
    """Replies of a list pulled at ``now``, and the parts of it that are no record."""
    value = unwrap(body)
    if value.startswith("<"):
        return [], [value[:200]] if value else []
    records, rejects = mo.split(value, _MO_PIPES if _PIPE_START.match(value) else _MO_BARE, now)
    return [_reply(r) for r in records], rejects


def parse_replies(body: str, now: datetime | None = None) -> list[Reply]:
    return parse_replies_with_rejects(body, now)[0]


def _push_json(body: bytes, content_type: str) -> Mapping[str, Any]:
    """The pushed JSON object; also accepted as a ``json_str`` form field (the document's parameter name)."""
    text, charset = decode_push(body, content_type)
    text = text.removeprefix("\ufeff")  # a byte order mark
    if "x-www-form-urlencoded" in content_type.lower():
        text = next((v for k, v in form_pairs(text, charset) if k == "json_str"), "")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"trigger push body is not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("list", []), list):
        raise ValueError("trigger push body is not an object with a 'list' array")
    return data


def _push_time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(int(value))
    return parse_china_time(value) if isinstance(value, str) else None


def _text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    return "" if value is None else str(value).strip()


def parse_push_reports_with_rejects(body: bytes, content_type: str) -> tuple[str, list[Report], list[str]]:
    """Report push (types 1 and 2): ``(account, reports, items that are no report)``."""
    data = _push_json(body, content_type)
    reports: list[Report] = []
    rejects: list[str] = []
    for item in data.get("list", []):
        if not isinstance(item, dict) or not _text(item, "phone") or not _text(item, "receive_status"):
            rejects.append(json.dumps(item, ensure_ascii=False)[:200])
            continue
        reports.append(
            Report(
                mobile=_text(item, "phone"),
                status=_text(item, "receive_status"),
                batch_id=_text(item, "sub_no"),
                at=_push_time(item.get("receive_time")),
                ref=_text(item, "customer_uuid"),
            )
        )
    return _text(data, "account"), reports, rejects


def parse_push_reports(body: bytes, content_type: str) -> tuple[str, list[Report]]:
    """Report push (types 1 and 2): ``(account, reports)``."""
    account, reports, _ = parse_push_reports_with_rejects(body, content_type)
    return account, reports


def parse_push_replies_with_rejects(
    body: bytes, content_type: str, now: datetime | None = None
) -> tuple[str, list[Reply], list[str]]:
    """Reply push (types 3 and 4): ``(account, replies, items that are no reply)``; the time is
    ``resp_time`` or ``receive_time``. JSON keeps each field apart: a text cannot become another."""
    data = _push_json(body, content_type)
    replies: list[Reply] = []
    rejects: list[str] = []
    for item in data.get("list", []):
        if not isinstance(item, dict) or not _text(item, "dest_phone"):
            rejects.append(json.dumps(item, ensure_ascii=False)[:200])
            continue
        replies.append(
            Reply(
                mobile=_text(item, "dest_phone"),
                text=str(item.get("resp_content") or ""),
                at=_push_time(item.get("resp_time", item.get("receive_time"))),
                channel=_text(item, "show_num"),
                ref=_text(item, "customer_uuid"),
            )
        )
    return _text(data, "account"), replies, rejects


def parse_push_replies(
    body: bytes, content_type: str, now: datetime | None = None
) -> tuple[str, list[Reply]]:
    """Reply push (types 3 and 4): ``(account, replies)``."""
    account, replies, _ = parse_push_replies_with_rejects(body, content_type, now)
    return account, replies
