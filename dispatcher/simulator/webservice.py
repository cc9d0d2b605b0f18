"""The webservice gateway (WebService API v9.9.6): one number per request.

Paths ``/Services/MsgSend.aspx/<Method>`` (plain) and ``/Services/MsgSend.asmx/<Method>`` (``<string>``).
"""

from __future__ import annotations

import re

from dispatcher.simulator.family import (
    Codes,
    Ctx,
    Method,
    Vendor,
    balance,
    charge,
    replies,
    reports,
    single_number,
    submit,
)
from dispatcher.simulator.gateway import Answer, ends_with_signature, error, is_digits

NAME = "webservice"
CHANNEL_ERROR = -8  # SendMsgExt_Sub with a Channel other than its fixed 543296
VOICE_AMOUNT = -13
VOICE_DIGITS = -14
VOICE_LENGTH = -15
INTERNATIONAL_CHANNEL = "999"  # 国际短信发送: SendMsg with "Channel 999", "短信内容(英文 140 字符)"
_INTERNATIONAL_NUMBER = re.compile(r"\+?[0-9]{7,15}")  # E.164, ASCII digits: up to 15 with the country code

CODES = Codes(
    bad_login=-3,
    too_frequent=-16,
    balance_too_frequent=-16,
    balance_interval=5.0,
    decrypt_failed=-23,
    bad_signature=-5,
    no_balance=-7,
    bad_number=-9,
    blacklisted=-12,
    keyword=None,  # no keyword code in WebService API v9.9.6
    keyword_detail=False,
    signature_ok=ends_with_signature,
)


def _send(ctx: Ctx) -> Answer:
    mobile = single_number(CODES, ctx.fields.get("desno", ""))
    if isinstance(mobile, Answer):
        return mobile
    return submit(NAME, CODES, ctx, [(mobile, ctx.fields.get("msg", ""))])


def _send_plain(ctx: Ctx) -> Answer:
    """SendMsg; with Channel 999 it is the international method: a foreign number and English text,
    which cannot end with a 【签名】 (the -5 in that method's table is the generic table of every method)."""
    if ctx.fields.get("channel", "").strip() != INTERNATIONAL_CHANNEL:
        return _send(ctx)
    mobile = single_number(CODES, ctx.fields.get("desno", ""))
    if isinstance(mobile, Answer):
        return mobile
    if not _INTERNATIONAL_NUMBER.fullmatch(mobile):
        return error(CODES.bad_number)
    if mobile in ctx.state.blacklist:
        return error(CODES.blacklisted)
    text = ctx.fields.get("msg", "")
    failure = charge(CODES, ctx.acct, [text])
    if failure is not None:
        return failure
    batch_id = ctx.state.new_batch_id(NAME, ctx.now)
    ctx.state.accept(ctx.acct, [(mobile, text)], ctx.now, batch_id=batch_id)
    return Answer(batch_id)


def _send_ext(ctx: Ctx) -> Answer:
    if ctx.fields.get("channel", "").strip() != "543296":
        return error(CHANNEL_ERROR)
    return _send(ctx)


def _send_voice(ctx: Ctx) -> Answer:
    mobile = single_number(CODES, ctx.fields.get("desno", ""))
    if isinstance(mobile, Answer):
        return mobile
    code = ctx.fields.get("voicecode", "")
    if not is_digits(code):
        return error(VOICE_DIGITS)
    if len(code) > 6:
        return error(VOICE_LENGTH)
    if not is_digits(ctx.fields.get("amount", "").strip()):
        return error(VOICE_AMOUNT)
    return submit(NAME, CODES, ctx, [(mobile, code)], voice=True)


VENDOR = Vendor(
    NAME,
    CODES,
    {
        "getbalance": Method(balance(CODES)),
        "getbalancebyencrypt": Method(balance(CODES), encrypted=True),
        "sendmsg": Method(_send_plain, send=True),
        "sendmsgbyencrypt": Method(_send, send=True, encrypted=True),
        "sendmsgext_sub": Method(_send_ext, send=True),
        "sendvoicecode": Method(_send_voice, send=True),
        "sendvoicecodewithtemplate": Method(_send_voice, send=True),
        # The document: "no status, or a bad user name or password: an empty string".
        "getreport": Method(reports(with_time=False, with_ref=False), blank_on_bad_login=True),
        "getreport2": Method(reports(with_time=True, with_ref=False)),
        "getreport2byencrypt": Method(reports(with_time=True, with_ref=False), encrypted=True),
        "getmo": Method(replies(show_num=False, with_ref=False)),
        "getmo2": Method(replies(show_num=True, with_ref=False)),
        # The document describes GetMo2ByEncrypt inside GetMo's section, with GetMo's three fields.
        "getmo2byencrypt": Method(replies(show_num=False, with_ref=False), encrypted=True),
    },
)
