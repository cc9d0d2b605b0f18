"""Reconcile benchmark: N pulled report records (yunxin GetReport2 format, 500 a body) ingested from the
inbox and reconciled against a stored campaign of N accepted recipients, on SQLite (a temporary file)
or on the PostgreSQL of ``--database-url`` (a fresh schema, dropped afterwards).

    python bench/reconcile.py            # 1,000,000 records (target >= 50,000 records/s)
    python bench/reconcile.py --quick    # 100,000 records, well under a minute
    python bench/reconcile.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Figures on the 2-core machine, with other engineers' tests running (load average about 2), 1,000,000
records, ``/work/venv/bin/python bench/reconcile.py``:
- before (commit 137d517: reports inserted, then matched by an UPDATE of ``reports``, applied by a
  group-by over ``reports``): 43,110 records/s (23.20 s), run between the two runs below; 49,333
  records/s in an earlier run; ~36,000 records/s as first measured by the author.
- after (reports staged in a temporary table, matched there, written once with their match by
  INSERT ... SELECT, applied from the stage; a body of fast-shape records read by one findall):
  69,701 records/s (14.35 s wall, 13.13 s CPU) and 63,111 records/s (15.85 s wall, 14.92 s CPU).
  Under a heavier load (load average ~5) one run gave 57,038 records/s.
Where the time goes now (CPU, 1M): updating the recipients ~5.4 s, matching on the stage ~2.3 s,
INSERT ... SELECT into ``reports`` (with its 4 indexes) ~2.2 s; parsing, staging and commits the rest.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from types import MappingProxyType

from scratch_store import backend_name, scratch_store
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from dispatcher.config import AccountConfig, Settings
from dispatcher.results.inbox import process_pending
from dispatcher.store import NewRecipient, bulk_insert_recipients, make_engine, session_factory

PER_BODY = 500
FIRST = 13000000000


def build_store(url: str, n: int) -> None:
    sessions = session_factory(make_engine(url))
    with sessions() as session:
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
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


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


def profile(engine: Engine) -> dict[str, list[float]]:
    """Per statement shape, its count and total time (SQLAlchemy cursor events: the server's work plus
    the round trip; a COPY and the commits are not statements here and fall into the rest)."""
    times: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    each: list[tuple[float, str]] = []
    times["__each__"] = each  # type: ignore[assignment]

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        conn.info["t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        shape = re.sub(r"\s+", " ", statement).strip()[:110]
        entry = times[shape]
        entry[0] += 1
        took = time.perf_counter() - conn.info.pop("t0")
        entry[1] += took
        each.append((took, shape[:30]))

    return times


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
                if query.startswith("UPDATE recipients"):
                    top = [line for line in message.splitlines()[:5] if "Buffers" in line or "WAL" in line or "duration" in line]
                    plans.setdefault("__recipients__", "")
                    plans["__recipients__"] += " | ".join(top) + "\n"

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
    parser.add_argument("--explain", action="store_true", help="PostgreSQL: print the latest plans (auto_explain)")
    args = parser.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    with scratch_store(args.database_url, "bench_reconcile") as url:
        build_store(url, n)
        account = AccountConfig("bench", "yunxin", "http://127.0.0.1:9", "u", "p")
        settings = Settings(url, "memory://", accounts=MappingProxyType({"bench": account}))
        engine = make_engine(url)
        sessions = session_factory(engine)
        times = profile(engine) if args.profile else {}
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
        engine.dispose()
    assert stats.reports == n and stats.matched == n, stats
    assert by_state.get("delivered", 0) + by_state.get("undelivered", 0) == n, by_state
    rate = n / (t2 - t1)
    print(f"command: python {' '.join(sys.argv)}\nstore: {backend_name(args.database_url)}")
    print(f"records: {n:,}  bodies: {len(payload):,}  store raw bodies: {t1 - t0:.2f} s")
    print(f"parse + store + reconcile: {t2 - t1:.2f} s  ->  {rate:,.0f} records/s (target >= 50,000)")
    print(f"CPU time of this process meanwhile: {cpu:.2f} s (the wall time above includes other load)")
    print(f"recipients by state: {by_state}")
    for plan in plans.values():
        print(plan)
    each = times.pop("__each__", None)
    if each:
        for head in ("UPDATE recipients", "UPDATE report_stage SET recipient_id=recipients.id FROM recipients", "INSERT INTO reports"):
            ups = [round(t * 1000) for t, s in each if s.startswith(head[:30])]
            print(head[:30], "ms per batch:", ups)
    if times:
        ranked = sorted(times.items(), key=lambda kv: -kv[1][1])
        spent = sum(t for _, t in times.values())
        print(f"statements: {spent:.2f} s of {t2 - t1:.2f} s (the rest: parsing, COPY, commits)")
        for shape, (count, total) in ranked[:12]:
            print(f"  {total:7.2f} s  {count:6d}x  {shape}")
    return 0 if rate >= 50_000 else 1


if __name__ == "__main__":
    sys.exit(main())
