"""The simulator's settings: accounts, knobs, limits. Built by the caller, never at import."""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

VENDORS = ("webservice", "yunxin", "trigger", "entinfo")
SEPARATORS = {"yunxin": ("|!|", "|^|"), "trigger": ("|~|", "|-|")}  # personalised (pair, message)
ENTINFO_DEMO_SN = "SDK-DEMO-010-00001"
CONTENT_READINGS = ("plain", "url", "gb2312")


@dataclass(frozen=True)
class Account:
    """One gateway account. ``user`` is userCode / account / sn. The password never shows in ``repr``."""

    vendor: str
    user: str
    password: str = field(repr=False)
    balance: int | None = None  # None: the simulator-wide ``--balance``
    # Personalised packing (yunxin IndividualSm, trigger SendIndividualMsg): between number and text,
    # and between messages. Empty: the vendor's (yunxin "|!|"/"|^|" as its document states; trigger
    # "|~|"/"|-|", the reading of its damaged document that public clients support).
    pair_separator: str = ""
    message_separator: str = ""
    show_num: str = "106900000001"  # the sending (channel) number shown in replies
    keywords: tuple[str, ...] = ()  # forbidden words of this account, on top of the global list
    # entinfo: sends of this account unanswered at once; one more is refused with -18
    # ("上次提交没有等待返回不能继续提交", multithreading off, the vendor's default). 0: no limit.
    max_in_flight: int = 0
    # entinfo: how this gateway reads mdsmssend's ``content`` (each a reading of the vendor's clients):
    # "plain" the form value as is, "url" URL-decoded once more ("+" is a space), "gb2312" the form's
    # bytes in GBK (what .NET calls GB2312).
    content_encoding: str = "plain"

    def __post_init__(self) -> None:
        if self.vendor not in VENDORS:
            raise ValueError(f"unknown vendor {self.vendor!r}; expected one of {', '.join(VENDORS)}")
        if self.content_encoding not in CONTENT_READINGS:
            raise ValueError(f"content_encoding must be one of {', '.join(CONTENT_READINGS)}")
        if not self.user:
            raise ValueError("an account needs a user name")
        pair, message = SEPARATORS.get(self.vendor, ("|!|", "|^|"))
        object.__setattr__(self, "pair_separator", self.pair_separator or pair)
        object.__setattr__(self, "message_separator", self.message_separator or message)


def default_accounts() -> tuple[Account, ...]:
    return (
        Account("webservice", "demo", "demo"),
        Account("yunxin", "demo", "demo"),
        Account("trigger", "demo", "demo"),
        Account("entinfo", ENTINFO_DEMO_SN, "demo"),
    )


@dataclass(frozen=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    latency_ms: float = 0.0
    rate_limit: float = 0.0  # requests per second per account (sliding 1 s window); 0: no limit
    deliver_ratio: float = 0.95
    report_delay: float = 2.0  # seconds from acceptance until the report is available
    fault_rate: float = 0.0  # share of send requests answered 500, reset, or accepted with the answer lost
    seed: int | None = None
    balance: int = 100_000_000  # billing segments per account unless the account sets its own
    push_url: str | None = None  # "{vendor}" and "{account}" in it are replaced
    push_interval: float = 0.2
    keywords: tuple[str, ...] = ("代开发票", "六合彩", "赌博")
    blacklist: tuple[str, ...] = ()
    accounts: tuple[Account, ...] = field(default_factory=default_accounts)
    # Method limits (numbers or messages per request), from the vendors' documents.
    yunxin_max_numbers: int = 500  # SendMsg & co.; above: -10, above 1000: -9
    yunxin_max_individual: int = 1000
    trigger_max_batch: int = 50
    trigger_max_individual: int = 50
    entinfo_max_mobiles: int = 10_000
    entinfo_max_individual: int = 1_000
    entinfo_duplicate_window: float = 600.0  # same sn+mobile+content within it: -20

    def with_accounts(self, *extra: Account) -> SimulatorConfig:
        """These accounts added to (or, same vendor and user, replacing) the current ones."""
        keys = {(a.vendor, a.user) for a in extra}
        kept = tuple(a for a in self.accounts if (a.vendor, a.user) not in keys)
        return replace(self, accounts=kept + tuple(extra))


def parse_account(spec: str) -> Account:
    """``vendor:user:password`` (the password may itself contain ``:``)."""
    parts = spec.split(":", 2)
    if len(parts) != 3:
        raise ValueError("an account is given as vendor:user:password")
    return Account(parts[0].strip(), parts[1].strip(), parts[2])


def load_accounts(path: Path) -> tuple[Account, ...]:
    """Accounts from a TOML file of ``[[account]]`` tables (vendor, user, password, and optional
    balance, pair_separator, message_separator, show_num, keywords)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rows = data.get("account", [])
    if not isinstance(rows, list):
        raise ValueError(f"{path}: [[account]] tables expected")
    accounts = []
    for row in rows:
        row = dict(row)
        if "keywords" in row:
            row["keywords"] = tuple(row["keywords"])
        accounts.append(Account(**row))
    return tuple(accounts)


def config_to_json(config: SimulatorConfig) -> str:
    return json.dumps(asdict(config), ensure_ascii=False)


def config_from_json(text: str) -> SimulatorConfig:
    data: dict[str, Any] = json.loads(text)
    accounts = tuple(
        Account(**{**a, "keywords": tuple(a.get("keywords", ()))}) for a in data.pop("accounts", [])
    )
    for key in ("keywords", "blacklist"):
        if key in data:
            data[key] = tuple(data[key])
    return SimulatorConfig(**data, accounts=accounts)
