"""The four gateways. ``VENDORS`` names them; each module is sans-I/O (see ``wire``)."""

from __future__ import annotations

from dispatcher.errors import UnknownVendorError
from dispatcher.vendors.wire import Separators

VENDORS = ("webservice", "yunxin", "trigger", "entinfo")
# Vendors whose document has no report (or reply) method: their recipients end at ``accepted``.
NO_REPORTS = ("entinfo",)
# Vendors whose document has no encrypted method (the Entinfo SDK API, 2017): no account may be encrypted.
NO_ENCRYPTION = ("entinfo",)

# The personalised separators an account uses unless it sets ``pair_separator``/``message_separator``.
# yunxin: its document states them (``|!|`` and ``|^|``, with an example). trigger: its document lost
# them; see the reading in ``dispatcher.vendors.trigger`` and confirm them with the vendor.
DEFAULT_SEPARATORS: dict[str, Separators] = {
    "yunxin": Separators(pair="|!|", message="|^|"),
    "trigger": Separators(pair="|~|", message="|-|"),
}
SEPARATORS_TO_CONFIRM = frozenset({"trigger"})  # vendors whose document does not settle them

# Requests of one account unanswered at once, unless the account sets ``max_in_flight``; a vendor not
# named here has no limit. entinfo's gateways answer -18 ("上次提交没有等待返回不能继续提交") to a request
# sent while another of the account is unanswered: multithreading is off unless the vendor enables it.
DEFAULT_MAX_IN_FLIGHT: dict[str, int] = {"entinfo": 1}
# How an entinfo account's mdsmssend carries its text (``content_encoding``); the first is the default.
CONTENT_ENCODINGS = ("plain", "url", "gb2312")
# Vendors whose documents require the 【signature】 at the end of the text (yunxin and webservice say so,
# and refuse a text without it); the others' public clients put it first as often.
SIGNATURE_LAST = frozenset({"webservice", "yunxin"})


def default_max_in_flight(vendor: str) -> int | None:
    return DEFAULT_MAX_IN_FLIGHT.get(vendor)


def default_separators(vendor: str) -> Separators:
    """The personalised separators of ``vendor`` when an account does not set its own."""
    return DEFAULT_SEPARATORS.get(vendor, Separators())


def check_vendor(name: str) -> str:
    if name not in VENDORS:
        raise UnknownVendorError(f"unknown vendor {name!r}; expected one of: {', '.join(VENDORS)}")
    return name
