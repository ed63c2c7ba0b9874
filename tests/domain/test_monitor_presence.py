"""The monitor reads only the mirrors a project has, looks again for the others every Nth
scan, and keeps what it learned in the database (a restart or another replica goes on
from it). Counted at the GitLab simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.domain.monitor import scan
from bot.gitlab.client import GitLabClient, create_http_client
from bot.simulator import GitLabSimulator, World
from bot.store.db import create_engine, session_factory, transaction
from bot.store.migrate import upgrade_database
from bot.store.models import MirrorPresence, MirrorState
from tests.conftest import ALICE_TOKEN, FAST_RETRY, MAINTAINER
from tests.domain.rows import subscription

EVERY = 3


@pytest.fixture
def fleet():
    world = World()
    service = world.add_user("monitor")
    world.add_token(service, ALICE_TOKEN)
    projects = {}
    for name in ("push-only", "pull-only", "none", "both"):
        projects[name] = world.add_project(f"fleet/{name}", {service: MAINTAINER})
    for name in ("push-only", "both"):
        world.add_push_mirror(projects[name], f"https://m.example.org/{name}.git", enabled=True)
    for name in ("pull-only", "both"):
        world.set_pull_mirror(projects[name], f"https://up.example.org/{name}.git", enabled=True)
    with GitLabSimulator(world) as simulator:
        yield world, projects, simulator


async def watch(database_url: str, projects) -> None:
    upgrade_database(database_url)
    engine = create_engine(database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            for project in projects.values():
                session.add(subscription(project.id, "C", project.path))
    finally:
        await engine.dispose()


async def scans(database_url: str, simulator: GitLabSimulator, count: int) -> None:
    """`count` scans by a fresh process's worth of objects (engine, pool, client)."""
    engine = create_engine(database_url)
    http = create_http_client(simulator.url)
    gitlab = GitLabClient(http, ALICE_TOKEN, FAST_RETRY)
    try:
        for _ in range(count):
            await scan(
                session_factory(engine),
                gitlab,
                concurrency=4,
                remind_after=timedelta(days=1),
                recheck_every=EVERY,
            )
    finally:
        await http.aclose()
        await engine.dispose()


def reads(simulator: GitLabSimulator, project, what: str) -> int:
    suffix = "/remote_mirrors" if what == "push" else "/mirror/pull"
    return sum(
        1 for r in simulator.requests.entries if r.path in (f"/projects/{project.id}{suffix}",)
    )


async def test_each_project_is_read_only_for_the_mirrors_it_has_between_rechecks(
    database_url, fleet
):
    _, projects, simulator = fleet
    await watch(database_url, projects)
    await scans(database_url, simulator, 1)  # learns: everything is read once
    for project in projects.values():
        assert reads(simulator, project, "push") == reads(simulator, project, "pull") == 1
    simulator.requests.clear()
    # Later scans, by a new process each time (what was learned is in the database).
    for _ in range(EVERY):
        await scans(database_url, simulator, 1)
    assert reads(simulator, projects["push-only"], "push") == EVERY
    assert reads(simulator, projects["push-only"], "pull") == 1  # its one re-check
    assert reads(simulator, projects["pull-only"], "pull") == EVERY
    assert reads(simulator, projects["pull-only"], "push") == 1
    assert (
        reads(simulator, projects["both"], "push")
        == reads(simulator, projects["both"], "pull")
        == EVERY
    )
    assert (
        reads(simulator, projects["none"], "push")
        == reads(simulator, projects["none"], "pull")
        == 1
    )
    # One request per scan for each kind of mirror a project has, plus one re-check of
    # what it lacks per EVERY scans: 4 + 4 + 6 + 2, against 2 per project and scan before.
    assert len(simulator.requests.entries) == 16 < 2 * len(projects) * EVERY


async def test_a_mirror_added_to_a_project_that_had_none_is_found_within_n_scans(
    database_url, fleet
):
    world, projects, simulator = fleet
    await watch(database_url, projects)
    await scans(database_url, simulator, 1)
    bare = projects["none"]
    mirror = world.add_push_mirror(bare, "https://late.example.org/x.git", enabled=True)
    world.fail_now(mirror, "fatal: Authentication failed for 'https://late.example.org/'")
    await scans(database_url, simulator, EVERY)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            state = await session.scalar(
                select(MirrorState.alert_state).where(
                    MirrorState.project_id == bare.id, MirrorState.mirror_key == f"push:{mirror.id}"
                )
            )
            presence = await session.get(MirrorPresence, bare.id)
    finally:
        await engine.dispose()
    assert state == "failing"
    assert presence is not None and presence.has_push_mirrors and not presence.has_pull_mirror
