"""Monitoring never stops silently: a project the service token can no longer read is
reported once in each watching channel (and when it is readable again); one project's
bad answer does not stop the scan of the others; a moved project keeps being watched."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from bot.simulator.faults import Fault
from bot.store.crypto import generate_key
from tests.conftest import DEVELOPER, MAINTAINER
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_alerts_e2e import AUTH_ERROR, WEBHOOK_SECRET, push_event, send_webhook

SSO_PAGE = "<!DOCTYPE html><html><body><h1>Sign in to Example SSO</h1></body></html>"


@pytest.fixture
def harness(sample, gitlab_sim, slack, sqlite_url) -> Iterator[Harness]:
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        gitlab_webhook_secret=WEBHOOK_SECRET,
        mirrorbot_poll_interval=1,
    )
    yield h
    h.server.stop()


def notices(h: Harness, channel: str, words: str) -> list[dict]:
    return [c.body for c in h.posts() if c.body.get("channel") == channel and words in str(c.body)]


def scans_of(h: Harness, project_id: int) -> int:
    """Requests that begin a check of the project: reading its path (a lost project's
    check starts there) or its push mirrors. A scan makes one or two of them."""
    starts = {f"/projects/{project_id}", f"/projects/{project_id}/remote_mirrors"}
    return len([r for r in h.gitlab.requests.matching("GET") if r.path in starts])


def wait_for_scans(h: Harness, project_id: int, count: int) -> None:
    """Evidence that the monitor looked at the project `count` more times."""
    seen = scans_of(h, project_id)
    h.wait(lambda: scans_of(h, project_id) >= seen + count, timeout=15)


def outbox_empty(h: Harness) -> bool:
    metrics = httpx.get(f"{h.server.url}/metrics").text
    return "\nmirrorbot_outbox_depth 0.0" in metrics


def settle(h: Harness, project_id: int, scans: int = 4) -> None:
    """Let the monitor look at the project a few more times, then let the outbox deliver
    all they added: a scan starts only after the previous one wrote what it saw."""
    wait_for_scans(h, project_id, scans)
    wait_for_scans(h, project_id, 2)
    h.wait(lambda: outbox_empty(h))


def lose_role(h: Harness) -> None:
    h.sample.app.members[h.sample.alice.id] = DEVELOPER  # 401 on the push-mirror routes


def lose_project(h: Harness) -> None:
    del h.sample.app.members[h.sample.alice.id]  # private project: 404


@pytest.mark.parametrize("lose", [lose_role, lose_project])
def test_a_lost_project_is_reported_once_per_channel_and_again_when_readable(linked: Harness, lose):
    h = linked
    h.command("watch group/app", channel="CALERTS")
    h.wait_response("now gets alerts")
    h.command("watch group/app", channel="COPS", user="UBOB")
    h.wait_response("<#COPS|cops> now gets alerts")
    wait_for_scans(h, h.sample.app.id, 1)
    assert notices(h, "CALERTS", "cannot check") == []

    lose(h)  # the service token (alice's) can no longer read the project
    lost = "I cannot check the mirrors of *group/app* any more"
    for channel in ("CALERTS", "COPS"):
        [notice] = h.wait(lambda channel=channel: notices(h, channel, lost))
        assert "Maintainer role" in str(notice) and "/mirror unwatch group/app" in str(notice)
    settle(h, h.sample.app.id)
    assert len(notices(h, "CALERTS", lost)) == 1 and len(notices(h, "COPS", lost)) == 1
    h.command("status", channel="CALERTS")
    h.wait_response("*Not checked* — I cannot read these projects")

    h.sample.app.members[h.sample.alice.id] = MAINTAINER
    again = "I can check the mirrors of *group/app* again"
    for channel in ("CALERTS", "COPS"):
        h.wait(lambda channel=channel: notices(h, channel, again), timeout=10)
    settle(h, h.sample.app.id)
    assert len(notices(h, "CALERTS", again)) == 1 and len(notices(h, "COPS", lost)) == 1


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (SSO_PAGE, "text/html; charset=utf-8"),  # an SSO proxy's sign-in page, with a 200
        ('[{"id": "not-a-number", "enabled": "sometimes"}]', "application/json"),
    ],
)
def test_one_project_s_bad_answer_does_not_stop_the_scan(
    linked: Harness, caplog: pytest.LogCaptureFixture, body: str, content_type: str
):
    h = linked
    world = h.sample.world
    other = world.add_project("group/other", {h.sample.alice: MAINTAINER})
    failing = world.add_push_mirror(other, "https://backup.example.org/other.git", enabled=True)
    h.command("watch group/app", channel="CALERTS")
    h.wait_response("group/app")
    h.command("watch group/other", channel="CALERTS")
    h.wait_response("group/other")
    caplog.set_level(logging.INFO, logger="bot.domain.project_access")
    h.gitlab.inject(
        Fault(
            "body",
            status=200,
            body=body,
            content_type=content_type,
            path=f"^/projects/{h.sample.app.id}/remote_mirrors$",
            times=None,
        )
    )
    world.fail_now(failing, AUTH_ERROR)
    alert = h.wait(
        lambda: [c for c in h.posts() if "Mirror failing" in c.body.get("text", "")], timeout=10
    )
    assert "group/other" in alert[0].body["text"]
    settle(h, h.sample.app.id)
    trouble = [r for r in caplog.records if "cannot be checked" in r.getMessage()]
    assert len(trouble) == 1 and "group/app" in trouble[0].getMessage()

    h.gitlab.faults.clear()
    h.wait(
        lambda: [r for r in caplog.records if "can be checked again" in r.getMessage()],
        timeout=10,
    )
    settle(h, h.sample.app.id)
    assert len([r for r in caplog.records if "cannot be checked" in r.getMessage()]) == 1
    assert notices(h, "CALERTS", "cannot check") == []  # a proxy page is the operator's


def test_a_moved_project_keeps_being_watched(sample, gitlab_sim, slack, sqlite_url):
    h = start_harness(
        sample,
        gitlab_sim,
        slack,
        sqlite_url,
        generate_key(),
        gitlab_webhook_secret=WEBHOOK_SECRET,
        mirrorbot_poll_interval=3600,  # webhooks trigger the checks
    )
    try:
        h.link("UALICE", "glpat-alice-maintainer-0001")
        h.command("watch group/app", channel="CALERTS")
        h.wait_response("now gets alerts")
        send_webhook(h, push_event(h))  # a first check: the bot has seen the project
        wait_for_scans(h, h.sample.app.id, 1)
        h.sample.world.rename_project(h.sample.app, "platform/app")
        h.gitlab.requests.clear()

        h.sample.world.fail_now(h.sample.https_mirror, AUTH_ERROR)
        send_webhook(h, push_event(h))
        h.wait(lambda: [c.body for c in h.posts() if "Mirror failing" in c.body.get("text", "")])
        assert notices(h, "CALERTS", "cannot check") == []
        assert h.gitlab.requests.matching(path="group%2Fapp") == []  # by id, never by path
    finally:
        h.server.stop()
