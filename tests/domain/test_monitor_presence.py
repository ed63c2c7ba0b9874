"""The monitor reads only the mirrors a project has, looks again for the others every Nth
scan, and keeps what it learned in the database (a restart or another replica goes on
from it); pull mirrors' states come by GraphQL in batches, combined with what REST taught.
Counted at the GitLab simulator."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.domain import monitor
from bot.domain.monitor import scan
from bot.gitlab.client import GitLabClient, create_http_client
from bot.simulator import Fault, GitLabSimulator, World, graphql_api
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


async def scans(
    database_url: str, simulator: GitLabSimulator, count: int, *, graphql: bool = False
) -> None:
    """`count` scans by a fresh process's worth of objects (engine, pool, client); by
    REST alone unless `graphql`."""
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
                graphql=graphql,
            )
    finally:
        await http.aclose()
        await engine.dispose()


def graphql_requests(simulator: GitLabSimulator) -> int:
    return len(simulator.requests.matching("POST", "/api/graphql"))


async def states(database_url: str, project) -> dict[str, str]:
    """Mirror key → alert state, of the mirrors the monitor keeps for `project`."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(
                select(MirrorState.mirror_key, MirrorState.alert_state).where(
                    MirrorState.project_id == project.id
                )
            )
            return dict(rows.all())
    finally:
        await engine.dispose()


def fail_pull(world: World, project, error: str) -> None:
    """The pull mirror's last update failed (as GitLab leaves it after a failed pull)."""
    with world.lock:
        mirror = project.pull_mirror
        mirror.update_status, mirror.last_error = "failed", error
        mirror.last_update_at = mirror.last_update_started_at = datetime.now(UTC)


def reads(simulator: GitLabSimulator, project, what: str) -> int:
    suffix = "/remote_mirrors" if what == "push" else "/mirror/pull"
    return sum(
        1 for r in simulator.requests.entries if r.path in (f"/projects/{project.id}{suffix}",)
    )


async def test_by_rest_each_project_is_read_only_for_the_mirrors_it_has_between_rechecks(
    database_url, fleet
):
    _, projects, simulator = fleet
    await watch(database_url, projects)
    await scans(database_url, simulator, 1)  # learns: everything is read once (REST alone)
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


@pytest.mark.parametrize("graphql", [False, True], ids=["rest", "graphql"])
async def test_a_mirror_added_to_a_project_that_had_none_is_found_within_n_scans(
    database_url, fleet, graphql
):
    world, projects, simulator = fleet
    await watch(database_url, projects)
    await scans(database_url, simulator, 1, graphql=graphql)
    bare = projects["none"]
    mirror = world.add_push_mirror(bare, "https://late.example.org/x.git", enabled=True)
    world.fail_now(mirror, "fatal: Authentication failed for 'https://late.example.org/'")
    await scans(database_url, simulator, EVERY, graphql=graphql)
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


async def test_by_graphql_pull_states_come_in_one_request_per_scan(database_url, fleet):
    world, projects, simulator = fleet
    projects["imported"] = world.add_project("fleet/imported", {world.users[1]: MAINTAINER})
    world.add_import(projects["imported"], "https://old.example.org/imported.git")
    await watch(database_url, projects)
    await scans(database_url, simulator, 1, graphql=True)
    # Learning: every push list, and the pull mirror only where there is an import state.
    assert graphql_requests(simulator) == 1
    for name in ("push-only", "none"):
        assert reads(simulator, projects[name], "pull") == 0
    for name in ("pull-only", "both", "imported"):
        assert reads(simulator, projects[name], "pull") == 1
    simulator.requests.clear()
    for _ in range(EVERY):
        await scans(database_url, simulator, 1, graphql=True)
    assert graphql_requests(simulator) == EVERY
    # Pull mirrors by REST only at their re-check (is it still a mirror?), and only where
    # GraphQL shows an import state; push lists as by REST alone.
    for name in ("pull-only", "both", "imported"):
        assert reads(simulator, projects[name], "pull") == 1
    for name in ("push-only", "none"):
        assert reads(simulator, projects[name], "pull") == 0
    assert reads(simulator, projects["push-only"], "push") == EVERY
    assert reads(simulator, projects["both"], "push") == EVERY
    for name in ("pull-only", "none", "imported"):
        assert reads(simulator, projects[name], "push") == 1
    # 9 push lists + 3 pull reads + 3 GraphQL, against 18 by REST alone (16, and the
    # imported project's push and pull at its re-check).
    assert len(simulator.requests.entries) == 15


async def test_a_failing_pull_mirror_seen_by_graphql_fails_and_recovers(database_url, fleet):
    world, projects, simulator = fleet
    pulled = projects["pull-only"]
    await watch(database_url, projects)
    await scans(database_url, simulator, 1, graphql=True)
    simulator.requests.clear()
    fail_pull(world, pulled, "fatal: could not read Username for 'https://up.example.org'")
    await scans(database_url, simulator, 1, graphql=True)
    assert await states(database_url, pulled) == {"pull": "failing"}
    world.succeed_at(pulled.pull_mirror, datetime.now(UTC))
    await scans(database_url, simulator, 1, graphql=True)
    assert await states(database_url, pulled) == {"pull": "ok"}
    # Both seen by GraphQL alone (the project's re-check falls on neither scan).
    assert reads(simulator, pulled, "pull") == 0 and graphql_requests(simulator) == 2


async def test_a_one_time_import_is_not_taken_for_a_pull_mirror(database_url, fleet):
    world, projects, simulator = fleet
    imported = world.add_project("fleet/imported", {world.users[1]: MAINTAINER})
    world.add_import(imported, "https://old.example.org/imported.git")
    fail_pull(world, imported, "the import failed")  # an import state that says "failed"
    projects["imported"] = imported
    await watch(database_url, projects)
    await scans(database_url, simulator, EVERY + 1, graphql=True)
    assert await states(database_url, imported) == {}
    # Read by REST to learn, then once per re-check: never once per scan.
    assert reads(simulator, imported, "pull") == 2


async def test_a_pull_mirror_disabled_in_gitlab_stops_being_watched_at_its_recheck(
    database_url, fleet
):
    world, projects, simulator = fleet
    pulled = projects["pull-only"]
    await watch(database_url, projects)
    fail_pull(world, pulled, "fatal: could not read Username for 'https://up.example.org'")
    await scans(database_url, simulator, 1, graphql=True)
    assert await states(database_url, pulled) == {"pull": "failing"}
    pulled.pull_mirror.enabled = False  # GitLab keeps its import state, failed as it was
    simulator.requests.clear()
    await scans(database_url, simulator, EVERY, graphql=True)
    assert reads(simulator, pulled, "pull") == 1  # the re-check: 400 "not mirrored"
    assert await states(database_url, pulled) == {}
    simulator.requests.clear()
    await scans(database_url, simulator, EVERY, graphql=True)
    assert await states(database_url, pulled) == {}
    assert reads(simulator, pulled, "pull") == 1  # its re-checks only, as a one-time import


async def test_graphql_refused_the_scan_reads_pull_mirrors_by_rest_and_says_so_once(
    database_url, fleet, caplog, monkeypatch
):
    world, projects, simulator = fleet
    monkeypatch.setattr(monitor, "_graphql_refused", False)  # as in a fresh process
    simulator.inject(Fault("status", status=404, path="^/api/graphql$", times=None))
    pulled = projects["pull-only"]
    await watch(database_url, projects)
    with caplog.at_level(logging.INFO, logger="bot.domain.monitor"):
        await scans(database_url, simulator, 1, graphql=True)
        fail_pull(world, pulled, "fatal: could not read Username for 'https://up.example.org'")
        simulator.requests.clear()
        await scans(database_url, simulator, EVERY, graphql=True)
    assert await states(database_url, pulled) == {"pull": "failing"}
    assert reads(simulator, pulled, "pull") == EVERY  # by REST, every scan
    assert [r.status for r in simulator.requests.matching("POST", "/api/graphql")] == [404] * EVERY
    said = [r.getMessage() for r in caplog.records if "GraphQL" in r.getMessage()]
    assert said == [
        "pull mirrors are read by REST: GraphQL failed "
        "(GitLab's GraphQL API refused the query: GitLab has no GraphQL API here (404))"
    ]


async def test_a_failure_seen_by_graphql_first_is_not_recovered_by_the_rest_recheck(
    database_url, fleet
):
    """GraphQL writes whole seconds, REST milliseconds: the last success before the failure,
    read by GraphQL, must not look newer when a re-check reads it by REST (a recovery that
    never happened, then the failure alerted again)."""
    world, projects, simulator = fleet
    pulled = projects["pull-only"]
    world.succeed_at(pulled.pull_mirror, datetime.now(UTC).replace(microsecond=823000))
    await watch(database_url, projects)
    await scans(database_url, simulator, 1, graphql=True)  # learns by REST
    fail_pull(world, pulled, "fatal: could not read Username")
    seen = []
    for _ in range(2 * EVERY + 1):  # through REST re-checks and GraphQL scans
        await scans(database_url, simulator, 1, graphql=True)
        seen.append((await states(database_url, pulled))["pull"])
    assert seen == ["failing"] * (2 * EVERY + 1)


async def test_an_odd_null_import_state_of_a_known_pull_mirror_is_asked_of_rest(
    database_url, fleet, monkeypatch
):
    """A pull mirror always has an import state; should GraphQL say null once, REST reads
    it in that scan, and the alert stays as it is."""
    world, projects, simulator = fleet
    pulled = projects["pull-only"]
    await watch(database_url, projects)
    fail_pull(world, pulled, "fatal: could not read Username")
    await scans(database_url, simulator, 1, graphql=True)
    assert await states(database_url, pulled) == {"pull": "failing"}
    real = graphql_api._project

    def null_state(world_, user, project):
        answer = real(world_, user, project)
        return {**answer, "detailedImportStatus": None} if project is pulled else answer

    monkeypatch.setattr(graphql_api, "_project", null_state)
    simulator.requests.clear()
    await scans(database_url, simulator, 1, graphql=True)
    assert await states(database_url, pulled) == {"pull": "failing"}
    assert any(r.path.endswith("/mirror/pull") for r in simulator.requests.entries)
