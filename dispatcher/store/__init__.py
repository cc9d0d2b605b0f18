"""The store: the source of truth (SQLAlchemy 2 models, Alembic migrations, state-machine operations)."""
