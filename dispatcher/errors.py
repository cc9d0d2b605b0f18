"""One exception tree for the whole dispatcher.

Errors of lower layers (httpx, calamine, SQLAlchemy) are translated once, at the edge that
calls them, into one of these. Nothing here ever carries a password in its message.

    DispatcherError
    ├── ConfigError                 bad or missing configuration, unknown account
    ├── InputError                  user input that cannot be used; names file/sheet/row/column/field
    │   ├── SpreadsheetError        unreadable file, unknown sheet, no phone column, bad encoding
    │   ├── TemplateError           unknown placeholder, empty template
    │   └── TextEncodingError       text with characters an encrypted method cannot carry (code page 936)
    ├── VendorError                 anything about talking to a gateway
    │   ├── UnknownVendorError      a vendor id that is not one of the four
    │   ├── UnsupportedMethodError  the vendor has no such method (e.g. entinfo reports)
    │   └── TransportError          the HTTP exchange itself failed
    │       ├── NotSentError        failed before the request left: safe to retry
    │       ├── OutcomeUnknownError sent, but no answer: the vendor may have accepted it
    │       └── HTTPStatusError     the gateway answered with an HTTP error status
    └── StoreError                  the store refused an operation
        └── StateError              a campaign or chunk is not in a state that allows it
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self


class DispatcherError(Exception):
    """Base of every error the dispatcher raises on purpose.

    ``str(exc)`` is English (the CLI, logs, ``--json``). One raised with :meth:`say` also carries its
    message as data (an English msgid and its parameters), which the web app says in the reader's
    language (``dispatcher.labels.describe``)."""

    msgid: str | None = None
    params: dict[str, Any] | None = None

    @classmethod
    def say(cls, msgid: str, **params: Any) -> Self:
        """``cls(msgid % params)``, remembering ``msgid`` and ``params`` (mark ``msgid`` with ``N_``)."""
        exc = cls(msgid % params if params else msgid)
        exc.msgid, exc.params = msgid, params
        return exc


class ConfigError(DispatcherError):
    pass


class InputError(DispatcherError):
    pass


class SpreadsheetError(InputError):
    pass


class TemplateError(InputError):
    pass


class TextEncodingError(InputError):
    """A text has characters that the encrypted methods' charset cannot encode: what the gateways call
    "GB2312" is .NET's code page 936 (GBK), so emoji and characters beyond GBK."""

    def __init__(self, characters: str) -> None:
        self.characters = characters
        super().__init__(
            f"text contains characters that GB2312 (code page 936, GBK) cannot encode: {characters!r}; "
            "use the plain (non-encrypted) method for this message"
        )


class VendorError(DispatcherError):
    pass


class UnknownVendorError(VendorError):
    pass


class UnsupportedMethodError(VendorError):
    pass


class TransportError(VendorError):
    pass


class NotSentError(TransportError):
    """The request never reached the gateway (connect error, pool timeout): retrying is safe."""


class OutcomeUnknownError(TransportError):
    """The request was sent but no answer came back: the gateway may have accepted it."""


class HTTPStatusError(TransportError):
    """The gateway (or a proxy before it) answered an HTTP error status, after the request was sent.

    ``retry_after``: seconds from the ``Retry-After`` header (a 503 or 429 refusing the request), if
    any: only then does a 5xx say the request was not taken.
    """

    def __init__(self, status_code: int, body: str = "", headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status_code
        self.body = body[:200]
        self.headers = dict(headers or {})
        self.retry_after = _retry_after(self.headers)
        super().__init__(f"gateway answered HTTP {status_code}")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110); None if absent
    or unreadable."""
    value = next((v.strip() for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class StoreError(DispatcherError):
    pass


class NotFoundError(StoreError):
    """What was asked for is not in the store (a campaign, an opt-out): the web answers 404."""


class StateError(StoreError):
    pass
