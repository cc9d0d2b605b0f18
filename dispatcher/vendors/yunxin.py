"""The ``yunxin`` gateway (云信 API v8.3): sans-I/O requests and parsers.

Same text to up to 500 numbers (``DesNo`` joined by ``,``), personalised up to 1000 messages through
``/api/IndividualSm.aspx`` (a page of its own, ``.aspx`` in the document and its example); every
other method under ``/api/MsgSend.asmx/<Method>`` (:data:`SERVICE_PATH`, ASP.NET's web-service endpoint,
where the document's SOAP example and public clients post). An account whose gateway wants another path
sets ``service_path``. Every send needs the
account's channel number (``Credentials.channel``), which yunxin assigns per account.

Report, reply and push formats are the same as webservice's (same vendor family): the parsers are
webservice's, re-exported here under the contract names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dispatcher.errors import ConfigError, VendorError
from dispatcher.vendors import DEFAULT_SEPARATORS
from dispatcher.vendors import webservice as _family
from dispatcher.vendors.crypto import des_encrypt
from dispatcher.vendors.wire import (
    Answer,
    AnswerKind,
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
    load_tables,
    packed_conflict,
    parse_send_answer,
    parse_value_answer,
    pull_error_code,
)

NAME = "yunxin"
DOCUMENT = "云信 API v8.3"  # the vendor's document this module implements
LIMITS = Limits(same_text_numbers=500, personalised_messages=1000)
SEND_METHODS = VendorMethods(same_text="SendMsg", personalised="IndividualSm", single="SendMsg")
ENCRYPTED_SEND_METHODS: VendorMethods | None = None  # sendMsgByEncrypt takes the same numbers as SendMsg
BALANCE_INTERVAL_S = 10.0  # GetBalance at most once per 10 s, else -23
ENCODING = (
    "Form fields in UTF-8. Encrypted accounts: `submitInfo` is DES over the whole query, its text in GBK "
    "(code page 936, what the document calls GB2312); a character outside GBK is refused before sending."
)
SEPARATORS = DEFAULT_SEPARATORS[NAME]  # |!| and |^|, as the document states

SERVICE_PATH = "/api/MsgSend.asmx"
PERSONALISED_PATH = "/api/IndividualSm.aspx"

CODES, METHODS = load_tables(NAME)  # yunxin.toml: every answer code with its class, and the methods


def classify(code: int) -> CodeInfo:
    return classify_code(CODES, code)


# ---------------------------------------------------------------------------------------------- sending


def _channel(creds: Credentials) -> str:
    if not creds.channel:
        raise ConfigError(f"{NAME} account {creds.user!r} has no channel number (通道号) configured")
    return creds.channel


def _login(creds: Credentials) -> dict[str, str]:
    return {"userCode": creds.user, "userPass": creds.password}


def _encrypted_login(creds: Credentials, plaintext: str) -> dict[str, str]:
    return {"userCode": creds.user, "submitInfo": des_encrypt(plaintext, creds.password)}


def _des_no(mobiles: Sequence[str]) -> str:
    numbers = [m.strip() for m in mobiles]
    if not numbers:
        raise ValueError("no mobile number to send to")
    if len(numbers) > LIMITS.same_text_numbers:
        raise ValueError(
            f"{NAME} takes at most {LIMITS.same_text_numbers} numbers per request, got {len(numbers)}"
        )
    if any(not m or "," in m for m in numbers):
        raise ValueError("a mobile number is empty or contains ','")
    return ",".join(numbers)


def build_send(
    creds: Credentials,
    mobiles: Sequence[str],
    text: str,
    *,
    ref: str | None = None,
    ext: str | None = None,
    encrypted: bool = False,
) -> Request:
    """Same text to 1-500 numbers: ``SendMsg``, ``sendMesExt`` (ext) or ``sendMsgByEncrypt``.

    ``ext=""`` is allowed (the document: "扩展号，可为空"). The document has no encrypted extension method.
    ``ref`` only rides on the Request: yunxin has no client reference field.
    """
    des_no = _des_no(mobiles)
    channel = _channel(creds)
    if ext is not None and encrypted:
        raise ValueError(f"{NAME} has no encrypted send with an extension number")
    if ext is not None:
        exe_no = _family.check_ext(ext) if ext else ""
        form = {**_login(creds), "DesNo": des_no, "Msg": text, "Channel": channel, "ExeNo": exe_no}
        return Request(f"{SERVICE_PATH}/sendMesExt", form, ref=ref)
    if encrypted:
        check_encryptable(text + des_no)
        plain = f"userPass={creds.password}&DesNo={des_no}&Msg={text}&Channel={channel}"
        return Request(f"{SERVICE_PATH}/sendMsgByEncrypt", _encrypted_login(creds, plain), ref=ref)
    form = {**_login(creds), "DesNo": des_no, "Msg": text, "Channel": channel}
    return Request(f"{SERVICE_PATH}/SendMsg", form, ref=ref)


def build_personalised(
    creds: Credentials,
    messages: Sequence[tuple[str, str]],
    *,
    separators: Separators = SEPARATORS,
    ref: str | None = None,
) -> Request:
    """``IndividualSm.aspx``: ``msg`` = ``phone|!|text|^|phone|!|text`` with the account's separators.

    Field names ``account, pwd, channel, msg`` as in the document's example URL (its table writes
    ``Channel``; the example writes ``channel``). ``pwd`` is the plain password.
    """
    if not messages:
        raise ValueError("no message to send")
    if len(messages) > LIMITS.personalised_messages:
        raise ValueError(
            f"{NAME} takes at most {LIMITS.personalised_messages} personalised messages (-9 above)"
        )
    pairs = [(mobile.strip(), text) for mobile, text in messages]
    if any(not number for number, _ in pairs):
        raise ValueError("empty mobile number in a personalised message")
    if (number := packed_conflict(pairs, separators)) is not None:
        raise ValueError(f"message for {number} forms a separator as packed: send it on its own")
    packed = [f"{number}{separators.pair}{text}" for number, text in pairs]
    form = {
        "account": creds.user,
        "pwd": creds.password,
        "channel": _channel(creds),
        "msg": separators.message.join(packed),
    }
    return Request(PERSONALISED_PATH, form, ref=ref)


def parse_send(body: str) -> Answer:
    """Batch id, or ``-code`` (``-6:促销`` puts the keyword in ``Answer.detail``)."""
    return parse_send_answer(body)


# ------------------------------------------------------------------------------- balance, pulls, words


def build_balance(creds: Credentials, *, encrypted: bool = False) -> Request:
    if encrypted:
        return Request(
            f"{SERVICE_PATH}/GetBalanceByEncrypt", _encrypted_login(creds, f"userPass={creds.password}")
        )
    return Request(f"{SERVICE_PATH}/GetBalance", _login(creds))


def parse_balance(body: str) -> Answer:
    return _family.parse_balance(body)


def build_pull_reports(creds: Credentials, *, encrypted: bool = False) -> Request:
    """``GetReport2`` (with operator time) or ``GetReport2ByEncrypt``; consumes up to 500 records."""
    if encrypted:
        return Request(
            f"{SERVICE_PATH}/GetReport2ByEncrypt", _encrypted_login(creds, f"userPass={creds.password}")
        )
    return Request(f"{SERVICE_PATH}/GetReport2", _login(creds))


def build_report_legacy(creds: Credentials, *, batch_number: str = "") -> Request:
    """``GetReport`` without time; ``batchNumber`` is "备用参数，留空即可" (reserved, leave empty)."""
    return Request(f"{SERVICE_PATH}/GetReport", {**_login(creds), "batchNumber": batch_number})


def build_pull_replies(creds: Credentials, *, encrypted: bool = False) -> Request:
    """``GetMo2`` (with channel number) or ``GetMo2ByEncrypt``."""
    if encrypted:
        return Request(
            f"{SERVICE_PATH}/GetMo2ByEncrypt", _encrypted_login(creds, f"userPass={creds.password}")
        )
    return Request(f"{SERVICE_PATH}/GetMo2", _login(creds))


def build_replies_legacy(creds: Credentials) -> Request:
    """``GetMo``: replies without the channel number."""
    return Request(f"{SERVICE_PATH}/GetMo", _login(creds))


def pull_error(body: str) -> CodeInfo | None:
    """The error when a pull answered a bare negative code (``-3``), else None."""
    code = pull_error_code(body)
    return None if code is None else classify(code)


def parse_reports(body: str) -> list[Report]:
    """``GetReport``/``GetReport2`` records (lenient); ``""`` = none."""
    return _family.parse_reports(body)


def parse_replies(body: str, now: datetime | None = None) -> list[Reply]:
    """``GetMo``/``GetMo2`` records separated by ``|;|``; ``""`` = none."""
    return _family.parse_replies(body, now)


def parse_replies_with_rejects(body: str, now: datetime | None = None) -> tuple[list[Reply], list[str]]:
    return _family.parse_replies_with_rejects(body, now)


def parse_push_reports(body: bytes, content_type: str) -> tuple[str, list[Report]]:
    """Pushed reports: POST form ``account=XXX&GetReport=<GetReport format>``."""
    return _family.parse_push_reports(body, content_type)


def parse_push_reports_with_rejects(body: bytes, content_type: str) -> tuple[str, list[Report], list[str]]:
    return _family.parse_push_reports_with_rejects(body, content_type)


def parse_push_replies(
    body: bytes, content_type: str, now: datetime | None = None
) -> tuple[str, list[Reply]]:
    """Pushed replies: the document says "推送的内容格式和本方法的返回值相同" without naming the form field;
    read as the report push with the MO list, ``account=XXX&GetMo=<GetMo format>``."""
    return _family.parse_push_replies(body, content_type, now)


def parse_push_replies_with_rejects(
    body: bytes, content_type: str, now: datetime | None = None
) -> tuple[str, list[Reply], list[str]]:
    return _family.parse_push_replies_with_rejects(body, content_type, now)


def build_keywords(creds: Credentials) -> Request:
    """``GetKeyWords``: the channel's forbidden words (a text containing one is refused with -6)."""
    return Request(f"{SERVICE_PATH}/GetKeyWords", {**_login(creds), "Channel": _channel(creds)})


def parse_keywords(body: str) -> list[str]:
    """``|kw1|kw2|...`` as a list (``""`` = none). An error code or an unexpected answer raises
    ``VendorError``: an empty list would wrongly let every text through."""
    answer = parse_value_answer(body)
    if answer.kind is AnswerKind.ERROR and answer.code is not None:
        info = classify(answer.code)
        raise VendorError(f"{NAME} GetKeyWords answered {info.code}: {info.meaning_en}")
    if answer.value.startswith("<"):  # an HTML error page
        raise VendorError(f"{NAME} GetKeyWords gave an unexpected answer: {answer.value[:80]!r}")
    return [word.strip() for word in answer.value.split("|") if word.strip()]
