"""A stateful property test of the chunk state machine: actors interleaved at random against the real
store and the real decision (no network: each answer is fed at the seam after the transport, as the
body or the error the transport would have given).

Two campaigns of one account share numbers and their text, so that a report of a number, or the
vendor's "already sent this text to this number", may be about either; one request is personalised, so
that a content refusal splits it; each campaign may fail over to a second account (an account error,
or retries that gave up on "try later"), after which reports and "already sent" come from the account
that took each request. Actors: workers claiming and answering (every answer class, a code missing
from the vendor's table too, on time or after the sweep), workers dying mid-send, the beat's sweep,
failover and completion, reports arriving, the operator's retry (with and without unknown chunks),
pause, resume, cancel, and opt-outs. The model keeps the vendor's truth: which campaign's requests it
really took, on which account, for which numbers. Invariants after every step: no number taken twice unless an operator re-sent it
from ``unknown``; nothing the vendor took is failed or queued again; nothing recorded as accepted that
the vendor did not take; waiting recipients sit in a chunk that will send them; the campaign's counts add
up; and, at the end, once everything is answered and the campaign driven to its end, no recipient waits.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, create_engine, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import campaigns, failover, scheduler
from dispatcher.config import AccountConfig, Settings
from dispatcher.decisions import ChunkRow, SendAttempt, Verdict, interpret
from dispatcher.dispatch import load_group, record_attempts
from dispatcher.errors import HTTPStatusError, NotSentError, OutcomeUnknownError, StateError
from dispatcher.results import optout_store, reconcile
from dispatcher.store import (
    Campaign,
    Chunk,
    ChunkState,
    NewRecipient,
    Recipient,
    ReportRow,
    bulk_insert_recipients,
    counts,
    make_engine,
    session_factory,
    sweep_expired_leases,
    upgrade,
    utcnow,
)
from dispatcher.store.chunks import Claimed, claim_chunks
from dispatcher.store.models import Base
from dispatcher.vendors import entinfo, trigger
from dispatcher.vendors.wire import Credentials, Request
from tests.stack import PG_URL

ACCOUNT = "acct"
FALLBACK = "acct2"  # both campaigns' fallback account (trigger too)
SETTINGS = Settings(
    database_url="unused",
    broker_url="unused",
    accounts={n: AccountConfig(n, "trigger", "http://127.0.0.1:9", n, "demo") for n in (ACCOUNT, FALLBACK)},
)
TEXT = "会员日全场8折，回T退订【测试】"
MOBILES = [f"139000000{i:02d}" for i in range(8)]
# Two campaigns, multi-number and single requests; the second shares three numbers with the first
CAMPAIGNS = [
    [MOBILES[0:3], MOBILES[3:5], MOBILES[5:6], MOBILES[6:7]],
    [[MOBILES[1], MOBILES[5], MOBILES[7]], [MOBILES[3]]],
]
# (campaign, chunk) packed personalised: a content refusal splits it like a bad number
PERSONALISED = {(0, 0)}
ROWS = sum(len(chunk) for chunks in CAMPAIGNS for chunk in chunks)
WAITING = ("planned", "queued", "sending")
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
TAKEN_STATES = ("sending", "unknown", "accepted", "delivered", "undelivered", "expired")
CREDS = Credentials("demo", "demo")

# What the vendor answers, as the transport hands it over: (kind, body or error, the vendor took it?)
# "maybe": the answer does not tell (lost, 500 after the body, a proxy's page); the model draws.
ANSWERS = {
    "accepted": ("body", None, "yes"),
    "rate_limited": ("body", "-16", "no"),
    "retry_later": ("body", "-1", "no"),
    "outside_hours": ("body", "-8", "no"),
    "account": ("body", "-3", "no"),
    "bad_recipient": ("body", "-9", "no"),
    "bad_content": ("body", "-4", "no"),
    "bad_request": ("body", "-19", "no"),
    "duplicate": ("body", "-20", "no"),  # entinfo's: only when the vendor has one of the numbers
    "unexpected": ("body", "<html>bad gateway</html>", "maybe"),
    "unclassified": ("body", "-987", "maybe"),  # a code missing from the table: "taken, with a remark"?
    "lost": ("error", OutcomeUnknownError("read timeout"), "maybe"),
    "http_500": ("error", HTTPStatusError(500), "maybe"),
    "http_503_retry_after": ("error", HTTPStatusError(503, headers={"Retry-After": "1"}), "no"),
    "not_sent": ("error", NotSentError("connection refused"), "no"),
}


@dataclass
class Flight:
    """A request on the wire: a worker's claim of a chunk, not answered yet."""

    worker: str
    attempt: SendAttempt  # the verdict is filled in when the answer comes


class Store:
    """A fresh, migrated store per example: a copied SQLite file, or a truncated PostgreSQL schema."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend, self.root = backend, root
        self.template = root / "template.sqlite3"
        if backend == "sqlite":
            url = f"sqlite:///{self.template}"
            upgrade(url)
            engine = make_engine(url)
            self.campaigns = create_campaigns(session_factory(engine))  # copied with the file
            engine.dispose()
        else:
            assert PG_URL
            self.schema = f"test_machine_{uuid.uuid4().hex[:12]}"
            self.admin = create_engine(PG_URL)
            with self.admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={self.schema}"})
            self.pg_url = url.render_as_string(hide_password=False)
            upgrade(self.pg_url)
            self.pg_engine = make_engine(self.pg_url)
        self.count = itertools.count()

    def fresh(self) -> tuple[Engine, list[int], bool]:
        """An engine on a store holding just the started campaigns, the campaigns' ids, and whether
        the caller disposes of the engine."""
        if self.backend == "sqlite":
            path = self.root / f"example-{next(self.count)}.sqlite3"
            shutil.copyfile(self.template, path)
            return make_engine(f"sqlite:///{path}"), self.campaigns, True
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with self.pg_engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        return self.pg_engine, create_campaigns(session_factory(self.pg_engine)), False

    def close(self) -> None:
        if self.backend == "postgresql":
            self.pg_engine.dispose()
            with self.admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            self.admin.dispose()


def create_campaigns(sessions: sessionmaker[Session]) -> list[int]:
    """The trigger campaigns of :data:`CAMPAIGNS` (one text), started."""
    return [
        create_campaign(sessions, chunks, {seq for k, seq in PERSONALISED if k == which})
        for which, chunks in enumerate(CAMPAIGNS)
    ]


def create_campaign(
    sessions: sessionmaker[Session], chunks: list[list[str]], personalised: Collection[int] = ()
) -> int:
    """A trigger campaign of ``chunks`` (their numbers, one text; packed personalised at the seqs of
    ``personalised``), started."""
    with sessions() as session:
        campaign_id = session.execute(
            insert(Campaign)
            .values(name="spring", account=ACCOUNT, vendor="trigger", template=TEXT, state="draft",
                    window_start=0, window_end=1440, created_by="t", next_seq=len(chunks),
                    fallbacks=[FALLBACK])
            .returning(Campaign.id)
        ).scalar_one()  # fmt: skip
        rows: list[NewRecipient] = []
        for seq, mobiles in enumerate(chunks):
            chunk_id = session.execute(
                insert(Chunk)
                .values(campaign_id=campaign_id, seq=seq, ref=f"{campaign_id:011d}{seq:07d}",
                        method="personalised" if seq in personalised else "same_text",
                        text=None if seq in personalised else TEXT, recipient_count=len(mobiles),
                        state="planned", account=ACCOUNT)
                .returning(Chunk.id)
            ).scalar_one()  # fmt: skip
            rows += [NewRecipient(len(rows) + 2, len(rows), m, m, TEXT, 1, None, chunk_id) for m in mobiles]
        bulk_insert_recipients(session, campaign_id, rows)
        session.commit()
    campaigns.start(sessions, campaign_id, "t")
    return campaign_id


class ChunkMachine(RuleBasedStateMachine):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.engine, self.campaigns, self.dispose = store.fresh()
        self.sessions = session_factory(self.engine)
        self.flights: dict[tuple[str, int, int], Flight] = {}
        # (campaign, number) the vendor took, with how often; and the extra takes an operator's
        # re-send of an unknown chunk allows
        self.vendor: Counter[tuple[int, str]] = Counter()
        self.allowed: Counter[tuple[int, str]] = Counter()
        # (account, batch id, mobile, chunk ref) the vendor can report
        self.reports: list[tuple[str, str, str, str]] = []
        self.taken_on: Counter[tuple[str, str]] = Counter()  # (account, number): "already sent" there
        self.opted: set[str] = set()
        self.batches = itertools.count(2200000000000000000)

    # ---- the store, read ------------------------------------------------------------------------------

    def states(self) -> dict[tuple[int, str], tuple[str, int | None]]:
        with self.sessions() as session:
            rows = session.execute(
                select(Recipient.campaign_id, Recipient.mobile, Recipient.state, Recipient.chunk_id)
            ).all()
        return {(k, m): (s, c) for k, m, s, c in rows}

    def chunk_states(self) -> dict[int, str]:
        with self.sessions() as session:
            return {i: s for i, s in session.execute(select(Chunk.id, Chunk.state))}

    def accounts(self) -> dict[int, str]:
        with self.sessions() as session:
            return {i: str(a) for i, a in session.execute(select(Campaign.id, Campaign.account))}

    def campaign_states(self) -> dict[int, str]:
        with self.sessions() as session:
            return {i: str(s) for i, s in session.execute(select(Campaign.id, Campaign.state))}

    # ---- workers ------------------------------------------------------------------------------------

    # (Rules draw their arguments from ``data``: Hypothesis tries rules with fewer arguments first,
    # and the workers' rules are the ones to exercise most.)

    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        queued = sorted(i for i, s in self.chunk_states().items() if s == ChunkState.QUEUED)
        if not queued:
            return
        worker = data.draw(st.sampled_from(["w1", "w2"]), label="worker")
        pick = data.draw(st.sets(st.integers(0, 5), min_size=1, max_size=3), label="pick")
        ids = sorted({queued[p % len(queued)] for p in pick})
        with self.sessions() as session:
            won = claim_chunks(session, ids, worker, 60)
        rows = {row.id: row for row in load_group(self.sessions, list(won))}
        for chunk_id, claimed in won.items():
            campaign = rows[chunk_id].campaign_id
            mobiles = {(campaign, m) for m in self._mobiles(claimed)}
            busy = {self._key(f, m) for f in self.flights.values() for m in self._mobiles(f.attempt.claimed)}
            assert not {k for k in busy & mobiles if not self.allowed[k]}, "a number in two requests at once"
            assert not {m for _, m in mobiles} & self.opted, "an opted-out number sent"
            request = self._request(rows[chunk_id], claimed)
            now = utcnow()
            placeholder = Verdict(ChunkState.UNKNOWN)
            attempt = SendAttempt(rows[chunk_id], claimed, placeholder, now, now, request)
            self.flights[(worker, chunk_id, claimed.attempts)] = Flight(worker, attempt)

    @staticmethod
    def _request(row: ChunkRow, claimed: Claimed) -> Request | None:
        if not claimed.recipients:
            return None
        if row.text is None:
            return trigger.build_personalised(CREDS, claimed.pairs, ref=row.ref)
        return trigger.build_send(CREDS, [r.mobile for r in claimed.recipients], TEXT, ref=row.ref)

    @precondition(lambda self: bool(self.flights))
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        """Answers come back for some of one worker's requests, and are recorded together."""
        worker = data.draw(st.sampled_from(sorted({w for w, _, _ in self.flights})), label="worker")
        mine = sorted(k for k in self.flights if k[0] == worker)
        keys = data.draw(st.sets(st.sampled_from(mine), min_size=1), label="flights")
        attempts, kinds, late = [], {}, {}
        states = self.chunk_states()
        for key in sorted(keys):
            flight = self.flights.pop(key)
            kind = data.draw(st.sampled_from(sorted(ANSWERS)), label="answer")
            took = data.draw(st.booleans(), label="the vendor took it")
            attempts.append(self._answered(flight, kind, took))
            kinds[key[1]], late[key[1]] = kind, states[key[1]] != ChunkState.SENDING
        for result in record_attempts(self.sessions, worker, attempts):
            when = " (late)" if late[result.chunk_id] else ""
            event(f"answer {kinds[result.chunk_id]}{when}: {result.next.value}, {result.state}")
        self.hold_backoffs()

    def hold_backoffs(self) -> None:
        """Time passes only when a rule says so: a backoff lasts until ``backoffs run out`` (else a
        short one would run out on the wall clock, and the same steps would not do the same)."""
        with self.sessions() as session:
            session.execute(update(Chunk).where(Chunk.not_before.is_not(None)).values(not_before=FAR_FUTURE))
            session.commit()

    def _answered(self, flight: Flight, kind: str, took: bool) -> SendAttempt:
        """The attempt of ``flight`` with the answer ``kind``, and the vendor's truth updated."""
        attempt = flight.attempt
        mobiles = self._mobiles(attempt.claimed)
        if kind == "duplicate" and not any(self.taken_on[(attempt.chunk.account, m)] for m in mobiles):
            kind = "bad_recipient"  # entinfo says -20 only when it has this text for one of the numbers
        how, what, taken = ANSWERS[kind]
        body = str(next(self.batches)) if kind == "accepted" else what if how == "body" else None
        module = entinfo if kind == "duplicate" else trigger
        if attempt.request is None:
            verdict = Verdict(ChunkState.FAILED, sent=False)  # nothing to send: nothing was sent
        elif how == "body":
            assert isinstance(body, str)
            verdict = interpret(module, body=body)
        else:
            assert isinstance(what, Exception)
            verdict = interpret(module, error=what)
        took = attempt.request is not None and (taken == "yes" or (taken == "maybe" and took))
        self._took(flight, took, body if kind == "accepted" else str(next(self.batches)))
        finished = utcnow()
        return SendAttempt(
            attempt.chunk, attempt.claimed, verdict, attempt.started, finished, attempt.request, body
        )

    @precondition(lambda self: bool(self.flights))
    @rule(data=st.data())
    def worker_dies(self, data: st.DataObject) -> None:
        """Killed mid-send: no answer is ever recorded; the request may have reached the vendor."""
        key = data.draw(st.sampled_from(sorted(self.flights)), label="flight")
        took = data.draw(st.booleans(), label="the vendor took it")
        flight = self.flights.pop(key)
        self._took(flight, took and flight.attempt.request is not None, str(next(self.batches)))

    def _took(self, flight: Flight, took: bool, batch_id: str) -> None:
        if not took:
            return
        account = flight.attempt.chunk.account  # the campaign's when claimed: the account it went out on
        for mobile in self._mobiles(flight.attempt.claimed):
            self.vendor[self._key(flight, mobile)] += 1
            self.taken_on[(account, mobile)] += 1
            self.reports.append((account, batch_id, mobile, flight.attempt.chunk.ref))

    @staticmethod
    def _key(flight: Flight, mobile: str) -> tuple[int, str]:
        return (flight.attempt.chunk.campaign_id, mobile)

    @staticmethod
    def _mobiles(claimed: Claimed) -> list[str]:
        return [r.mobile for r in claimed.recipients]

    # ---- the beat --------------------------------------------------------------------------------------

    @rule(
        action=st.sampled_from(["backoffs run out", "leases run out", "complete", "fail over"]),
        data=st.data(),
    )
    def beat(self, action: str, data: st.DataObject) -> None:
        if action == "fail over":
            before = self.accounts()
            failover.run(self.sessions, SETTINGS)
            if self.accounts() != before:
                event("a campaign failed over")
            self.hold_backoffs()
            return
        if action == "complete":
            scheduler.complete_finished(self.sessions)
            self.finished_campaign_states_hold()
            return
        state, column = ("queued", Chunk.not_before) if action == "backoffs run out" else ("sending", None)
        ids = sorted(i for i, s in self.chunk_states().items() if s == state)
        if not ids:
            return
        some = data.draw(st.sets(st.sampled_from(ids), min_size=1), label="chunks")
        with self.sessions() as session:
            if column is not None:  # some backoffs (or waits for the hours) run out
                session.execute(update(Chunk).where(Chunk.id.in_(some)).values(not_before=None))
                session.commit()
                return
            # some leases run out; the sweep takes them
            past = utcnow() - timedelta(minutes=5)
            session.execute(update(Chunk).where(Chunk.id.in_(some)).values(lease_until=past))
            session.commit()
            assert set(sweep_expired_leases(session)) >= some

    def backoffs_run_out(self) -> None:
        with self.sessions() as session:
            session.execute(update(Chunk).where(Chunk.state == "queued").values(not_before=None))
            session.commit()

    # ---- results --------------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.reports))
    @rule(data=st.data())
    def report_arrives(self, data: st.DataObject) -> None:
        account, batch_id, mobile, ref = data.draw(st.sampled_from(self.reports), label="report")
        with_ref = data.draw(st.booleans(), label="names the chunk")
        delivered = data.draw(st.booleans(), label="delivered")
        with self.sessions() as session:
            report = ReportRow(
                account=account,
                batch_id=batch_id,
                mobile=mobile,
                status="DELIVRD" if delivered else "UNDELIVRD",
                ref=ref if with_ref else None,
                reported_at=utcnow(),
            )
            session.add(report)
            session.flush()
            if reconcile.reconcile(session, ReportRow.id == report.id).settled_chunks:
                event("a report settled an unknown chunk")
            session.commit()

    # ---- the operator -----------------------------------------------------------------------------------

    @rule(
        # The first are the likelier: a cancel ends what there is to explore
        action=st.sampled_from(["resume", "retry with unknown", "opt out", "retry", "pause", "cancel"]),
        mobile=st.sampled_from(MOBILES),
        which=st.integers(0, len(CAMPAIGNS) - 1),
    )
    def operator(self, action: str, mobile: str, which: int) -> None:
        campaign = self.campaigns[which]
        if action == "opt out":
            with self.sessions() as session:
                optout_store.add(session, [mobile], source="manual")
                session.commit()
            self.opted.add(mobile)
        elif action.startswith("retry"):
            self.retry(campaign, include_unknown=action == "retry with unknown")
        else:
            with contextlib.suppress(StateError):
                getattr(campaigns, action)(self.sessions, campaign, "op")

    def retry(self, campaign: int, include_unknown: bool) -> None:
        before = self.states()
        try:
            campaigns.retry(self.sessions, campaign, "op", include_unknown=include_unknown)
        except StateError:
            return
        for key, (state, _) in self.states().items():
            if before[key][0] == "unknown" and state == "queued":
                self.allowed[key] += 1  # a person chose to re-send what may have been taken
                event("retry re-queued an unknown number")

    # ---- invariants -----------------------------------------------------------------------------------

    @invariant()
    def nothing_twice_nothing_lost_nobody_stranded(self) -> None:
        with self.sessions() as session:
            rows = session.execute(
                select(Recipient.campaign_id, Recipient.mobile, Recipient.state, Recipient.chunk_id)
            ).all()
            chunks = {
                i: (s, c) for i, s, c in session.execute(select(Chunk.id, Chunk.state, Chunk.campaign_id))
            }
            by_campaign = {i: str(s) for i, s in session.execute(select(Campaign.id, Campaign.state))}
            by_state = [counts(session, campaign) for campaign in self.campaigns]
        # The campaigns' counts: every row, once, in one state
        assert len(rows) == sum(sum(c.values()) for c in by_state) == ROWS
        for campaign, mobile, state, chunk_id in rows:
            key, name = (campaign, mobile or ""), f"{mobile} of campaign {campaign}"
            assert self.vendor[key] <= 1 + self.allowed[key], f"{name} taken twice"
            if state in ("accepted", "delivered", "undelivered", "expired"):
                assert self.vendor[key], f"{name} is {state} but the vendor never took it"
            if self.vendor[key] and not self.allowed[key]:
                assert state in TAKEN_STATES, f"{name} was taken by the vendor but is {state}"
            if state in WAITING:  # waiting in a chunk in the same state, so that it will be sent
                assert chunk_id is not None and chunks[chunk_id][0] == state, f"{name} {state} stranded"
            # A cancel marks as cancelled only what the vendor never took
            if state == "cancelled":
                assert by_campaign[campaign] == "cancelled" and not self.vendor[key], f"{name} cancelled"
        # An ended campaign has nobody waiting, once nothing of it is in flight (a dead worker's chunk
        # is ``sending`` until the sweep)
        flying = {f.attempt.chunk.campaign_id for f in self.flights.values()}
        for campaign, state in by_campaign.items():
            sending = any(s == ChunkState.SENDING for s, c in chunks.values() if c == campaign)
            if state in ("sent", "completed", "cancelled") and campaign not in flying and not sending:
                assert not [m for k, m, s, _ in rows if k == campaign and s in WAITING], f"{campaign} {state}"

    def finished_campaign_states_hold(self) -> None:
        """Right after the beat's completion step: a ``sent`` campaign has nothing left to send and a
        recipient awaiting a report; a ``completed`` one has neither (trigger reports deliveries)."""
        for campaign, state in self.campaign_states().items():
            with self.sessions() as session:
                chunks = set(
                    session.execute(select(Chunk.state).where(Chunk.campaign_id == campaign)).scalars()
                )
                recipients = set(
                    session.execute(
                        select(Recipient.state).where(Recipient.campaign_id == campaign)
                    ).scalars()
                )
            if state in ("sent", "completed"):
                assert not chunks & {"planned", "queued", "sending"}, f"{state} with {chunks}"
                assert ("accepted" in recipients) == (state == "sent"), f"{state} with {recipients}"

    def teardown(self) -> None:
        try:
            self._drive_to_the_end()
        finally:
            if self.dispose:
                self.engine.dispose()

    def resume_paused(self) -> None:
        for campaign, state in self.campaign_states().items():
            if state == "paused":
                campaigns.resume(self.sessions, campaign, "op")

    def _drive_to_the_end(self) -> None:
        """Every answer comes (accepted), dead leases are swept, a paused campaign is resumed, and the
        workers send what is left: then nobody waits, and the invariants still hold."""
        for key in sorted(self.flights):
            flight = self.flights.pop(key)
            self._answer_accepted(flight)
        self.resume_paused()
        for _ in range(20):
            with self.sessions() as session:
                session.execute(update(Chunk).values(lease_until=utcnow() - timedelta(minutes=5)))
                session.commit()
                sweep_expired_leases(session)
            self.backoffs_run_out()
            queued = [i for i, s in self.chunk_states().items() if s == ChunkState.QUEUED]
            if not queued:
                break
            with self.sessions() as session:
                won = claim_chunks(session, queued, "w-end", 60)
            for chunk_id, claimed in won.items():
                (row,) = load_group(self.sessions, [chunk_id])
                request = self._request(row, claimed)
                now = utcnow()
                self._answer_accepted(
                    Flight("w-end", SendAttempt(row, claimed, Verdict(ChunkState.UNKNOWN), now, now, request))
                )
            self.resume_paused()  # an account answer from before
            scheduler.complete_finished(self.sessions)  # re-opens a sent campaign a late answer re-queued
        scheduler.complete_finished(self.sessions)
        self.finished_campaign_states_hold()
        assert set(self.campaign_states().values()) <= {"sent", "completed", "cancelled"}
        self.nothing_twice_nothing_lost_nobody_stranded()
        assert not [k for k, (s, _) in self.states().items() if s in WAITING]
        for campaign in self.campaigns:
            with self.sessions() as session:
                status = campaigns.status(session, campaign)
            assert status["recipients"] == sum(status[s] for s in ("accepted", "failed", "unknown", "delivered",
                                                                   "undelivered", "expired", "cancelled"))  # fmt: skip
        # Every report the vendor still owes arrives: the campaigns are completed
        if "sent" in self.campaign_states().values():
            with self.sessions() as session:
                for account, batch_id, mobile, _ in self.reports:
                    session.add(ReportRow(account=account, batch_id=batch_id, mobile=mobile, status="DELIVRD",
                                          reported_at=utcnow()))  # fmt: skip
                session.flush()
                reconcile.reconcile(session, ReportRow.account.in_((ACCOUNT, FALLBACK)))
                session.commit()
            scheduler.complete_finished(self.sessions)
            assert "sent" not in self.campaign_states().values()

    def _answer_accepted(self, flight: Flight) -> None:
        record_attempts(self.sessions, flight.worker, [self._answered(flight, "accepted", True)])


DATABASES = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
# Hundreds of interleavings on SQLite; fewer on PostgreSQL, where each example truncates the tables.
# The default run tries a sample of them (every actor and invariant, in a few minutes less); the full
# run is marked slow, and CI runs it (`pytest -m slow`).
EXAMPLES = {
    "sample": {"sqlite": 12, "postgresql": 4},
    "full": {"sqlite": 300, "postgresql": 60},
}


@pytest.fixture(params=DATABASES)
def machine_store(request: pytest.FixtureRequest) -> Iterator[Store]:
    shm = Path("/dev/shm")  # tmpfs where there is one: hundreds of small databases, no disk
    root = Path(tempfile.mkdtemp(prefix="chunk-machine-", dir=shm if shm.is_dir() else None))
    store = Store(request.param, root)
    try:
        yield store
    finally:
        store.close()
        shutil.rmtree(root, ignore_errors=True)


# The full run takes 4-5 minutes on SQLite alone on two cores, more beside the other slow tests: past the
# suite's 300 s timeout.
FULL = pytest.param("full", marks=[pytest.mark.slow, pytest.mark.timeout(1500)])


@pytest.mark.parametrize("run", ["sample", FULL])
def test_the_chunk_state_machine_under_interleaved_actors(machine_store: Store, run: str) -> None:
    run_state_machine_as_test(
        lambda: ChunkMachine(machine_store),
        settings=settings(
            max_examples=EXAMPLES[run][machine_store.backend],
            stateful_step_count=30,
            derandomize=True,  # the same interleavings in every CI run
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
