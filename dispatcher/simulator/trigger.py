"""The trigger gateway (Trigger API v1.8): ``/winnerrxd/api/trigger/<Command>``, every answer
in the ``<string>`` wrapper. Single sends, batches of up to 50 numbers, up to 50 personalised messages;
``customerUuid`` comes back in every report and reply."""

from __future__ import annotations

from dispatcher.simulator.family import (
    Codes,
    Ctx,
    Method,
    Vendor,
    balance,
    replies,
    reports,
    single_number,
    submit,
)
from dispatcher.simulator.gateway import Answer, error, has_signature, is_digits, split_numbers

NAME = "trigger"
MSG_FORMAT = -18  # "Msg 内容格式错误": an unparsable personalised Msg
COUNT = -19  # "短信数量错误": fewer than 1 or more than the method allows
BAD_PARAMETER = -27  # customerUuid longer than 60 characters
SMS_TYPE = -41
EXT_NUMBER = -44  # ExeNo not 1-16 digits
MAX_UUID = 60

CODES = Codes(
    bad_login=-3,
    too_frequent=-16,
    balance_too_frequent=-16,
    balance_interval=5.0,
    decrypt_failed=-23,
    bad_signature=-5,
    no_balance=-7,
    bad_number=-9,
    blacklisted=-47,  # 系统黑名单
    keyword=-54,  # 短信包含系统敏感信息
    keyword_detail=False,
    signature_ok=has_signature,  # the Trigger API v1.8 does not say where; its clients put it first
)


def _common(ctx: Ctx) -> Answer | None:
    sms_type = ctx.fields.get("smstype", "").strip()
    if sms_type and not is_digits(sms_type):
        return error(SMS_TYPE)
    if len(ctx.fields.get("customeruuid", "")) > MAX_UUID:
        return error(BAD_PARAMETER)
    return None


def _send(ctx: Ctx) -> Answer:
    failure = _common(ctx)
    if failure is not None:
        return failure
    mobile = single_number(CODES, ctx.fields.get("desno", ""))
    if isinstance(mobile, Answer):
        return mobile
    messages = [(mobile, ctx.fields.get("msg", ""))]
    return submit(NAME, CODES, ctx, messages, ref=ctx.fields.get("customeruuid", ""))


def _send_ext(ctx: Ctx) -> Answer:
    ext = ctx.fields.get("exeno", "").strip()
    if ext and not (is_digits(ext) and len(ext) <= 16):
        return error(EXT_NUMBER)
    return _send(ctx)


def _send_batch(ctx: Ctx) -> Answer:
    failure = _common(ctx)
    if failure is not None:
        return failure
    mobiles = split_numbers(ctx.fields.get("desno", ""))
    if not 1 <= len(mobiles) <= ctx.state.config.trigger_max_batch:
        return error(COUNT)
    text = ctx.fields.get("msg", "")
    ref = ctx.fields.get("customeruuid", "")
    return submit(NAME, CODES, ctx, [(m, text) for m in mobiles], ref=ref, group=True)


def _send_individual(ctx: Ctx) -> Answer:
    """``Msg`` = phone, pair separator, text, message separator, ... (per-account separators; the
    document's did not survive: default ``|~|``/``|-|``, the surviving ``~`` and a public client's)."""
    failure = _common(ctx)
    if failure is not None:
        return failure
    account = ctx.acct.account
    packed = ctx.fields.get("msg", "")
    messages = []
    for item in packed.split(account.message_separator) if packed else []:
        mobile, sep, text = item.partition(account.pair_separator)
        if not sep:
            return error(MSG_FORMAT)
        messages.append((mobile.strip(), text))
    if not 1 <= len(messages) <= ctx.state.config.trigger_max_individual:
        return error(COUNT)
    return submit(NAME, CODES, ctx, messages, ref=ctx.fields.get("customeruuid", ""), group=True)


VENDOR = Vendor(
    NAME,
    CODES,
    {
        "getbalanceconnect": Method(balance(CODES)),
        "sendmsg": Method(_send, send=True),
        "sendmsgbyencrypt": Method(_send, send=True, encrypted=True),
        "sendmsgext": Method(_send_ext, send=True),
        "sendbatchmsg": Method(_send_batch, send=True),
        "sendindividualmsg": Method(_send_individual, send=True),
        "getreportconnect": Method(reports(with_time=False, with_ref=True)),
        "getreport2connect": Method(reports(with_time=True, with_ref=True)),
        "getreport2byencrypt": Method(reports(with_time=True, with_ref=True), encrypted=True),
        "getmoconnect": Method(replies(show_num=False, with_ref=True)),
        "getmo2connect": Method(replies(show_num=True, with_ref=True)),
        # Section 2.10 gives GetMo2ByEncrypt the fields phone, text, time, customer id.
        "getmo2byencrypt": Method(replies(show_num=False, with_ref=True), encrypted=True),
    },
)
