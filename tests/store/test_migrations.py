"""The migrations create exactly what the models describe, on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from dispatcher.store.engine import MIGRATIONS, alembic_config, make_engine, upgrade
from dispatcher.store.models import Base
from tests.store.conftest import PG_URL, pg_schema_url


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    assert PG_URL
    schema = f"test_mig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_given_empty_db_when_upgrade_head_then_schema_matches_models(empty_url: str) -> None:
    # When
    upgrade(empty_url)
    # Then: autogenerate finds nothing to change
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert set(inspect(conn).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    finally:
        engine.dispose()


def test_given_upgraded_db_then_recipient_batch_index_is_partial(empty_url: str) -> None:
    # compare_metadata does not compare WHERE clauses of indexes: check this one directly.
    upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            indexes = {i["name"]: i for i in inspect(conn).get_indexes("recipients")}
        options = indexes["ix_recipients_batch_id_mobile"].get("dialect_options", {})
        where = options.get(f"{engine.dialect.name}_where")
        assert where is not None and "batch_id IS NOT NULL" in str(where)
    finally:
        engine.dispose()


def test_given_upgraded_db_when_upgrade_again_then_nothing_changes(empty_url: str) -> None:
    # Given
    upgrade(empty_url)
    # When / Then: a second run is a no-op (``dispatcher db upgrade`` is safe to repeat)
    upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    finally:
        engine.dispose()


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
def test_given_an_empty_db_when_several_processes_upgrade_it_at_once_then_all_succeed(empty_url: str) -> None:
    # Given an empty database and the processes docker compose starts together (web, worker, beat),
    # each running `dispatcher db upgrade` first
    env = {**os.environ, "DISPATCHER_DATABASE_URL": empty_url}
    command_line = [sys.executable, "-m", "dispatcher", "db", "upgrade"]
    # When they upgrade it at the same moment
    processes = [
        subprocess.Popen(command_line, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in processes]
    # Then every one succeeds (none fails creating a table another created), and the schema is at head
    assert [p.returncode for p in processes] == [0] * 4, "\n".join(outputs)
    head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    finally:
        engine.dispose()


def test_given_upgraded_db_when_downgrade_base_then_all_tables_are_gone(empty_url: str) -> None:
    # Given
    upgrade(empty_url)
    # When
    command.downgrade(alembic_config(empty_url), "base")
    # Then
    engine = make_engine(empty_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_are_package_files_not_working_directory_files() -> None:
    # Given the packaged migration directory: it has what alembic needs, found relative to the package
    assert (MIGRATIONS / "env.py").is_file()
    assert (MIGRATIONS / "script.py.mako").is_file()
    # versions/ must be a package for setuptools' find_packages to ship it in a non-editable install
    assert (MIGRATIONS / "__init__.py").is_file()
    assert (MIGRATIONS / "versions" / "__init__.py").is_file()
    assert list((MIGRATIONS / "versions").glob("0001_*.py"))


def test_given_chunks_before_0005_when_upgraded_then_split_numbers_start_after_the_planned_ones(
    empty_url: str,
) -> None:
    # Given a store at 0001 with a campaign of five chunks (seq 0-4) and one without chunks
    upgrade(empty_url, "0001")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            for name in ("planned", "empty"):
                conn.execute(
                    text(
                        "INSERT INTO campaigns (name, account, vendor, template, state, window_start, window_end,"
                        " timezone, created_by, created_at, updated_at) VALUES (:n, 'a', 'yunxin', 't', 'running',"
                        " 0, 1440, 'Asia/Shanghai', 'ann', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"n": name},
                )
            for seq in range(5):
                conn.execute(
                    text(
                        "INSERT INTO chunks (campaign_id, seq, ref, method, recipient_count, state, attempts,"
                        " created_at, updated_at) VALUES (1, :s, :r, 'same_text', 1, 'queued', 0,"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"s": seq, "r": f"1{seq:07d}"},
                )
        # When
        upgrade(empty_url)
        # Then (the chunks are still there: no table was copied, whose drop would cascade to them)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM chunks")).scalar_one() == 5
            assert conn.execute(text("SELECT id, next_seq FROM campaigns ORDER BY id")).all() == [
                (1, 5),
                (2, 0),
            ]
            flags = conn.execute(text("SELECT DISTINCT requeued_from_unknown FROM chunks")).scalars().all()
            assert [bool(f) for f in flags] == [False]
    finally:
        engine.dispose()


def test_given_a_store_with_reports_when_the_recipients_table_is_copied_then_nothing_is_lost(
    empty_url: str,
) -> None:
    # Given a store at 0001 with a reported recipient (SQLite copies a table to drop a constraint)
    upgrade(empty_url, "0001")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO campaigns (id, name, account, vendor, template, state, window_start,"
                    " window_end, timezone, created_by, created_at, updated_at) VALUES (1, 'c', 'a', 'yunxin',"
                    " 't', 'running', 0, 1440, 'UTC', 'ann', '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO chunks (id, campaign_id, seq, ref, method, recipient_count, state, attempts,"
                    " created_at, updated_at) VALUES (1, 1, 0, '1', 'SendMsg', 1, 'accepted', 1,"
                    " '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO recipients (id, campaign_id, row_number, position, mobile, segments, state,"
                    " chunk_id, batch_id) VALUES (1, 1, 2, 0, '13900000001', 1, 'delivered', 1, 'b1')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO reports (id, account, batch_id, mobile, status, recipient_id)"
                    " VALUES (1, 'a', 'b1', '13900000001', 'DELIVRD', 1)"
                )
            )
        # When: upgraded to head (0006 drops the chunk_id foreign key, 0011 the campaign_id one)
        upgrade(empty_url)
        # Then: the recipient, its chunk and the report's link to it are all still there
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id, chunk_id, batch_id FROM recipients")).all() == [(1, 1, "b1")]
            assert conn.execute(text("SELECT id, recipient_id FROM reports")).all() == [(1, 1)]
            # No per-row trigger left for a bulk upload to pay (BENCHMARKS.md, "Ingest, fifth round")
            assert inspect(conn).get_foreign_keys("recipients") == []
    finally:
        engine.dispose()


def _row(conn: Any, table: str, values: dict[str, Any]) -> None:
    names = ", ".join(values)
    conn.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + k for k in values)})"), values)


def test_given_a_store_at_0005_with_data_when_upgraded_to_0007_then_every_row_stays_and_the_new_states_hold(
    empty_url: str,
) -> None:
    # Given a store at 0005: a cancelled campaign with its chunks, a sent row, a cancelled row (failed,
    # class cancelled, as a cancel wrote it then), a reply and an audit entry pointing at it
    upgrade(empty_url, "0005")
    engine = make_engine(empty_url)
    now = "2026-12-01 08:00:00"
    try:
        with engine.begin() as conn:
            _row(conn, "campaigns", {"name": "c", "account": "a", "vendor": "yunxin", "template": "t",
                                     "state": "cancelled", "window_start": 0, "window_end": 1440,
                                     "timezone": "Asia/Shanghai", "created_by": "ann", "created_at": now,
                                     "updated_at": now})  # fmt: skip
            for seq, state in enumerate(("accepted", "failed")):
                _row(conn, "chunks", {"campaign_id": 1, "seq": seq, "ref": f"1{seq:07d}", "method": "single",
                                      "recipient_count": 1, "state": state, "attempts": 0, "created_at": now,
                                      "updated_at": now})  # fmt: skip
            for position, (state, error_class) in enumerate((("accepted", None), ("failed", "cancelled"))):
                _row(conn, "recipients", {"campaign_id": 1, "row_number": position + 2, "position": position,
                                          "mobile": f"1390000000{position}", "segments": 1, "state": state,
                                          "error_class": error_class, "chunk_id": position + 1})  # fmt: skip
            _row(
                conn,
                "audit_log",
                {"at": now, "actor": "ann", "action": "campaign.cancelled", "campaign_id": 1},
            )
        # When
        upgrade(empty_url)
        # Then nothing was lost (no table was copied, whose drop would cascade to its children)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM chunks")).scalar_one() == 2
            assert conn.execute(text("SELECT campaign_id FROM audit_log")).scalar_one() == 1
            states = conn.execute(text("SELECT mobile, state FROM recipients ORDER BY id")).all()
            assert states == [("13900000000", "accepted"), ("13900000001", "cancelled")]
            assert conn.execute(text("SELECT proof FROM campaigns")).scalar_one() in (0, False)
        # and the new states are allowed, an unknown one still refused
        with engine.begin() as conn:
            conn.execute(text("UPDATE campaigns SET state = 'sent'"))
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE campaigns SET state = 'finished'"))
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE recipients SET state = 'gone'"))
        # When downgraded again, the rows go back to the states 0005 knows
        command.downgrade(alembic_config(empty_url), "0005")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT state FROM campaigns")).scalar_one() == "completed"
            assert (
                conn.execute(text("SELECT COUNT(*) FROM recipients WHERE state = 'failed'")).scalar_one() == 1
            )
            assert conn.execute(text("SELECT COUNT(*) FROM chunks")).scalar_one() == 2
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE campaigns SET state = 'sent'"))
    finally:
        engine.dispose()
