"""Benchmark 6 — bounded tables: table sizes and the inbox pass before and after pruning.

200,000 processed webhook events spread over the last 14 days (about 100 pushes a minute
for two days, or 14,000 a day for two weeks), with delivered Slack messages, resolved
alerts and stale checks in proportion, are inserted straight into a migrated database in
bulk (this is a table-size benchmark, not an intake one). Then, on SQLite and PostgreSQL:

- the tables' rows and bytes, and the time of one inbox pass over 500 new events and of
  the /metrics inbox-depth query, before pruning (baseline: what main keeps, forever);
- the same pass without `ix_webhook_inbox_processed_at` (main's schema), for the index;
- the pruning itself (MIRRORBOT_RETENTION_DAYS=7, batches of 1,000), then the same
  figures after it.

Exits non-zero if pruning did not shrink every table.

    python bench/retention.py               # 200,000 events, SQLite and PostgreSQL
    python bench/retention.py --tiny        # 2,000 events, SQLite (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import common  # noqa: F401  (puts the repository on sys.path)
import psycopg
from common import table
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import delete, insert, text

from bot.domain import inbox, retention
from bot.store.db import create_engine, session_factory, sync_url
from bot.store.migrate import upgrade_database
from bot.store.models import AlertMessage, MirrorState, OutboxMessage, ScheduledCheck, utcnow

POSTGRES_ADMIN_URL = os.environ.get(
    "MIRRORBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SPREAD = timedelta(days=14)
KEEP = timedelta(days=7)
PASS_EVENTS = 500
PASSES = 5
TABLES = ("webhook_inbox", "slack_outbox", "alert_messages", "scheduled_checks")


def push_payload() -> dict[str, Any]:
    """A push of three commits as GitLab sends it: what main stored per event."""
    author = {"name": "Carol Example", "email": "carol@example.org"}
    commit = {
        "id": "a" * 40,
        "message": "Fix the retry of a failed sync\n\nThe follow-up now waits for GitLab.",
        "title": "Fix the retry of a failed sync",
        "timestamp": "2026-12-01T08:00:00+00:00",
        "url": "https://gitlab.example.org/group/app/-/commit/" + "a" * 40,
        "author": author,
        "added": [],
        "modified": ["bot/slack/delivery.py"],
        "removed": [],
    }
    return {
        "object_kind": "push",
        "event_name": "push",
        "before": "b" * 40,
        "after": "a" * 40,
        "ref": "refs/heads/main",
        "checkout_sha": "a" * 40,
        "user_id": 4,
        "user_name": "Carol Example",
        "user_username": "carol",
        "user_email": "carol@example.org",
        "user_avatar": "https://gitlab.example.org/uploads/-/system/user/avatar/4/avatar.png",
        "project_id": 15,
        "project": {
            "id": 15,
            "name": "app",
            "web_url": "https://gitlab.example.org/group/app",
            "git_ssh_url": "git@gitlab.example.org:group/app.git",
            "git_http_url": "https://gitlab.example.org/group/app.git",
            "namespace": "group",
            "path_with_namespace": "group/app",
            "default_branch": "main",
        },
        "commits": [commit, commit, commit],
        "total_commits_count": 3,
        "repository": {"name": "app", "url": "git@gitlab.example.org:group/app.git"},
    }


# --- filling the tables ----------------------------------------------------------------


def fill(database_url: str, events: int) -> None:
    """Insert `events` processed events (and the other tables in proportion), oldest first."""
    now = utcnow()
    step = SPREAD / events
    engine = create_sync_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            state = connection.execute(
                insert(MirrorState)
                .values(
                    project_id=15,
                    project_path="group/app",
                    mirror_key="push:1",
                    update_status="finished",
                    enabled=True,
                    alert_state="ok",
                    episode=0,
                    observed_at=now,
                )
                .returning(MirrorState.id)
            ).scalar_one()
            if engine.dialect.name == "postgresql":
                _copy_events(connection, events, now, step)
            else:
                _insert_events(connection, events, now, step)
            others = max(10, events // 20)
            oldest = [now - SPREAD + step * 20 * n for n in range(others)]
            connection.execute(
                insert(OutboxMessage),
                [
                    {
                        "dedupe_key": f"alert:{n}",
                        "method": "alert",
                        "channel_id": "C1",
                        "payload": {"text": "Mirror failing", "blocks": []},
                        "status": "sent",
                        "attempts": 1,
                        "next_attempt_at": at,
                        "created_at": at,
                        "sent_at": at,
                        "message_ts": f"{n}.0001",
                    }
                    for n, at in enumerate(oldest)
                ],
            )
            connection.execute(
                insert(AlertMessage),
                [
                    {
                        "mirror_state_id": state,
                        "channel_id": "C1",
                        "episode": n,
                        "outbox_key": f"alert:{n}",
                        "updates": 0,
                        "reminders": 0,
                        "posted_at": at,
                        "resolved_at": at + timedelta(minutes=30),
                    }
                    for n, at in enumerate(oldest)
                ],
            )
            connection.execute(
                insert(ScheduledCheck),
                [
                    {"project_id": n, "reason": "old", "due_at": at, "created_at": at}
                    for n, at in enumerate(oldest)
                ],
            )
    finally:
        engine.dispose()


def _insert_events(connection: Any, events: int, now: Any, step: timedelta) -> None:
    rows = []
    for n in range(events):
        at = now - SPREAD + step * n
        rows.append(
            {
                "delivery_key": f"delivery-{n}",
                "event_uuid": f"event-{n}",
                "event_kind": "Push Hook/push",
                "project_id": 1 + n % 500,
                "received_at": at,
                "process_after": at,
                "processed_at": at + timedelta(seconds=1),
                "attempts": 0,
            }
        )
    connection.execute(insert(inbox.WebhookEvent), rows)


def _copy_events(connection: Any, events: int, now: Any, step: timedelta) -> None:
    raw = connection.connection.dbapi_connection
    columns = (
        "delivery_key, event_uuid, event_kind, project_id, received_at, process_after, "
        "processed_at, attempts"
    )
    with raw.cursor() as cursor, cursor.copy(f"COPY webhook_inbox ({columns}) FROM STDIN") as copy:
        for n in range(events):
            at = now - SPREAD + step * n
            copy.write_row(
                (
                    f"delivery-{n}",
                    f"event-{n}",
                    "Push Hook/push",
                    1 + n % 500,
                    at,
                    at,
                    at + timedelta(seconds=1),
                    0,
                )
            )


# --- measuring -------------------------------------------------------------------------


def table_figures(database_url: str) -> dict[str, tuple[int, int]]:
    """(rows, bytes) per table, indexes included. SQLite: the pages each table's b-trees
    use (freed pages are reused, not counted). PostgreSQL: after VACUUM FULL, what the
    live rows occupy (plain autovacuum leaves the files at their high-water mark and
    reuses the space, so they stop growing)."""
    engine = create_sync_engine(sync_url(database_url), isolation_level="AUTOCOMMIT")
    figures = {}
    try:
        with engine.connect() as connection:
            for name in TABLES:
                rows = connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()  # noqa: S608 (a fixed name)
                if engine.dialect.name == "postgresql":
                    connection.execute(text(f"VACUUM FULL {name}"))
                    size = connection.execute(
                        text(f"SELECT pg_total_relation_size('{name}')")
                    ).scalar_one()
                else:
                    size = connection.execute(
                        text(
                            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
                            "(SELECT name FROM sqlite_master WHERE tbl_name = :table)"
                        ),
                        {"table": name},
                    ).scalar_one()
                figures[name] = (int(rows), int(size))
            if engine.dialect.name == "sqlite":
                connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        engine.dispose()
    return figures


def set_index(database_url: str, present: bool) -> None:
    engine = create_sync_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            if present:
                connection.execute(
                    text(
                        "CREATE INDEX ix_webhook_inbox_processed_at "
                        "ON webhook_inbox (processed_at, id)"
                    )
                )
            else:
                connection.execute(text("DROP INDEX ix_webhook_inbox_processed_at"))
            if engine.dialect.name == "postgresql":
                connection.execute(text("ANALYZE webhook_inbox"))
            else:
                connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()


async def pass_times(database_url: str) -> tuple[float, float]:
    """Median ms of an inbox pass over PASS_EVENTS new events, and of the depth query."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    passes, depths = [], []
    try:
        for _ in range(PASSES):
            async with sessions.begin() as session:
                now = utcnow()
                await session.execute(
                    insert(inbox.WebhookEvent),
                    [
                        {
                            "delivery_key": f"new-{uuid.uuid4().hex}",
                            "event_kind": "Push Hook/push",
                            "project_id": 1 + n % 500,
                            "received_at": now,
                            "process_after": now,
                            "attempts": 0,
                        }
                        for n in range(PASS_EVENTS)
                    ],
                )
            started = time.perf_counter()
            pending = await inbox.depth(sessions)
            depths.append(time.perf_counter() - started)
            assert pending == PASS_EVENTS, pending
            started = time.perf_counter()
            done = await inbox.process_pending(
                sessions, check_delays=(15.0, 120.0), limit=PASS_EVENTS
            )
            passes.append(time.perf_counter() - started)
            assert done == PASS_EVENTS, done
        async with sessions.begin() as session:  # leave the tables as they were measured
            await session.execute(
                delete(inbox.WebhookEvent).where(inbox.WebhookEvent.delivery_key.like("new-%"))
            )
            await session.execute(delete(ScheduledCheck).where(ScheduledCheck.reason != "old"))
    finally:
        await engine.dispose()
    return statistics.median(passes) * 1000, statistics.median(depths) * 1000


async def timed_prune(database_url: str) -> tuple[retention.Pruned, float]:
    engine = create_engine(database_url)
    try:
        started = time.perf_counter()
        pruned = await retention.prune(session_factory(engine), keep=KEEP)
        return pruned, time.perf_counter() - started
    finally:
        await engine.dispose()


def fresh_postgres() -> str:
    name = f"mirrorbot_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_postgres(url: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def bench_backend(name: str, url: str, events: int, figures: dict[str, Any]) -> bool:
    upgrade_database(url)
    started = time.perf_counter()
    fill(url, events)
    loaded = time.perf_counter() - started
    before = table_figures(url)
    pass_before, depth_before = asyncio.run(pass_times(url))
    set_index(url, present=False)
    pass_unindexed, depth_unindexed = asyncio.run(pass_times(url))
    set_index(url, present=True)
    pruned, prune_seconds = asyncio.run(timed_prune(url))
    after = table_figures(url)
    pass_after, depth_after = asyncio.run(pass_times(url))

    rows: list[tuple[str, Any, Any]] = []
    for table_name in TABLES:
        rows.append((f"{table_name} rows", after[table_name][0], before[table_name][0]))
        rows.append(
            (
                f"{table_name} MB",
                after[table_name][1] / 2**20,
                before[table_name][1] / 2**20,
            )
        )
    rows += [
        (f"inbox pass, {PASS_EVENTS} events, ms", pass_after, pass_before),
        ("/metrics inbox depth, ms", depth_after, depth_before),
    ]
    print(table(f"{name}: mirrorbot = after pruning, baseline = before (kept forever)", rows))
    print(
        table(
            f"{name}: before pruning, mirrorbot = with the index, baseline = without (main)",
            [
                (f"inbox pass, {PASS_EVENTS} events, ms", pass_before, pass_unindexed),
                ("/metrics inbox depth, ms", depth_before, depth_unindexed),
            ],
        )
    )
    batches = sum(-(-count // retention.BATCH) or 1 for count in pruned.rows.values())
    print(
        f"\n{name}: loaded {events:,} events in {loaded:.1f} s; pruned {pruned.total:,} rows "
        f"({pruned.rows}) in {prune_seconds:.2f} s, {batches} batches, "
        f"{prune_seconds / batches * 1000:.1f} ms per batch (one transaction each)"
    )
    figures[name] = {
        "rows_before": {t: before[t][0] for t in TABLES},
        "rows_after": {t: after[t][0] for t in TABLES},
        "pruned": pruned.total,
    }
    return all(after[t][0] < before[t][0] and after[t][1] < before[t][1] for t in TABLES)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--figures", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    if args.tiny:
        args.events, args.no_postgres = 2_000, True
    payload = len(json.dumps(push_payload()).encode())
    print(
        f"bounded tables: {args.events:,} processed webhook events over the last "
        f"{SPREAD.days} days, kept {KEEP.days} days"
    )
    print(
        f"payload stored per push event: mirrorbot 0 bytes, baseline (main) {payload:,} bytes "
        f"for a push of 3 commits ({payload * args.events / 2**20:,.0f} MB for all events)"
    )
    shrunk, figures = True, {"events": args.events}
    with tempfile.TemporaryDirectory() as folder:
        backends = [("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}")]
        if not args.no_postgres:
            backends.append(("postgres", fresh_postgres()))
        for name, url in backends:
            try:
                shrunk = bench_backend(name, url, args.events, figures) and shrunk
            finally:
                if name == "postgres":
                    drop_postgres(url)
    if args.figures:
        args.figures.write_text(json.dumps(figures))
    if not shrunk:
        print("\nFAILED: pruning did not shrink every table")
    return 0 if shrunk else 1


if __name__ == "__main__":
    sys.exit(main())
