"""Migrations run from empty on SQLite and PostgreSQL, match the models, and go back down."""

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from bot.store.db import sync_url
from bot.store.migrate import downgrade_database, upgrade_database
from bot.store.models import Base

TABLES = {
    "linked_accounts",
    "subscriptions",
    "mutes",
    "approval_requests",
    "audit_log",
    "mirror_states",
    "alert_messages",
    "webhook_inbox",
    "slack_outbox",
    "project_checks",
}


def tables_of(database_url: str) -> set[str]:
    engine = create_engine(sync_url(database_url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_every_table(database_url: str):
    upgrade_database(database_url)
    assert TABLES <= tables_of(database_url)


def test_migrations_match_the_models(database_url: str):
    upgrade_database(database_url)
    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_to_empty_and_up_again(database_url: str):
    upgrade_database(database_url)
    downgrade_database(database_url)
    assert tables_of(database_url) - {"alembic_version"} == set()
    upgrade_database(database_url)
    assert TABLES <= tables_of(database_url)


def test_upgrade_twice_is_harmless(database_url: str):
    upgrade_database(database_url)
    upgrade_database(database_url)
    assert TABLES <= tables_of(database_url)


def test_two_replicas_migrating_at_once_both_succeed(postgres_url: str):
    # Separate processes, like real replicas (Alembic's context is per process).
    script = (
        "import sys; from bot.store.migrate import upgrade_database; upgrade_database(sys.argv[1])"
    )
    replicas = [subprocess.Popen([sys.executable, "-c", script, postgres_url]) for _ in range(2)]
    assert [replica.wait(timeout=60) for replica in replicas] == [0, 0]
    assert TABLES <= tables_of(postgres_url)
