"""The four vendor modules by id, and what a vendor's error code means.

Modules are imported when first asked for, so a command that needs one vendor does not import all.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, cast

from dispatcher.vendors import check_vendor
from dispatcher.vendors.wire import (
    Answer,
    CodeInfo,
    Credentials,
    Limits,
    Reply,
    Report,
    Request,
    Separators,
    VendorMethods,
)


class VendorModule(Protocol):
    """The contract every ``dispatcher/vendors/<name>.py`` fulfils (workers stay vendor-generic)."""

    NAME: str
    DOCUMENT: str  # the title and version of the vendor's document
    ENCODING: str  # how texts and secrets travel, in a sentence or two (docs/vendors.md)
    SERVICE_PATH: str  # where the vendor's methods are POSTed; an account may override it
    LIMITS: Limits
    BALANCE_INTERVAL_S: float  # seconds between balance queries the vendor tolerates
    CODES: dict[int, CodeInfo]
    METHODS: list[tuple[str, str, str]]  # (method, what it does, its limit): ``dispatcher vendors``
    SEND_METHODS: VendorMethods  # what the chunker plans with
    ENCRYPTED_SEND_METHODS: VendorMethods | None  # for an encrypted account, when not SEND_METHODS

    def classify(self, code: int) -> CodeInfo: ...

    def build_send(
        self,
        creds: Credentials,
        mobiles: Sequence[str],
        text: str,
        *,
        ref: str | None = None,
        ext: str | None = None,
        encrypted: bool = False,
    ) -> Request: ...

    def build_personalised(
        self,
        creds: Credentials,
        messages: Sequence[tuple[str, str]],
        *,
        separators: Separators = ...,
        ref: str | None = None,
    ) -> Request: ...

    def parse_send(self, body: str) -> Answer: ...

    def build_balance(self, creds: Credentials, *, encrypted: bool = False) -> Request: ...

    def parse_balance(self, body: str) -> Answer: ...

    def build_pull_reports(self, creds: Credentials, *, encrypted: bool = False) -> Request: ...

    def parse_reports(self, body: str) -> list[Report]: ...

    def build_pull_replies(self, creds: Credentials, *, encrypted: bool = False) -> Request: ...

    def parse_replies(self, body: str, now: datetime | None = None) -> list[Reply]: ...

    def parse_replies_with_rejects(
        self, body: str, now: datetime | None = None
    ) -> tuple[list[Reply], list[str]]: ...

    def pull_error(self, body: str) -> CodeInfo | None: ...

    def parse_push_reports(self, body: bytes, content_type: str) -> tuple[str, list[Report]]: ...

    def parse_push_replies(
        self, body: bytes, content_type: str, now: datetime | None = None
    ) -> tuple[str, list[Reply]]: ...

    def parse_push_reports_with_rejects(
        self, body: bytes, content_type: str
    ) -> tuple[str, list[Report], list[str]]: ...

    def parse_push_replies_with_rejects(
        self, body: bytes, content_type: str, now: datetime | None = None
    ) -> tuple[str, list[Reply], list[str]]: ...


if TYPE_CHECKING:  # mypy proves every vendor module fulfils the contract; nothing imported at run time
    from dispatcher.vendors import entinfo, trigger, webservice, yunxin

    _CHECKED: tuple[VendorModule, ...] = (webservice, yunxin, trigger, entinfo)


def get(vendor: str) -> VendorModule:
    """The module of ``vendor``; ``UnknownVendorError`` naming the four for anything else."""
    name = check_vendor(vendor.strip().lower())
    return cast(VendorModule, importlib.import_module(f"dispatcher.vendors.{name}"))


class _AccountVendor:
    """A vendor module as one account uses it: codes its configuration adds (``extra_codes``) come
    before the vendor's table, and the account's send options (entinfo ``content_encoding``) are given
    to every ``build_send``. Everything else is the module's."""

    def __init__(self, module: VendorModule, extra: Mapping[int, CodeInfo], send_options: dict[str, Any]):
        self._module = module
        self._extra = MappingProxyType(dict(extra))
        self.CODES = {**module.CODES, **extra}
        if send_options:
            self.build_send = partial(module.build_send, **send_options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def classify(self, code: int) -> CodeInfo:
        return self._extra.get(code) or self._module.classify(code)

    def pull_error(self, body: str) -> CodeInfo | None:
        info = self._module.pull_error(body)
        return None if info is None else self.classify(info.code)


def for_account(
    vendor: str,
    *,
    extra_codes: Mapping[int, CodeInfo] = MappingProxyType({}),
    content_encoding: str = "plain",
) -> VendorModule:
    """``vendor``'s module as an account with these settings uses it (the module itself when they are
    the defaults)."""
    module = get(vendor)
    options: dict[str, Any] = {} if content_encoding == "plain" else {"content_encoding": content_encoding}
    if not extra_codes and not options:
        return module
    return cast(VendorModule, _AccountVendor(module, extra_codes, options))


_CODE_TEXT_RE = re.compile(r"\s*([+-]?[0-9]+)\s*(?::(.*))?", re.S)


def explain(vendor: str, code_text: str) -> dict[str, str | int]:
    """What ``code_text`` (``-6`` or ``-6:促销``) means at ``vendor``, as a JSON-ready dict.

    Every code of every gateway is negative, so ``16`` is read as ``-16`` (a shell user may drop the
    sign to keep it from looking like an option). ``ValueError`` if the text is not a code.
    """
    module = get(vendor)
    m = _CODE_TEXT_RE.fullmatch(code_text)
    if m is None:
        raise ValueError(f"not an error code: {code_text!r} (expected e.g. -6 or -6:detail)")
    code = -abs(int(m.group(1)))
    info = module.classify(code)
    result: dict[str, str | int] = {
        "vendor": module.NAME,
        "code": code,
        "class": str(info.error_class),
        "meaning": info.meaning,
        "meaning_en": info.meaning_en,
    }
    if m.group(2) is not None and m.group(2).strip():
        result["detail"] = m.group(2).strip()
    return result
