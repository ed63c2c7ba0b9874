"""GitLab's own rate limit, shared with other clients of the service token: the bot reads
`RateLimit-Remaining` / `RateLimit-Reset` and waits for the reset instead of meeting 429."""

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bot.simulator.rate_limits import RateLimit
from bot.store.crypto import generate_key
from bot.store.db import sync_url
from bot.store.models import Subscription
from tests.conftest import ALICE_TOKEN
from tests.fakes.slack import TEAM_ID
from tests.slack.conftest import start_harness

PROJECTS = 15  # 30 requests for a refresh: more than one of GitLab's windows holds


def test_a_refresh_waits_for_gitlabs_reset_instead_of_meeting_its_429(
    sample, gitlab_sim, slack, sqlite_url
):
    projects = []
    for n in range(PROJECTS):
        project = sample.world.add_project(f"fleet/p-{n:02d}", {sample.alice: 40})
        mirror = sample.world.add_push_mirror(project, f"https://m.example.org/{n}.git")
        sample.world.succeed_at(mirror, sample.world.clock())
        projects.append(project)
    h = start_harness(sample, gitlab_sim, slack, sqlite_url, generate_key())
    try:
        engine = create_engine(sync_url(sqlite_url))
        with Session(engine) as session, session.begin():
            session.add_all(
                Subscription(
                    slack_team_id=TEAM_ID,
                    channel_id="CFLEET",
                    project_id=p.id,
                    project_path=p.path,
                    created_by="UOPS",
                )
                for p in projects
            )
        engine.dispose()
        # GitLab allows 20 requests per 3 s window, and another client of the same user
        # has just spent 12 of this window's.
        gitlab_sim.rate_limit = RateLimit(limit=20, period=3.0)
        gitlab_sim.requests.clear()
        gitlab_sim.rate_limit.spend(sample.alice.username, 12)
        h.link("UALICE", ALICE_TOKEN)  # a refresh spends the budget: linked people only
        h.command("status --refresh", channel="CFLEET")
        h.wait_response("just refreshed", timeout=30)
        answered = [r for r in gitlab_sim.requests.matching() if "/projects/" in r.path]
        # Every project's mirrors were read (the monitor's own first scan may have read
        # them too), and none of those reads met GitLab's 429.
        read = {r.path.split("/")[2] for r in answered if "mirror" in r.path}
        assert read == {str(p.id) for p in projects}
        assert 429 not in [r.status for r in answered]
    finally:
        h.server.stop()
