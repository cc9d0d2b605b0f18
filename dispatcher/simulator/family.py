"""What webservice, yunxin and trigger (one vendor family: WebService API v9.9.6, 云信 API v8.3, Trigger
API v1.8) have in common:
login with ``userCode``/``userPass`` or an encrypted ``submitInfo``, the "too frequent" check, balance
queries, the checks a send goes through, and the report and reply formats. Each vendor module supplies
its own codes and methods."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from random import Random

from dispatcher.simulator.gateway import (
    Answer,
    Form,
    china_time,
    decrypt_submit_info,
    error,
    is_digits,
    is_mobile,
    segments,
)
from dispatcher.simulator.state import AccountState, PendingReport, SimState


@dataclass(frozen=True)
class Codes:
    """One vendor's error codes, as its document defines them."""

    bad_login: int
    too_frequent: int  # any request above the account's rate
    balance_too_frequent: int
    balance_interval: float  # seconds between two balance queries
    decrypt_failed: int
    bad_signature: int
    no_balance: int
    bad_number: int  # not a mobile number at all
    blacklisted: int
    keyword: int | None  # None: the document has no keyword code
    keyword_detail: bool  # yunxin names the word: "-6:促销"
    signature_ok: Callable[[str], bool]
    invalid_number: int | None = None  # yunxin: 11 digits that are no mobile number (-17)


@dataclass(frozen=True)
class Ctx:
    state: SimState
    acct: AccountState
    fields: Form  # the form, with the decrypted submitInfo fields merged in
    now: float


Action = Callable[[Ctx], Answer]


@dataclass(frozen=True)
class Method:
    action: Action
    send: bool = False  # subject to faults
    encrypted: bool = False  # credentials in submitInfo
    user_field: str = "usercode"
    password_field: str = "userpass"
    blank_on_bad_login: bool = False  # webservice GetReport: "" for a bad password


@dataclass(frozen=True)
class Vendor:
    name: str
    codes: Codes
    methods: Mapping[str, Method]  # lower-cased method names

    def user_of(self, method: str, form: Form) -> str:
        spec = self.methods.get(method)
        return form.get(spec.user_field if spec else "usercode", "")

    def is_send(self, method: str) -> bool:
        spec = self.methods.get(method)
        return spec is not None and spec.send

    def handle(self, state: SimState, method: str, form: Form, now: float) -> Answer | None:
        """The answer to ``method`` (lower case), or None when the vendor has no such method."""
        spec = self.methods.get(method)
        if spec is None:
            return None
        codes = self.codes
        acct = state.lookup(self.name, form.get(spec.user_field, ""))
        fields = form
        if spec.encrypted:
            if acct is None:
                return error(codes.bad_login)
            decrypted = decrypt_submit_info(form.get("submitinfo", ""), acct.account.password)
            if decrypted is None:
                return error(codes.decrypt_failed)
            fields = {**form, **decrypted}
        if acct is None or not state.password_ok(acct, fields.get(spec.password_field, "")):
            return Answer("") if spec.blank_on_bad_login else error(codes.bad_login)
        if not state.rate_ok(acct, now):
            return error(codes.too_frequent)
        return spec.action(Ctx(state, acct, fields, now))


# -- shared actions -------------------------------------------------------------------------------


def balance(codes: Codes) -> Action:
    def action(ctx: Ctx) -> Answer:
        if not ctx.state.balance_query_ok(ctx.acct, ctx.now, codes.balance_interval):
            return error(codes.balance_too_frequent)
        return Answer(str(ctx.acct.balance))

    return action


def check_numbers(codes: Codes, state: SimState, mobiles: Sequence[str]) -> Answer | None:
    for mobile in mobiles:
        if not is_mobile(mobile):
            if codes.invalid_number is not None and len(mobile) == 11 and is_digits(mobile):
                return error(codes.invalid_number)
            return error(codes.bad_number)
        if mobile in state.blacklist:
            return error(codes.blacklisted)
    return None


def check_texts(codes: Codes, ctx: Ctx, texts: Sequence[str]) -> Answer | None:
    for text in texts:
        if not codes.signature_ok(text):
            return error(codes.bad_signature)
    if codes.keyword is not None:
        for text in texts:
            word = ctx.state.forbidden_word(ctx.acct, text)
            if word is not None:
                return error(codes.keyword, word if codes.keyword_detail else "")
    return None


def charge(codes: Codes, acct: AccountState, texts: Sequence[str]) -> Answer | None:
    cost = sum(segments(text) for text in texts)
    if cost > acct.balance:
        return error(codes.no_balance)
    acct.balance -= cost
    return None


def submit(
    vendor: str,
    codes: Codes,
    ctx: Ctx,
    messages: Sequence[tuple[str, str]],
    *,
    ref: str = "",
    group: bool = False,
    voice: bool = False,
) -> Answer:
    """The checks every send goes through, then acceptance under a new batch id."""
    state = ctx.state
    texts = [text for _, text in messages]
    failure = check_numbers(codes, state, [mobile for mobile, _ in messages])
    if failure is None and not voice:
        failure = check_texts(codes, ctx, texts)
    if failure is None:
        failure = charge(codes, ctx.acct, texts)
    if failure is not None:
        return failure
    batch_id = state.new_batch_id(vendor, ctx.now)
    state.accept(ctx.acct, messages, ctx.now, batch_id=batch_id, ref=ref, group=group, voice=voice)
    return Answer(batch_id)


def single_number(codes: Codes, desno: str) -> str | Answer:
    """Single-number methods: a list of numbers is not a valid number (the bad-number code)."""
    mobile = desno.strip()
    if not mobile or "," in mobile:
        return error(codes.bad_number)
    return mobile


# -- report and reply formats ---------------------------------------------------------------------


def report_record(r: PendingReport, rng: Random, *, with_time: bool, with_ref: bool) -> str:
    """One record of a pulled or pushed report list: ``batch,mobile,status|`` (``batch,mobile,time,status|``
    with time); trigger appends customerUuid. Webservice voice codes have their own record whatever the
    method: ``batch,mobile,talk_s,ring_s,hangup_type|`` (WebService API v9.9.6, 语音验证码状态)."""
    if r.voice:
        ok = r.status == "DELIVRD"
        talk, ring = (rng.randint(5, 40), rng.randint(2, 15)) if ok else (0, rng.randint(20, 45))
        fields = [r.batch_id, r.mobile, str(talk), str(ring), str(rng.choice((3, 4) if ok else (1, 2)))]
    elif with_time:
        fields = [r.batch_id, r.mobile, china_time(r.due), r.status]
    else:
        fields = [r.batch_id, r.mobile, r.status]
    if with_ref:
        fields.append(r.ref)
    return ",".join(fields) + "|"


def reports(*, with_time: bool, with_ref: bool) -> Action:
    """The pulled report list, records as :func:`report_record` writes them."""

    def action(ctx: Ctx) -> Answer:
        rng = ctx.state.rng
        records = ctx.state.pull_reports(ctx.acct, ctx.now)
        return Answer("".join(report_record(r, rng, with_time=with_time, with_ref=with_ref) for r in records))

    return action


def replies(*, show_num: bool, with_ref: bool) -> Action:
    """``phone|,|text|,|time|;|``; GetMo2 adds the show (channel) number; trigger adds customerUuid."""

    def action(ctx: Ctx) -> Answer:
        out = []
        for r in ctx.state.pull_replies(ctx.acct):
            fields = [r.mobile, r.text, china_time(r.at)]
            if show_num:
                fields.append(r.show_num)
            if with_ref:
                fields.append(r.ref)
            out.append("|,|".join(fields) + "|;|")
        return Answer("".join(out))

    return action
