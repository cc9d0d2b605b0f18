"""Settings: an optional TOML file named by ``DISPATCHER_CONFIG`` plus environment overrides.

Built once when the program starts (``Settings.load()``), never at import. Secrets (account passwords,
push tokens, the cookie key, passwords inside URLs) are kept out of ``repr`` and of every error message;
use :func:`redact_url` before printing a URL.

    database_url = "postgresql+psycopg://dispatcher@db/dispatcher"   # env DISPATCHER_DATABASE_URL
    send_window = "08:00-21:00"

    [accounts.main]
    vendor = "yunxin"
    base_url = "http://yes.itissm.com/api"
    user = "u1"
    password_env = "MAIN_PASSWORD"
    channel = "37"
    rate_limit = 20
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatcher.caps import Cap, parse_caps
from dispatcher.contacts.guard import SheetLimits
from dispatcher.errors import ConfigError
from dispatcher.vendors import (
    CONTENT_ENCODINGS,
    NO_ENCRYPTION,
    VENDORS,
    default_max_in_flight,
    default_separators,
    registry,
)
from dispatcher.vendors.wire import CodeInfo, Credentials, ErrorClass, Separators

DEFAULT_OPTOUT_WORDS = ("T", "TD", "退订", "N", "取消")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DB_FILE = "dispatcher.sqlite3"
BROKER_FILE = "dispatcher-broker.sqlite3"

MIN_PUSH_TOKEN = 16
MIN_PUSH_TOKEN_BITS = 64  # secret_bits(): a guesser's work, not the length
_ALPHABETS = (
    (str.isdigit, 10),
    (str.islower, 26),
    (str.isupper, 26),
    (lambda c: c.isascii() and not c.isalnum(), 33),
)
_ACCOUNT_KEYS = frozenset(
    {
        "vendor",
        "base_url",
        "backup_url",
        "user",
        "password",
        "password_env",
        "channel",
        "rate_limit",
        "encrypted",
        "push_token",
        "pair_separator",
        "message_separator",
        "price_per_segment",
        "same_text_max",
        "keywords",
        "push",
        "service_path",
        "settle_unknown_after",
        "duplicate_window",
        "max_in_flight",
        "extra_codes",
        "content_encoding",
        "frequency_caps",
    }
)
_TOP_KEYS = frozenset(
    {
        "database_url",
        "broker_url",
        "redis_url",
        "send_window",
        "timezone",
        "optout_words",
        "approval_threshold",
        "secret_key",
        "public_url",
        "max_sheet_rows",
        "max_sheet_columns",
        "parse_memory_mb",
        "parse_timeout_s",
        "preview_timeout_s",
        "header_timeout_s",
        "body_timeout_s",
        "body_deadline_s",
        "max_connections_per_client",
        "failover_after",
        "frequency_caps",
        "heartbeat_seconds",
        "log_format",
        "metrics_token",
        "upload_dir",
        "flower_url",
        "accounts",
    }
)
LOG_FORMATS = ("text", "json")
MIN_METRICS_TOKEN = 16
_SERVICE_PATH_RE = re.compile(r"(?:/[A-Za-z0-9._~-]+)+/?")
_WINDOW_RE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")


def validate_window(text: str) -> tuple[int, int]:
    """``"08:00-21:00"`` as minutes since midnight ``(480, 1260)``; ``"00:00-24:00"`` means always.

    A window must not wrap past midnight: marketing messages are never sent at night.
    """
    m = _WINDOW_RE.fullmatch(text)
    if m is None:
        raise ConfigError(f"send window {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
        raise ConfigError(f"send window {text!r} has an impossible time")
    if start >= end:
        raise ConfigError(f"send window {text!r} must start before it ends (no wrap past midnight)")
    return start, end


def format_window(window: tuple[int, int]) -> str:
    """The inverse of :func:`validate_window`."""
    (h1, m1), (h2, m2) = divmod(window[0], 60), divmod(window[1], 60)
    return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


_QUERY_SECRET = re.compile(r"(?i)([?&;](?:password|passwd|pwd|pass)=)[^&;#]*")


def redact_url(url: str) -> str:
    """A database/broker/redis URL with its password replaced by ``***``, safe to print: the user part's
    (up to the last ``@`` before the path: a password may hold one) and a ``password=`` query parameter.
    Several URLs joined by ``;`` (kombu's failover brokers) are each redacted."""
    return ";".join(_redact_one(part) for part in url.split(";"))


def _redact_one(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep:
        # The user part ends at the last "@" before the query: a password may hold "@" and "/" alike
        # (SQLAlchemy reads "app:s3cr/et@db/x" so), and a "/" must not end the search for it.
        before_query = re.split(r"[?#]", rest, maxsplit=1)[0]
        at = before_query.rfind("@")
        if at >= 0:
            userinfo, remainder = rest[:at], rest[at + 1 :]
            user, colon, _password = userinfo.partition(":")
            rest = f"{user}:***@{remainder}" if colon else f"{user}@{remainder}"
        url = f"{scheme}{sep}{rest}"
    return _QUERY_SECRET.sub(r"\1***", url)


def secret_bits(value: str) -> float:
    """A cautious estimate of how many bits a guesser must find to hit ``value``: each character costs
    what its alphabet costs, except one that continues a run of the two before (``aaa``, ``123``,
    ``975``) or repeats a piece seen before (``abcdabcd``): ``1234…9012`` and sixteen ``a`` are worth
    a few bits whatever their length, a random token about its length times six."""
    alphabet = sum(size for belongs, size in _ALPHABETS if any(map(belongs, value)))
    alphabet += 100 if not value.isascii() else 0
    each = math.log2(max(alphabet, 2))
    bits = 0.0
    for i, ch in enumerate(value):
        if i >= 2 and ord(ch) - ord(value[i - 1]) == ord(value[i - 1]) - ord(value[i - 2]):
            continue
        if i >= 3 and value[i - 3 : i + 1] in value[:i]:
            continue
        bits += each
    return bits


@dataclass(frozen=True)
class AccountConfig:
    """One vendor account (``[accounts.NAME]``)."""

    name: str
    vendor: str
    base_url: str
    user: str
    password: str = field(repr=False)
    channel: str = ""
    backup_url: str | None = None
    rate_limit: float = 10.0
    encrypted: bool = False
    push_token: str | None = field(default=None, repr=False)
    # None: the vendor's default (``dispatcher.vendors.DEFAULT_SEPARATORS``).
    pair_separator: str | None = None
    message_separator: str | None = None
    price_per_segment: Decimal | None = None
    same_text_max: int = 1
    keywords: tuple[str, ...] = ()
    push: bool = False
    # Opt-in: seconds after which an unknown request nothing proves taken is sent again once
    # (``dispatcher.unknowns``); None: never by itself.
    settle_unknown_after: float | None = None
    # entinfo: seconds within which it refuses a text it already sent to a number (``-20``), as its
    # contract says; ``settle_unknown_after`` needs it longer (the re-send relies on that refusal).
    duplicate_window: float | None = None
    # The vendor's service path when this account's gateway differs (e.g. "/Services/MsgSend.aspx").
    service_path: str | None = None
    # Requests of this account unanswered at once, across every worker (None: no limit). entinfo's
    # default is 1: its gateway answers -18 to a request sent while another is unanswered.
    max_in_flight: int | None = None
    # Answer codes this account's gateway gives that its vendor's table lacks (or classes otherwise).
    # A plain dict (never changed after loading): an account is pickled to the web's reading child.
    extra_codes: Mapping[int, CodeInfo] = field(default_factory=dict)
    # entinfo: how the text travels in mdsmssend's ``content`` (docs/vendors.md has the evidence).
    content_encoding: str = "plain"
    # Caps of this account's campaigns, beside the global ones; counted over every account.
    frequency_caps: tuple[Cap, ...] = ()

    @property
    def base_urls(self) -> list[str]:
        """The addresses to try, in order: the main one, then the backup (entinfo only)."""
        return [self.base_url] + ([self.backup_url] if self.backup_url else [])

    def credentials(self) -> Credentials:
        return Credentials(user=self.user, password=self.password, channel=self.channel)

    def vendor_module(self) -> registry.VendorModule:
        """The vendor module as this account uses it: its ``extra_codes`` and its ``content_encoding``."""
        return registry.for_account(
            self.vendor, extra_codes=self.extra_codes, content_encoding=self.content_encoding
        )

    def separators(self) -> Separators:
        default = default_separators(self.vendor)
        return Separators(
            pair=self.pair_separator or default.pair, message=self.message_separator or default.message
        )


@dataclass(frozen=True)
class Settings:
    """Everything the program reads from its environment. URLs may hold passwords: not in ``repr``."""

    database_url: str = field(repr=False)
    broker_url: str = field(repr=False)
    redis_url: str = field(default=DEFAULT_REDIS_URL, repr=False)
    send_window: tuple[int, int] = (8 * 60, 21 * 60)
    timezone: str = "Asia/Shanghai"
    optout_words: tuple[str, ...] = DEFAULT_OPTOUT_WORDS
    approval_threshold: int | None = None
    secret_key: str | None = field(default=None, repr=False)
    public_url: str | None = None  # the address users open, e.g. https://sms.example.com
    max_sheet_rows: int = SheetLimits.rows
    max_sheet_columns: int = SheetLimits.columns
    parse_memory_mb: int = 4096  # the web app reads uploads in a child process limited to this
    parse_timeout_s: int = 300  # ... and stops a child reading a list to make a campaign after this
    preview_timeout_s: int = 60  # ... or one reading it for a page (compose, preview) after this
    header_timeout_s: int = 10  # the web server closes a connection whose request headers take longer
    body_timeout_s: int = 30  # ... or whose request body pauses longer than this
    body_deadline_s: int = 600  # ... and ends a request whose whole body takes longer than this
    max_connections_per_client: int = 128  # ... and refuses more connections at once from one address
    accounts: Mapping[str, AccountConfig] = field(default_factory=lambda: MappingProxyType({}))
    # Seconds an account may keep answering "try later" before a campaign with fallbacks leaves it.
    failover_after: float = 300.0
    # Workers and the beat write a heartbeat this often; a worker is dead after 3 missed, the beat after 6.
    heartbeat_seconds: float = 5.0
    log_format: str = "text"  # or "json": one object a line, with campaign, chunk and account ids
    metrics_token: str | None = field(default=None, repr=False)  # GET /metrics from other than loopback
    upload_dir: str | None = None  # uploads shared by every web process (default: the temporary directory)
    flower_url: str | None = field(default=None, repr=False)  # `dispatcher doctor` checks it answers
    # The URL settings left to their one-machine defaults (database_url, broker_url, redis_url; not a
    # redis_url that followed a Redis broker).
    defaulted: frozenset[str] = frozenset()
    # At most N messages to one number in K China calendar days, over every campaign and account.
    frequency_caps: tuple[Cap, ...] = ()

    def caps_for(self, account: str) -> tuple[Cap, ...]:
        """The caps a campaign on ``account`` keeps: the global ones and the account's own."""
        return tuple(sorted(set(self.frequency_caps) | set(self.account(account).frequency_caps)))

    @property
    def counting(self) -> bool:
        """Some cap is configured (globally or on an account): every send is then counted."""
        return bool(self.frequency_caps) or any(a.frequency_caps for a in self.accounts.values())

    @property
    def sheet_limits(self) -> SheetLimits:
        return SheetLimits(self.max_sheet_rows, self.max_sheet_columns)

    @property
    def https(self) -> bool:
        """Served over HTTPS (``public_url`` says so): session cookies get the ``Secure`` flag."""
        return bool(self.public_url and self.public_url.lower().startswith("https://"))

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        """Read ``DISPATCHER_CONFIG`` (if set) and the ``DISPATCHER_*`` overrides from ``env``."""
        env = os.environ if env is None else env
        cwd = Path.cwd() if cwd is None else cwd
        data: dict[str, Any] = {}
        if path := env.get("DISPATCHER_CONFIG"):
            data = _read_toml(Path(path))
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise ConfigError(f"unknown setting(s) in the config file: {', '.join(unknown)}")

        defaulted = set()
        database_url = env.get("DISPATCHER_DATABASE_URL") or _opt_str(data, "database_url")
        if not database_url:
            database_url = f"sqlite:///{cwd / DB_FILE}"
            defaulted.add("database_url")
        broker_url = env.get("DISPATCHER_BROKER_URL") or _opt_str(data, "broker_url")
        if not broker_url:
            broker_url = f"sqla+sqlite:///{_sqlite_dir(database_url, cwd) / BROKER_FILE}"
            defaulted.add("broker_url")
        redis_url = env.get("DISPATCHER_REDIS_URL") or _opt_str(data, "redis_url")
        if not redis_url:
            # A Redis broker is the Redis every host shares: the limiter follows it. A loopback default
            # beside a shared broker gave each host a limiter of its own (both sent at the full rate).
            if broker_url.split("://", 1)[0] in ("redis", "rediss"):
                redis_url = broker_url
            else:
                redis_url = DEFAULT_REDIS_URL
                defaulted.add("redis_url")
        secret_key = env.get("DISPATCHER_SECRET_KEY") or _opt_str(data, "secret_key")
        public_url = env.get("DISPATCHER_PUBLIC_URL") or _opt_str(data, "public_url")
        if public_url is not None and not re.match(r"https?://[^/\s]+", public_url):
            raise ConfigError(
                "setting public_url (DISPATCHER_PUBLIC_URL) must start with https:// or http://"
            )
        sizes: dict[str, Any] = {}
        for key, default in (
            ("max_sheet_rows", SheetLimits.rows),
            ("max_sheet_columns", SheetLimits.columns),
            ("parse_memory_mb", 4096),
            ("parse_timeout_s", 300),
            ("preview_timeout_s", 60),
            ("header_timeout_s", 10),
            ("body_timeout_s", 30),
            ("body_deadline_s", 600),
            ("max_connections_per_client", 128),
        ):
            value = data.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"setting {key} must be a positive integer")
            sizes[key] = value

        timezone = _opt_str(data, "timezone") or "Asia/Shanghai"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"setting timezone: unknown time zone {timezone!r}") from None

        words = data.get("optout_words", list(DEFAULT_OPTOUT_WORDS))
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise ConfigError("setting optout_words must be a list of non-empty strings")

        threshold = data.get("approval_threshold")
        if threshold is not None and (not isinstance(threshold, int) or threshold < 0):
            raise ConfigError("setting approval_threshold must be a non-negative integer")

        failover_after = data.get("failover_after", 300)
        if (
            isinstance(failover_after, bool)
            or not isinstance(failover_after, int | float)
            or failover_after < 0
        ):
            raise ConfigError("setting failover_after must be a non-negative number of seconds")

        operations = _operations(data, env)

        raw_accounts = data.get("accounts", {})
        if not isinstance(raw_accounts, dict):
            raise ConfigError("setting accounts must be a table of [accounts.NAME] tables")
        accounts = {name: _account(name, raw, env) for name, raw in raw_accounts.items()}

        return cls(
            database_url=database_url,
            broker_url=broker_url,
            redis_url=redis_url,
            send_window=validate_window(_opt_str(data, "send_window") or "08:00-21:00"),
            timezone=timezone,
            optout_words=tuple(w.strip() for w in words),
            approval_threshold=threshold,
            secret_key=secret_key,
            public_url=public_url.rstrip("/") if public_url else None,
            accounts=MappingProxyType(accounts),
            failover_after=float(failover_after),
            frequency_caps=parse_caps(data.get("frequency_caps", []), "setting frequency_caps"),
            defaulted=frozenset(defaulted),
            **operations,
            **sizes,
        )

    def account(self, name: str) -> AccountConfig:
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none configured"
            raise ConfigError(f"unknown account {name!r} (known: {known})") from None


def _operations(data: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The settings of heartbeats, logs, metrics, uploads and Flower (``DISPATCHER_*`` win)."""
    raw_every = env.get("DISPATCHER_HEARTBEAT_SECONDS") or data.get("heartbeat_seconds", 5.0)
    try:
        every = float(raw_every)
    except (TypeError, ValueError):
        every = -1.0
    if isinstance(raw_every, bool) or not 0.05 <= every <= 60:
        raise ConfigError("setting heartbeat_seconds must be a number of seconds from 0.05 to 60")
    log_format = env.get("DISPATCHER_LOG_FORMAT") or _opt_str(data, "log_format") or "text"
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"setting log_format must be one of {', '.join(LOG_FORMATS)}")
    token = env.get("DISPATCHER_METRICS_TOKEN") or _opt_str(data, "metrics_token")
    if token is not None and len(token) < MIN_METRICS_TOKEN:
        raise ConfigError(f"setting metrics_token is too short (at least {MIN_METRICS_TOKEN} characters)")
    flower = env.get("DISPATCHER_FLOWER_URL") or _opt_str(data, "flower_url")
    if flower is not None and not re.match(r"https?://[^/\s]+", flower):
        raise ConfigError("setting flower_url must start with https:// or http://")
    return {
        "heartbeat_seconds": every,
        "log_format": log_format,
        "metrics_token": token,
        "upload_dir": env.get("DISPATCHER_UPLOAD_DIR") or _opt_str(data, "upload_dir"),
        "flower_url": flower,
    }


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message quotes a position, not the line's content: safe to show.
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _opt_str(data: Mapping[str, Any], key: str, where: str = "setting") -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} {key} must be a string")
    return value


def _sqlite_dir(database_url: str, cwd: Path) -> Path:
    """The directory of a SQLite database file, so the embedded broker sits next to it."""
    return sqlite_file_dir(database_url, cwd) or cwd


def sqlite_file_dir(database_url: str, cwd: Path | None = None) -> Path | None:
    """The directory of a SQLite database file (relative paths from ``cwd``); None for any other store."""
    prefix, _, path = database_url.partition(":///")
    if prefix.startswith("sqlite") and path and not path.startswith(":memory:"):
        return ((Path.cwd() if cwd is None else cwd) / path.split("?", 1)[0]).parent
    return None


def beat_schedule_path(database_url: str, queue: str, cwd: Path | None = None) -> Path:
    """Where ``dispatcher beat`` keeps its schedule state by default: beside a SQLite store (a
    directory SQLite itself writes to), else in the temporary directory (``TMPDIR``); never a bare
    working directory, which may be read-only. Named after the send queue: one file per deployment."""
    directory = sqlite_file_dir(database_url, cwd) or Path(tempfile.gettempdir())
    return directory / f"{queue}-beat-schedule"


def _account(  # noqa: C901 (one check per field of an account, each with its own message)
    name: str, raw: Any, env: Mapping[str, str]
) -> AccountConfig:
    where = f"account {name!r}:"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} [accounts.{name}] must be a table")
    unknown = sorted(set(raw) - _ACCOUNT_KEYS)
    if unknown:
        raise ConfigError(f"{where} unknown field(s) {', '.join(unknown)}")

    def text(key: str, *, required: bool = False) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                raise ConfigError(f"{where} missing field {key}")
            return None
        if isinstance(value, int) and not isinstance(value, bool) and key == "channel":
            return str(value)  # channel = 37 is as natural as channel = "37"
        if not isinstance(value, str) or (required and not value.strip()):
            raise ConfigError(f"{where} field {key} must be a non-empty string")
        return value

    vendor = text("vendor", required=True) or ""
    if vendor not in VENDORS:
        raise ConfigError(f"{where} field vendor: unknown vendor {vendor!r} (expected {', '.join(VENDORS)})")
    base_url = (text("base_url", required=True) or "").rstrip("/")
    backup_url = text("backup_url")
    if backup_url is not None and vendor != "entinfo":
        raise ConfigError(f"{where} field backup_url: only entinfo has a backup address")

    password = _password(raw, env, where)

    rate = raw.get("rate_limit", 10.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        raise ConfigError(f"{where} field rate_limit must be a positive number of requests per second")

    limits = registry.get(vendor).LIMITS  # the most one same-text request may carry, and the advised
    limit = raw.get("same_text_max", limits.same_text_advised or limits.same_text_numbers)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= limits.same_text_numbers:
        raise ConfigError(f"{where} field same_text_max must be an integer 1..{limits.same_text_numbers}")

    pair, message = text("pair_separator"), text("message_separator")
    resolved = (pair or default_separators(vendor).pair, message or default_separators(vendor).message)
    if resolved[0] == resolved[1] or resolved[0] in resolved[1] or resolved[1] in resolved[0]:
        raise ConfigError(f"{where} fields pair_separator and message_separator must differ")
    if any(c in "0123456789" for c in "".join(resolved)):  # the numbers beside them would form one
        raise ConfigError(f"{where} fields pair_separator and message_separator must hold no digit")

    price: Decimal | None = None
    if (raw_price := raw.get("price_per_segment")) is not None:
        try:
            price = Decimal(str(raw_price))
        except InvalidOperation:
            price = None
        if isinstance(raw_price, bool) or price is None or not price.is_finite() or price < 0:
            raise ConfigError(f"{where} field price_per_segment must be a non-negative number")

    keywords = raw.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k for k in keywords):
        raise ConfigError(f"{where} field keywords must be a list of non-empty strings")

    service_path = text("service_path")
    if service_path is not None and not _SERVICE_PATH_RE.fullmatch(service_path):
        raise ConfigError(f"{where} field service_path must be a path such as /Services/MsgSend.aspx")

    flags = {}
    for key in ("encrypted", "push"):
        flags[key] = raw.get(key, False)
        if not isinstance(flags[key], bool):
            raise ConfigError(f"{where} field {key} must be true or false")
    if flags["encrypted"] and vendor in NO_ENCRYPTION:
        raise ConfigError(f"{where} field encrypted: {vendor} has no encrypted method; remove the field")
    if flags["encrypted"] and "&" in password:
        # The encrypted plaintext is "userPass=<password>&DesNo=...", unescaped: the gateway would read
        # the password up to its '&' and refuse everything as a wrong password.
        raise ConfigError(
            f"{where} field encrypted: the password contains '&', which the encrypted methods cannot carry; "
            "change the password or remove the field"
        )

    settle_after = _duration(raw.get("settle_unknown_after"), f"{where} field settle_unknown_after")
    duplicate_window = _duration(raw.get("duplicate_window"), f"{where} field duplicate_window")
    if duplicate_window is not None and vendor != "entinfo":
        raise ConfigError(
            f"{where} field duplicate_window: only entinfo refuses duplicates; remove the field"
        )
    if settle_after is not None and flags["push"]:
        # Pushed reports come when the vendor sends them: nothing shows that the path works now.
        raise ConfigError(
            f"{where} field settle_unknown_after: needs reports pulled (push = true cannot show that "
            "no report is on the way); remove one of the fields"
        )
    if settle_after is not None and vendor == "entinfo" and (duplicate_window or 0) <= settle_after:
        # The re-send is safe only while entinfo still refuses a text it already sent to a number.
        raise ConfigError(
            f"{where} field settle_unknown_after: entinfo's re-send is safe only inside its duplicate "
            'window: set duplicate_window (as your entinfo contract says, e.g. "24h") longer than '
            "settle_unknown_after plus the chunk lease"
        )

    max_in_flight = raw.get("max_in_flight", default_max_in_flight(vendor))
    if max_in_flight is not None and (
        isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 0
    ):
        raise ConfigError(f"{where} field max_in_flight must be a whole number (0: no limit)")

    content_encoding = text("content_encoding") or "plain"
    if "content_encoding" in raw and vendor != "entinfo":
        raise ConfigError(f"{where} field content_encoding: only entinfo has it; remove the field")
    if content_encoding not in CONTENT_ENCODINGS:
        raise ConfigError(f"{where} field content_encoding must be one of: {', '.join(CONTENT_ENCODINGS)}")

    push_token = text("push_token")
    if (
        push_token is not None
        and len(push_token) >= MIN_PUSH_TOKEN
        and secret_bits(push_token) < MIN_PUSH_TOKEN_BITS
    ):
        raise ConfigError(
            f"{where} field push_token is guessable (runs or repeats of characters); use a random one, "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )
    if push_token is not None and len(push_token) < MIN_PUSH_TOKEN:
        # The receivers' only credential, in reach of anyone on the internet: made-up replies could
        # opt out any number. A vendor's push URL holds a long one as easily as a short one.
        raise ConfigError(
            f"{where} field push_token is too short ({len(push_token)} characters, at least "
            f"{MIN_PUSH_TOKEN}); e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))'"
        )

    return AccountConfig(
        name=name,
        vendor=vendor,
        base_url=base_url,
        backup_url=backup_url.rstrip("/") if backup_url else None,
        user=text("user", required=True) or "",
        password=password,
        channel=text("channel") or "",
        rate_limit=float(rate),
        encrypted=flags["encrypted"],
        push_token=push_token,
        pair_separator=pair,
        message_separator=message,
        price_per_segment=price,
        same_text_max=limit,
        keywords=tuple(keywords),
        push=flags["push"],
        service_path=service_path.rstrip("/") if service_path else None,
        max_in_flight=max_in_flight or None,
        extra_codes=_extra_codes(raw.get("extra_codes", {}), where),
        content_encoding=content_encoding,
        settle_unknown_after=settle_after,
        duplicate_window=duplicate_window,
        frequency_caps=parse_caps(raw.get("frequency_caps", []), f"{where} field frequency_caps"),
    )


_CODE_KEY_RE = re.compile(r"-[0-9]{1,9}")


def _extra_codes(raw: Any, where: str) -> dict[int, CodeInfo]:
    """``[accounts.NAME.extra_codes]``: ``"-30" = "bad_content"`` or ``"-30" = ["bad_content", "中文",
    "English"]``; a code the vendor's table has is classed as the account says."""
    if not isinstance(raw, dict):
        raise ConfigError(f'{where} field extra_codes must be a table such as {{"-30" = "bad_content"}}')
    classes = ", ".join(c.value for c in ErrorClass if c is not ErrorClass.UNKNOWN)
    codes: dict[int, CodeInfo] = {}
    for key, value in raw.items():
        row = [value] if isinstance(value, str) else value
        if not _CODE_KEY_RE.fullmatch(str(key)):
            raise ConfigError(f'{where} field extra_codes: {key!r} is not a negative code such as "-30"')
        if not isinstance(row, list) or not 1 <= len(row) <= 3 or not all(isinstance(v, str) for v in row):
            raise ConfigError(
                f'{where} field extra_codes, code {key}: give a class, or ["class", "中文", "English"]'
            )
        if row[0] not in classes.split(", "):
            raise ConfigError(f"{where} field extra_codes, code {key}: class must be one of: {classes}")
        zh = row[1] if len(row) > 1 else "账户配置的代码"
        en = (
            row[2]
            if len(row) > 2
            else (row[1] if len(row) > 1 else "a code from the account's configuration")
        )
        codes[int(key)] = CodeInfo(int(key), ErrorClass(row[0]), zh, en)
    return codes


_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(value: Any, what: str) -> float | None:
    """A duration: ``"30m"``, ``"2h"``, ``"90s"``, ``"1d"`` or a number of seconds; None when unset."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f'{what} must be a positive duration such as "30m", "2h" or "90s"')
    return float(match.group(1)) * _UNITS[match.group(2)]


def _password(raw: Mapping[str, Any], env: Mapping[str, str], where: str) -> str:
    # Messages name the field or the variable, never the value.
    if "password" in raw and "password_env" in raw:
        raise ConfigError(f"{where} give either field password or field password_env, not both")
    if "password_env" in raw:
        var = raw["password_env"]
        if not isinstance(var, str) or not var:
            raise ConfigError(f"{where} field password_env must name an environment variable")
        value = env.get(var)
        if not value:
            raise ConfigError(f"{where} field password_env: environment variable {var} is not set")
        return value
    value = raw.get("password")
    if value is None:
        raise ConfigError(f"{where} missing field password (or password_env)")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} field password must be a non-empty string")
    return value
