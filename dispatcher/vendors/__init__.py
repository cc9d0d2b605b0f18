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


def default_separators(vendor: str) -> Separators:
    """The personalised separators of ``vendor`` when an account does not set its own."""
    return DEFAULT_SEPARATORS.get(vendor, Separators())


def check_vendor(name: str) -> str:
    if name not in VENDORS:
        raise UnknownVendorError(f"unknown vendor {name!r}; expected one of: {', '.join(VENDORS)}")
    return name
