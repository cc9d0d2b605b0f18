"""The migrations create exactly what the models describe, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

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
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0002"
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
