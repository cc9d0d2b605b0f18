"""Everything the simulator remembers, in memory: accounts, balances, rate windows, pending reports
and replies, and the ledger of what it accepted and rejected. Pure logic: the caller passes ``now``."""

from __future__ import annotations

import hashlib
import hmac
import random
import unicodedata
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher.simulator.config import Account, SimulatorConfig

# Realistic operator failure codes for undelivered messages.
FAILURE_STATUSES = ("UNDELIVRD", "EXPIRED", "REJECTD", "MK:0001", "DB:0140", "MN:0001", "ID:0076")
PULL_LIMIT = 500  # records per report/reply pull, as every document says
_BATCH_PREFIX = {"webservice": "23", "yunxin": "21", "trigger": "22", "entinfo": "2"}


@dataclass(slots=True)
class PendingReport:
    due: float
    batch_id: str
    mobile: str
    status: str
    ref: str  # trigger customerUuid
    group: bool  # trigger push "type": 2 for batch/personalised sends, 1 for single ones
    voice: bool  # webservice voice codes report talk/ring seconds and hang-up type instead


@dataclass(slots=True)
class PendingReply:
    at: float
    mobile: str
    text: str
    show_num: str
    ref: str
    group: bool


class AccountState:
    __slots__ = (
        "account",
        "balance",
        "busy",
        "last_balance_query",
        "last_ref",
        "replies",
        "reports",
        "window",
    )

    def __init__(self, account: Account, balance: int) -> None:
        self.account = account
        self.balance = balance
        self.window: deque[float] = deque()  # times of the requests admitted in the last second
        self.last_balance_query = float("-inf")
        self.reports: deque[PendingReport] = deque()  # due times ascend: the delay is constant
        self.replies: deque[PendingReply] = deque()
        self.last_ref: dict[str, tuple[str, bool]] = {}  # mobile -> (customerUuid, group) of its last message
        self.busy: list[float] = []  # when each request being answered now will have its answer


class SimState:
    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Back to the start: ledger, queues, balances, rate windows and the random sequence."""
        config = self.config
        self.rng = random.Random(config.seed)
        self.accounts = {
            (a.vendor, a.user): AccountState(a, config.balance if a.balance is None else a.balance)
            for a in config.accounts
        }
        # Tuples, not dicts, on the hot path; ledger() names the fields.
        self.accepted: list[tuple[str, str, str, str, str, str, float, str]] = []
        self.rejected: list[tuple[str, str, int, str, float]] = []
        self.faults: list[tuple[str, str, str, str, float]] = []
        self.blacklist = frozenset(config.blacklist)
        self._recent: dict[bytes, float] = {}  # entinfo duplicate detection
        self._counter = 0

    # -- accounts ---------------------------------------------------------------------------------

    def lookup(self, vendor: str, user: str) -> AccountState | None:
        return self.accounts.get((vendor, user))

    @staticmethod
    def password_ok(acct: AccountState, password: str) -> bool:
        return hmac.compare_digest(acct.account.password.encode(), password.encode())

    def rate_ok(self, acct: AccountState, now: float) -> bool:
        """At most ``rate_limit`` admitted requests in any sliding 1 s window; refused ones don't count."""
        limit = self.config.rate_limit
        if limit <= 0:
            return True
        window = acct.window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(now)
        return True

    def in_flight_ok(self, acct: AccountState, now: float) -> bool:
        """Whether one more request of the account may be taken while the others are still unanswered
        (``max_in_flight``; each answer leaves ``latency_ms`` after its request came). A refused one
        does not count."""
        limit = acct.account.max_in_flight
        if limit <= 0:
            return True
        acct.busy = [until for until in acct.busy if until > now]
        if len(acct.busy) >= limit:
            return False
        acct.busy.append(now + self.config.latency_ms / 1000)
        return True

    @staticmethod
    def balance_query_ok(acct: AccountState, now: float, interval: float) -> bool:
        if now - acct.last_balance_query < interval:
            return False
        acct.last_balance_query = now
        return True

    def keywords(self, acct: AccountState) -> tuple[str, ...]:
        return self.config.keywords + acct.account.keywords

    def forbidden_word(self, acct: AccountState, text: str) -> str | None:
        """The first of the account's forbidden words in ``text``. A word filter is there against evasions:
        full-width forms and letter case are folded (NFKC, casefold) before comparing."""
        folded = unicodedata.normalize("NFKC", text).casefold()
        for word in self.keywords(acct):
            if word and (word in text or unicodedata.normalize("NFKC", word).casefold() in folded):
                return word
        return None

    def is_duplicate(self, key: str, now: float) -> bool:
        """Entinfo's -20: the same sn, mobile and content within the duplicate window."""
        digest = hashlib.blake2b(key.encode(), digest_size=12).digest()
        seen = self._recent.get(digest)
        return seen is not None and now - seen < self.config.entinfo_duplicate_window

    def remember(self, key: str, now: float) -> None:
        self._recent[hashlib.blake2b(key.encode(), digest_size=12).digest()] = now

    # -- acceptance -------------------------------------------------------------------------------

    def new_batch_id(self, vendor: str, now: float) -> str:
        """19 digits like the documents' ``2314357620085030623`` (entinfo: 18): prefix, ms clock, counter.
        Unique unless 10,000 ids are made within one millisecond."""
        self._counter += 1
        return f"{_BATCH_PREFIX[vendor]}{int(now * 1000):013d}{self._counter % 10000:04d}"

    def accept(
        self,
        acct: AccountState,
        messages: Sequence[tuple[str, str]],
        now: float,
        *,
        batch_id: str,
        ref: str = "",
        group: bool = False,
        voice: bool = False,
        reports: bool = True,
    ) -> None:
        """Record each (mobile, text) as accepted, choose its delivery outcome, schedule its report."""
        vendor, user = acct.account.vendor, acct.account.user
        rng, ratio = self.rng, self.config.deliver_ratio
        due = now + self.config.report_delay
        for mobile, text in messages:
            status = "DELIVRD" if rng.random() < ratio else rng.choice(FAILURE_STATUSES)
            self.accepted.append((vendor, user, mobile, text, batch_id, status, now, ref))
            if reports:
                acct.reports.append(PendingReport(due, batch_id, mobile, status, ref, group, voice))
            if vendor == "trigger":
                acct.last_ref[mobile] = (ref, group)

    def reject(self, vendor: str, user: str, code: int, method: str, now: float) -> None:
        self.rejected.append((vendor, user, code, method, now))

    def fault(self, vendor: str, user: str, kind: str, method: str, now: float) -> None:
        self.faults.append((vendor, user, kind, method, now))

    # -- reports and replies ----------------------------------------------------------------------

    @staticmethod
    def pull_reports(acct: AccountState, now: float, limit: int = PULL_LIMIT) -> list[PendingReport]:
        """Due reports, oldest first, at most ``limit``; they are gone from the simulator afterwards."""
        queue = acct.reports
        out: list[PendingReport] = []
        while queue and len(out) < limit and queue[0].due <= now:
            out.append(queue.popleft())
        return out

    def add_reply(
        self, acct: AccountState, mobile: str, text: str, now: float, ref: str | None = None
    ) -> None:
        last_ref, group = acct.last_ref.get(mobile, ("", False))
        acct.replies.append(
            PendingReply(now, mobile, text, acct.account.show_num, last_ref if ref is None else ref, group)
        )

    @staticmethod
    def pull_replies(acct: AccountState, limit: int = PULL_LIMIT) -> list[PendingReply]:
        queue = acct.replies
        out: list[PendingReply] = []
        while queue and len(out) < limit:
            out.append(queue.popleft())
        return out

    # -- the truth ------------------------------------------------------------------------------

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "accepted": [
                {
                    "vendor": v,
                    "account": a,
                    "mobile": m,
                    "content": c,
                    "batch_id": b,
                    "status": s,
                    "at": t,
                    "ref": r,
                }
                for v, a, m, c, b, s, t, r in self.accepted
            ],
            "rejected": [
                {"vendor": v, "account": a, "code": c, "method": m, "at": t}
                for v, a, c, m, t in self.rejected
            ],
            "faults": [
                {"vendor": v, "account": a, "kind": k, "method": m, "at": t} for v, a, k, m, t in self.faults
            ],
        }
