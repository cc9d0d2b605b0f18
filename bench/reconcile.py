"""Reconcile benchmark: N pulled report records (yunxin GetReport2 format, 500 a body) ingested from the
inbox and reconciled against a stored campaign of N accepted recipients, on SQLite (a temporary file)
or on the PostgreSQL of ``--database-url`` (a fresh schema, dropped afterwards).

    python bench/reconcile.py            # 1,000,000 records (target >= 100,000 records/s)
    python bench/reconcile.py --quick    # 100,000 records, well under a minute
    python bench/reconcile.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/reconcile.py --profile [--explain]   # where the time goes (BENCHMARKS.md, "Reconcile")

Beside the rate, the same run measures the store's floor: the bare rewrite of every recipient's
outcome columns by id range, 10,000 rows a transaction on one connection (no parsing, no match, no
report rows), the part of the work no reconcile can avoid; the reconcile is given as a share of it.

The figures, before and after each change, are in BENCHMARKS.md ("Reconcile" and its rounds).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

from scratch_store import backend_name, scratch_store
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from dispatcher.config import AccountConfig, Settings
from dispatcher.results import parsing, rows
from dispatcher.results.inbox import process_pending
from dispatcher.store import NewRecipient, bulk_insert_recipients, make_engine, session_factory

PER_BODY = 500
TARGET = 100_000  # records/s (issue 16)
FIRST = 13000000000


def build_store(url: str, n: int, before: Sequence[str] = (), after: Sequence[str] = ()) -> None:
    """A completed campaign of ``n`` accepted recipients; ``before`` and ``after`` are SQL statements
    run before loading it and after (a schema variant to measure, a VACUUM)."""
    sessions = session_factory(make_engine(url))
    with sessions() as session:
        for sql in before:
            session.execute(text(sql))
        session.execute(
            text(
                "INSERT INTO campaigns (id, name, account, vendor, template, state, window_start, window_end,"
                " timezone, created_by, created_at, updated_at) VALUES (1, 'bench', 'bench', 'yunxin', 't',"
                " 'completed', 0, 1440, 'Asia/Shanghai', 'bench', '2026-01-01', '2026-01-01')"
            )
        )
        # One accepted chunk per 500 numbers, as a sent campaign has (each recipient carries its chunk).
        session.execute(
            text(
                "INSERT INTO chunks (id, campaign_id, seq, ref, method, recipient_count, state, attempts,"
                " batch_id, requeued_from_unknown, created_at, updated_at, accepted_at) VALUES (:id, 1, :id,"
                " :ref, 'same_text', :count, 'accepted', 1, :batch, false, '2026-01-01', '2026-01-01',"
                " '2026-01-01')"
            ),
            [
                {
                    "id": c + 1,
                    "ref": str(900000000000 + c),
                    "count": min(PER_BODY, n - c * PER_BODY),
                    "batch": str(7000000000000000000 + c),
                }
                for c in range((n + PER_BODY - 1) // PER_BODY)
            ],
        )
        rows = (
            NewRecipient(i + 2, i, str(FIRST + i), None, "text【测试】", 1, chunk_id=i // PER_BODY + 1)
            for i in range(n)
        )
        bulk_insert_recipients(session, 1, rows)
        # Accepted, 500 numbers per batch id, as yunxin SendMsg batches them.
        session.execute(
            text(
                "UPDATE recipients SET state = 'accepted', submitted_at = '2026-01-01 00:00:00.000000',"
                f" batch_id = CAST(7000000000000000000 + position / {PER_BODY} AS TEXT)"
            )
        )
        session.commit()
    if make_url(url).get_backend_name() == "postgresql":
        # What autovacuum does within a minute of such a load; without it the planner thinks the
        # recipients table empty.
        with make_engine(url).connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            auto.exec_driver_sql("ANALYZE")
            for sql in after:
                auto.exec_driver_sql(sql)


def floor_rate(engine: Engine, n: int) -> float:
    """Rows per second of the bare rewrite (module docstring) on the reconciled store: the rows go
    back to ``accepted``, as many rows, columns and index entries as the reconcile's update wrote."""
    started = time.perf_counter()
    for start in range(0, n, 10_000):
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE recipients SET state = 'accepted', report_status = NULL, delivered_at = NULL,"
                    " report_raw_pull_id = NULL WHERE id > :low AND id <= :high"
                ),
                {"low": start, "high": start + 10_000},
            )
    return n / (time.perf_counter() - started)


def bodies(n: int) -> list[str]:
    out = []
    for start in range(0, n, PER_BODY):
        records = []
        for i in range(start, min(n, start + PER_BODY)):
            status = "DELIVRD" if i % 10 else "UNDELIVRD"
            at = f"2026/01/01 08:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}"
            records.append(f"{7000000000000000000 + i // PER_BODY},{FIRST + i},{at},{status}|")
        out.append("".join(records))
    return out


class Profile:
    """Where the time goes: each statement shape's count and total time (SQLAlchemy cursor events: the
    server's work plus the round trip), and the steps that are no statement here: parsing, the
    stage's COPY, the commits. Per batch, the times of the costliest statement."""

    def __init__(self, engine: Engine) -> None:
        self.spent: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.each: dict[str, list[float]] = defaultdict(list)
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(Session, "before_commit", self._before_commit)
        event.listen(Session, "after_commit", self._after_commit)
        parsing.read = self.timed("(parse the bodies)", parsing.read)  # type: ignore[method-assign]
        rows.write_rows = self.timed("(COPY into the stage)", rows.write_rows)  # type: ignore[attr-defined]

    def add(self, shape: str, took: float) -> None:
        entry = self.spent[shape]
        entry[0] += 1
        entry[1] += took
        self.each[shape].append(took)

    def timed(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0)

        return run

    def _before(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        conn.info["t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        self.add(re.sub(r"\s+", " ", statement).strip()[:110], time.perf_counter() - conn.info.pop("t0"))

    def _before_commit(self, session: Session) -> None:
        session.info["commit_t0"] = time.perf_counter()

    def _after_commit(self, session: Session) -> None:
        if "commit_t0" in session.info:
            self.add("(commit)", time.perf_counter() - session.info.pop("commit_t0"))

    def report(self, wall: float) -> None:
        ranked = sorted(self.spent.items(), key=lambda kv: -kv[1][1])
        print(f"profile ({wall:.2f} s in all; the rest is the loop's own Python):")
        for shape, (count, total) in ranked[:12]:
            print(f"  {total:7.2f} s  {int(count):6d}x  {shape}")
        top = next(shape for shape, _ in ranked if not shape.startswith("("))
        print(f"  per batch, ms, {top[:40]}...: {[round(t * 1000) for t in self.each[top]]}")


def explain(engine: Engine, plans: dict[str, str]) -> None:
    """PostgreSQL's auto_explain on every connection (superuser), its plans sent back as notices: the
    latest plan of each statement shape is kept."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record):  # type: ignore[no-untyped-def]
        def keep(diag):  # type: ignore[no-untyped-def]
            message = diag.message_primary or ""
            if "Query Text:" in message:
                query = message.split("Query Text:", 1)[1].strip()
                plans[re.sub(r"\s+", " ", query)[:110]] = message

        dbapi_connection.add_notice_handler(keep)
        with dbapi_connection.cursor() as cursor:
            cursor.execute("LOAD 'auto_explain'")
            for setting in (
                "auto_explain.log_min_duration = 5",
                "auto_explain.log_analyze = on",
                "auto_explain.log_buffers = on",
                "auto_explain.log_wal = on",
                "auto_explain.log_nested_statements = on",
                "client_min_messages = log",
            ):
                cursor.execute(f"SET {setting}")
        dbapi_connection.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100,000 records instead of 1,000,000")
    parser.add_argument("-n", type=int, default=None)
    parser.add_argument(
        "--database-url", default=None, help="default: a SQLite file in a temporary directory"
    )
    parser.add_argument("--profile", action="store_true", help="print the statements' times (cursor events)")
    parser.add_argument(
        "--explain", action="store_true", help="PostgreSQL: print the latest plans (auto_explain)"
    )
    parser.add_argument("--before-sql", action="append", default=[], help="SQL run before loading the store")
    parser.add_argument("--after-sql", action="append", default=[], help="SQL run after loading it")
    args = parser.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    with scratch_store(args.database_url, "bench_reconcile") as url:
        build_store(url, n, args.before_sql, args.after_sql)
        account = AccountConfig("bench", "yunxin", "http://127.0.0.1:9", "u", "p")
        settings = Settings(url, "memory://", accounts=MappingProxyType({"bench": account}))
        engine = make_engine(url)
        sessions = session_factory(engine)
        profiled = Profile(engine) if args.profile else None
        plans: dict[str, str] = {}
        if args.explain:
            explain(engine, plans)
        payload = bodies(n)
        t0 = time.perf_counter()
        with engine.begin() as conn:  # what the pullers do, one committed body at a time in production
            conn.execute(
                text(
                    "INSERT INTO raw_pulls (account, kind, source, body, received_at)"
                    " VALUES ('bench', 'reports', 'pull', :b, '2026-01-01 00:00:00.000000')"
                ),
                [{"b": b} for b in payload],
            )
        t1, cpu = time.perf_counter(), time.process_time()
        stats = process_pending(sessions, settings)
        t2, cpu = time.perf_counter(), time.process_time() - cpu
        with engine.connect() as conn:
            by_state = dict(conn.execute(text("SELECT state, count(*) FROM recipients GROUP BY state")).all())
        floor = floor_rate(engine, n)
        engine.dispose()
    assert stats.reports == n and stats.matched == n, stats
    assert by_state.get("delivered", 0) + by_state.get("undelivered", 0) == n, by_state
    rate = n / (t2 - t1)
    print(f"command: python {' '.join(sys.argv)}\nstore: {backend_name(args.database_url)}")
    print(f"records: {n:,}  bodies: {len(payload):,}  store raw bodies: {t1 - t0:.2f} s")
    print(f"parse + store + reconcile: {t2 - t1:.2f} s  ->  {rate:,.0f} records/s (target >= {TARGET:,})")
    print(f"CPU time of this process meanwhile: {cpu:.2f} s (the wall time above includes other load)")
    print(
        f"floor, the bare rewrite of the recipients' rows: {floor:,.0f} rows/s; reconcile = {rate / floor:.0%} of it"
    )
    print(f"recipients by state: {by_state}")
    for plan in plans.values():
        print(plan)
    if profiled:
        profiled.report(t2 - t1)
    return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
