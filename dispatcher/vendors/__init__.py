"""The four gateways. ``VENDORS`` names them; each module is sans-I/O (see ``wire``)."""

from __future__ import annotations

from dispatcher.errors import UnknownVendorError

VENDORS = ("webservice", "yunxin", "trigger", "entinfo")


def check_vendor(name: str) -> str:
    if name not in VENDORS:
        raise UnknownVendorError(f"unknown vendor {name!r}; expected one of: {', '.join(VENDORS)}")
    return name
