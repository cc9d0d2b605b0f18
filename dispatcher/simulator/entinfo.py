"""The entinfo gateway (Entinfo SDK API, 2017): ``mdsmssend`` (one text, up to 10,000 numbers)
and ``mdgxsend`` (aligned number and content lists). Paths ``/webservice.asmx/<method>`` (``<string>``),
``/mdsmssend.ashx`` and ``/mdgxsend.ashx`` (plain). Success returns the client's ``rrid`` when given.
The document has no report or reply method: accepted messages are in the ledger only.

Beyond the document, as the vendor's own demo client calls them: ``balance(sn, pwd)`` (``pwd`` the MD5
form, as for sends) answers the account's balance; ``Register`` and ``UnRegister`` take the *plain*
password in ``pwd`` and answer ``0``. An account may refuse a send while ``max_in_flight`` of its
sends are unanswered (-18), and may read mdsmssend's ``content`` three ways (``content_encoding``)."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import unquote_plus

from dispatcher.simulator.crypto import entinfo_pwd
from dispatcher.simulator.gateway import (
    Answer,
    Form,
    error,
    has_signature,
    is_digits,
    is_mobile,
    segments,
    split_numbers,
)
from dispatcher.simulator.state import AccountState, SimState

NAME = "entinfo"
BAD_LOGIN = -2
NO_BALANCE = -4
DATA_FORMAT = -5  # the document's "数据格式错误": here a bad mobile number or a missing 【signature】
BAD_PARAMETER = -6  # more numbers than the method takes, unknown msgfmt
TOO_FREQUENT = -8  # 流量控制错误
TOO_LONG = -10  # above 1000 single-byte or 500 double-byte characters
BUSY = -18  # 上次提交没有等待返回不能继续提交: the account's previous submission is unanswered
DUPLICATE = -20
SN_EMPTY, SN_FORMAT, PWD_EMPTY, MOBILE_EMPTY, CONTENT_EMPTY = -601, -602, -603, -604, -605
EXT_LENGTH, EXT_DIGITS, STIME_FORMAT, RRID_LENGTH, RRID_DIGITS, CONTENT_ENCODING = (
    -606,
    -607,
    -608,
    -609,
    -610,
    -611,
)
COUNT_MISMATCH, EXT_MISMATCH, STIME_MISMATCH, RRID_MISMATCH = -623, -624, -625, -626

_SN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+){3}")  # XXX-XXX-XXX-XXXXX
_MSGFMT = frozenset({"", "0", "3", "4", "15"})
_SEND_METHODS = frozenset({"mdsmssend", "mdgxsend"})
_REGISTRATION = frozenset({"register", "unregister"})


def _too_long(text: str) -> bool:
    """-10: "单字节不能超过1000个字符，双字节不能超过500个字符", characters as the gateway's strings count
    them (UTF-16 units: an emoji is two)."""
    if text.isascii():
        return len(text) > 1000
    return len(text.encode("utf-16-le")) // 2 > 500


def _check_lists(field: list[str], count: int, mismatch: int) -> Answer | None:
    """ext, stime, rrid: empty, one value, or one per mobile."""
    if len(field) > 1 and len(field) != count:
        return error(mismatch)
    return None


def _check_options(ext: list[str], stime: list[str], rrid: list[str]) -> Answer | None:
    for value in ext:
        if len(value) > 9:
            return error(EXT_LENGTH)
        if value and not is_digits(value):
            return error(EXT_DIGITS)
    for value in stime:
        try:
            datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return error(STIME_FORMAT)
    for value in rrid:
        if len(value) > 18:
            return error(RRID_LENGTH)
        if not is_digits(value):
            return error(RRID_DIGITS)
    return None


def _values(form: Form, key: str) -> list[str]:
    raw = form.get(key, "").strip()
    return [v.strip() for v in raw.split(",")] if raw else []


class Entinfo:
    name = NAME

    def user_of(self, method: str, form: Form) -> str:
        return form.get("sn", "")

    def is_send(self, method: str) -> bool:
        return method in _SEND_METHODS

    def form_encoding(self, state: SimState, method: str, form: Form) -> str:
        """The charset this gateway reads the form in: GBK for an account that reads ``content`` as
        GB2312 (its form's bytes), else UTF-8."""
        acct = state.lookup(NAME, form.get("sn", "").strip())
        reading = acct.account.content_encoding if acct is not None else "plain"
        return "gbk" if method == "mdsmssend" and reading == "gb2312" else "utf-8"

    def handle(self, state: SimState, method: str, form: Form, now: float) -> Answer | None:
        if method not in _SEND_METHODS | _REGISTRATION | {"balance"}:
            return None
        sn, pwd = form.get("sn", "").strip(), form.get("pwd", "").strip()
        if not sn:
            return error(SN_EMPTY)
        if not _SN.fullmatch(sn):
            return error(SN_FORMAT)
        if not pwd:
            return error(PWD_EMPTY)
        acct = state.lookup(NAME, sn)
        if method in _REGISTRATION:
            # The vendor's demo client sends the password itself here (and its MD5 form elsewhere).
            ok = acct is not None and state.password_ok(acct, pwd)
            return Answer("0") if ok else error(BAD_LOGIN)
        if acct is None or pwd != entinfo_pwd(sn, acct.account.password):
            return error(BAD_LOGIN)
        if method == "balance":
            return Answer(str(acct.balance))
        if not state.rate_ok(acct, now):
            return error(TOO_FREQUENT)
        if not state.in_flight_ok(acct, now):
            return error(BUSY)
        if method == "mdsmssend" and acct.account.content_encoding == "url":
            # A gateway that URL-decodes the field once more: "+" becomes a space, "%xx" a byte.
            try:
                form = form | {"content": unquote_plus(form.get("content", ""), errors="strict")}
            except UnicodeDecodeError:
                return error(CONTENT_ENCODING)
        mobiles = split_numbers(form.get("mobile", ""))
        if not mobiles:
            return error(MOBILE_EMPTY)
        if not form.get("content", ""):
            return error(CONTENT_EMPTY)
        if form.get("msgfmt", "").strip() not in _MSGFMT:
            return error(BAD_PARAMETER)
        ext, stime, rrid = _values(form, "ext"), _values(form, "stime"), _values(form, "rrid")
        failure = _check_options(ext, stime, rrid)
        if failure is not None:
            return failure
        if method == "mdsmssend":
            if len(mobiles) > state.config.entinfo_max_mobiles or len(rrid) > 1:
                return error(BAD_PARAMETER)
            return self._submit(state, acct, [(m, form["content"]) for m in mobiles], rrid, now)
        return self._personalised(state, acct, form, mobiles, ext, stime, rrid, now)

    def _personalised(
        self,
        state: SimState,
        acct: AccountState,
        form: Form,
        mobiles: list[str],
        ext: list[str],
        stime: list[str],
        rrid: list[str],
        now: float,
    ) -> Answer:
        """Each content is URL-encoded (UTF-8) then joined by ",": a comma inside a text stays encoded."""
        try:
            contents = [
                unquote_plus(c, encoding="utf-8", errors="strict") for c in form["content"].split(",")
            ]
        except UnicodeDecodeError:
            return error(CONTENT_ENCODING)
        if len(contents) != len(mobiles):
            return error(COUNT_MISMATCH)
        for values, mismatch in ((ext, EXT_MISMATCH), (stime, STIME_MISMATCH), (rrid, RRID_MISMATCH)):
            failure = _check_lists(values, len(mobiles), mismatch)
            if failure is not None:
                return failure
        if len(mobiles) > state.config.entinfo_max_individual:
            return error(BAD_PARAMETER)
        return self._submit(state, acct, list(zip(mobiles, contents, strict=True)), rrid, now)

    @staticmethod
    def _submit(
        state: SimState, acct: AccountState, messages: list[tuple[str, str]], rrid: list[str], now: float
    ) -> Answer:
        sn = acct.account.user
        for mobile, text in messages:
            if not is_mobile(mobile) or not has_signature(text):
                return error(DATA_FORMAT)
            if _too_long(text):
                return error(TOO_LONG)
        keys = [f"{sn}\x00{mobile}\x00{text}" for mobile, text in messages]
        if any(state.is_duplicate(key, now) for key in keys):
            return error(DUPLICATE)
        cost = sum(segments(text) for _, text in messages)
        if cost > acct.balance:
            return error(NO_BALANCE)
        acct.balance -= cost
        answer = ",".join(rrid) if rrid else state.new_batch_id(NAME, now)
        if len(rrid) > 1:  # one rrid per message (mdgxsend)
            for message, own in zip(messages, rrid, strict=True):
                state.accept(acct, [message], now, batch_id=own, ref=own, reports=False)
        else:
            state.accept(acct, messages, now, batch_id=answer, ref=answer, reports=False)
        for key in keys:
            state.remember(key, now)
        return Answer(answer)


VENDOR = Entinfo()
