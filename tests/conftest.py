"""Shared fixtures: the GitLab simulator, the Slack stand-in, SQLite and PostgreSQL.

PostgreSQL is never skipped: if the local server is down, the tests that need it fail
and say how to start it (`.ci/run` starts it first).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.gitlab.client import GitLabClient, RetryPolicy, create_http_client
from bot.gitlab.http import GitLabHTTP
from bot.simulator import GitLabSimulator, Timing, World
from bot.simulator.world import SimProject, SimPushMirror, SimUser
from bot.store.crypto import TokenCipher, generate_key
from bot.store.db import create_engine, session_factory
from bot.store.migrate import upgrade_database
from tests.fakes.slack import SlackStandIn

POSTGRES_ADMIN_URL = os.environ.get(
    "MIRRORBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
FAST_RETRY = RetryPolicy(max_attempts=4, budget_seconds=5.0, base_delay=0.01, max_delay=0.05)

DEVELOPER, MAINTAINER = 30, 40
ALICE_TOKEN = "glpat-alice-maintainer-0001"
DAVE_TOKEN = "glpat-dave-developer-00002"
BOB_TOKEN = "glpat-bob-maintainer-00004"
READER_TOKEN = "glpat-rita-readapi-000003"


@dataclass
class SampleGitLab:
    """A small GitLab: alice maintains group/app, dave is a developer there."""

    world: World
    alice: SimUser
    bob: SimUser
    dave: SimUser
    app: SimProject
    https_mirror: SimPushMirror
    ssh_mirror: SimPushMirror


def sample_world() -> SampleGitLab:
    world = World(
        Timing(
            update_seconds=0.05,
            retry_seconds=0.05,
            sync_backoff_seconds=0,
            protected_sync_backoff_seconds=0,
            pull_interval_seconds=0,
        )
    )
    alice = world.add_user("alice")
    bob = world.add_user("bob")
    dave = world.add_user("dave")
    rita = world.add_user("rita")
    world.add_token(alice, ALICE_TOKEN)
    world.add_token(dave, DAVE_TOKEN)
    world.add_token(bob, BOB_TOKEN)
    world.add_token(rita, READER_TOKEN, scopes=["read_api"])
    app = world.add_project(
        "group/app", {alice: MAINTAINER, bob: MAINTAINER, dave: DEVELOPER, rita: MAINTAINER}
    )
    world.add_project("group/secret", {})
    https_mirror = world.add_push_mirror(
        app, "https://mirror-bot:s3cr3t-pass@github.example.org/acme/app.git", enabled=True
    )
    ssh_mirror = world.add_push_mirror(
        app, "ssh://git@ssh.example.org/acme/app.git", enabled=True, auth_method="ssh_public_key"
    )
    return SampleGitLab(world, alice, bob, dave, app, https_mirror, ssh_mirror)


@pytest.fixture
def sample() -> SampleGitLab:
    return sample_world()


@pytest.fixture
def gitlab_sim(sample: SampleGitLab) -> Iterator[GitLabSimulator]:
    with GitLabSimulator(sample.world) as simulator:
        yield simulator


@pytest.fixture
async def gitlab_http(gitlab_sim: GitLabSimulator) -> AsyncIterator[GitLabHTTP]:
    http = create_http_client(gitlab_sim.url, timeout=5.0)
    yield http
    await http.aclose()


@pytest.fixture
def alice_gitlab(gitlab_http: GitLabHTTP) -> GitLabClient:
    return GitLabClient(gitlab_http, ALICE_TOKEN, FAST_RETRY)


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn() as stand_in:
        yield stand_in


# --- databases -------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mirrorbot.db'}"


_migrated_sqlite = tempfile.TemporaryDirectory(prefix="mirrorbot-template-")
MIGRATED_SQLITE = Path(_migrated_sqlite.name) / "migrated.db"


def migrate(database_url: str) -> None:
    """`upgrade_database`, but a new SQLite file is a copy of one this process migrated once:
    the same schema without running every migration for every test. The migrations
    themselves are proved in tests/store/test_migrations.py."""
    url = make_url(database_url)
    target = Path(url.database or "")
    if url.get_backend_name() != "sqlite" or not url.database or target.exists():
        upgrade_database(database_url)
        return
    if not MIGRATED_SQLITE.exists():
        upgrade_database(f"sqlite:///{MIGRATED_SQLITE}")
    with closing(sqlite3.connect(MIGRATED_SQLITE)) as source:
        with closing(sqlite3.connect(target)) as copy:
            source.backup(copy)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database on the local server for this test session (each xdist worker has
    its own), dropped afterwards."""
    name = f"mirrorbot_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({exc}). Start it with: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's database with an empty public schema."""
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Both backends, for tests that prove database behaviour."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated SQLite database for tests that are not about the database itself."""
    migrate(sqlite_url)
    engine = create_engine(sqlite_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher([generate_key()])
