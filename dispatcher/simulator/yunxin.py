"""The yunxin gateway (云信 API v8.3): up to 500 numbers per text, or 1000 personalised.

Paths ``/api/MsgSend.asmx/<Method>`` (``<string>``; the document's GET example also uses ``MsgSend.aspx``,
answered plain) and ``/api/IndividualSm.aspx`` (plain).
"""

from __future__ import annotations

from dispatcher.simulator.family import (
    Codes,
    Ctx,
    Method,
    Vendor,
    balance,
    replies,
    reports,
    submit,
)
from dispatcher.simulator.gateway import Answer, error, split_numbers

NAME = "yunxin"
INDIVIDUAL_PAGE = "/individualsm"  # /api/IndividualSm.aspx: a page of its own, not a MsgSend method
TOO_MANY_HARD = -9  # "发送号码一次不能超过 1000 个"
TOO_MANY = -10  # "号码数量大于允许上限": above the method's 500
TOO_FEW = -11
HARD_LIMIT = 1000


def _signature_ok(text: str) -> bool:
    return text.endswith("】")  # "短信内容最后一个字符必须是】"


CODES = Codes(
    bad_login=-3,
    too_frequent=-23,
    balance_too_frequent=-23,
    balance_interval=10.0,
    decrypt_failed=-22,
    bad_signature=-5,
    no_balance=-7,
    bad_number=-16,
    invalid_number=-17,
    blacklisted=-15,  # 系统黑名单: the simulator's blacklist is system-wide
    keyword=-6,
    keyword_detail=True,
    signature_ok=_signature_ok,
)


def _count_error(count: int, limit: int) -> Answer | None:
    if count == 0:
        return error(TOO_FEW)
    if count > HARD_LIMIT:
        return error(TOO_MANY_HARD)
    if count > limit:
        return error(TOO_MANY)
    return None


def _send(ctx: Ctx) -> Answer:
    mobiles = split_numbers(ctx.fields.get("desno", ""))
    failure = _count_error(len(mobiles), ctx.state.config.yunxin_max_numbers)
    if failure is not None:
        return failure
    text = ctx.fields.get("msg", "")
    return submit(NAME, CODES, ctx, [(mobile, text) for mobile in mobiles])


def _send_individual(ctx: Ctx) -> Answer:
    """``msg`` = ``phone|!|text|^|phone|!|text`` (the account's separators)."""
    account = ctx.acct.account
    packed = ctx.fields.get("msg", "")
    messages = []
    for item in packed.split(account.message_separator) if packed else []:
        mobile, sep, text = item.partition(account.pair_separator)
        if not sep:
            return error(CODES.bad_number)  # no separator: the "number" is the whole item
        messages.append((mobile.strip(), text))
    if len(messages) > ctx.state.config.yunxin_max_individual:
        return error(TOO_MANY_HARD)  # -9 above 1000
    failure = _count_error(len(messages), HARD_LIMIT)
    if failure is not None:
        return failure
    return submit(NAME, CODES, ctx, messages, group=True)


def _keywords(ctx: Ctx) -> Answer:
    """``|kw1|kw2|kw3``: the channel's forbidden words."""
    return Answer("".join("|" + word for word in ctx.state.keywords(ctx.acct)))


VENDOR = Vendor(
    NAME,
    CODES,
    {
        "getbalance": Method(balance(CODES)),
        "getbalancebyencrypt": Method(balance(CODES), encrypted=True),
        "sendmsg": Method(_send, send=True),
        "sendmes": Method(_send, send=True),  # the document's GET example spells it so
        "sendmsgbyencrypt": Method(_send, send=True, encrypted=True),
        "sendmesext": Method(_send, send=True),
        INDIVIDUAL_PAGE: Method(_send_individual, send=True, user_field="account", password_field="pwd"),
        "getreport": Method(reports(with_time=False, with_ref=False)),
        "getreport2": Method(reports(with_time=True, with_ref=False)),
        "getreport2byencrypt": Method(reports(with_time=True, with_ref=False), encrypted=True),
        "getmo": Method(replies(show_num=False, with_ref=False)),
        "getmo2": Method(replies(show_num=True, with_ref=False)),
        "getmo2byencrypt": Method(replies(show_num=True, with_ref=False), encrypted=True),
        "getkeywords": Method(_keywords),
    },
)
