"""Alembic environment: synchronous engine, batch mode for SQLite, a lock for PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bot.store.db import sync_url
from bot.store.models import Base

# Any constant shared by all replicas: they may all start and migrate at once.
MIGRATION_LOCK_KEY = 0x6D6972726F72  # "mirror"


def run_migrations_online() -> None:
    database_url = context.config.attributes["database_url"]
    engine = create_engine(sync_url(database_url), poolclass=NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            context.run_migrations()
    engine.dispose()


run_migrations_online()
