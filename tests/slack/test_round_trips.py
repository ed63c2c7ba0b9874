"""Each read answers after one GitLab round trip, a sync's first answer too, and refusals
still say what is wrong. Counted at the simulator: a request that arrived after another
was answered waited for it; requests sent together count once. The simulator answers
after 0.15 s so that requests sent together are seen together (nothing here is timed)."""

from __future__ import annotations

import time

import pytest

from bot.commands.actions import MirrorActions, MirrorRef
from tests.slack.conftest import Harness

LATENCY = 0.15


@pytest.fixture
def slow(linked: Harness) -> Harness:
    linked.gitlab.faults.latency = LATENCY
    return linked


def answer_and_round_trips(h: Harness, text: str, contains: str, **kwargs: str) -> int:
    since = time.monotonic()
    h.command(text, **kwargs)
    h.wait_response(contains)
    return h.gitlab.requests.round_trips(since)


@pytest.mark.parametrize(
    ("text", "contains"),
    [
        ("list group/app", "2 push mirrors"),
        ("list 1", "2 push mirrors"),
        ("list <{gitlab}/group/app/-/settings/repository|app>", "2 push mirrors"),
        ("show group/app {https}", "Push mirror {https}"),
        ("show 1 {https}", "Push mirror {https}"),
        ("key group/app {ssh}", "deploy key"),
        ("key group/app {https}", "has no SSH public key"),
        ("key group/app 4242", "push mirror 4242 does not exist"),
        ("pull group/app", "has no pull mirror"),
    ],
)
def test_each_read_answers_after_one_round_trip(slow: Harness, text: str, contains: str):
    ids = {
        "https": slow.sample.https_mirror.id,
        "ssh": slow.sample.ssh_mirror.id,
        "gitlab": slow.gitlab.url,
    }
    text, contains = text.format(**ids), contains.format(**ids)
    assert answer_and_round_trips(slow, text, contains) == 1


def test_list_reads_push_mirrors_and_pull_mirror_at_once_and_nothing_else(slow: Harness):
    since = time.monotonic()
    slow.command("list group/app")
    slow.wait_response("2 push mirrors")
    paths = sorted(r.path for r in slow.gitlab.requests.entries if r.at >= since)
    assert paths == ["/projects/group%2Fapp/mirror/pull", "/projects/group%2Fapp/remote_mirrors"]


def test_a_list_typed_by_path_has_buttons_that_act_on_that_project(slow: Harness):
    slow.command("list group/app")
    body = slow.wait_response("2 push mirrors")
    values = [
        element["value"]
        for block in body["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == MirrorActions.DETAILS
    ]
    assert values and all(
        MirrorRef.model_validate_json(v).project.value == "group/app" for v in values
    )
    slow.slack.calls.clear()
    since = time.monotonic()
    slow.click(MirrorActions.DETAILS, values[0])
    slow.wait_response("Push mirror")
    assert slow.gitlab.requests.round_trips(since) == 1


def test_detail_and_key_buttons_answer_after_one_round_trip(slow: Harness):
    for action, mirror, contains in (
        (MirrorActions.DETAILS, slow.sample.https_mirror, "Push mirror"),
        (MirrorActions.PUBLIC_KEY, slow.sample.ssh_mirror, "deploy key"),
    ):
        slow.slack.calls.clear()
        since = time.monotonic()
        value = MirrorRef(project_id=slow.sample.app.id, mirror_id=mirror.id).dump()
        slow.click(action, value)
        slow.wait_response(contains)
        assert slow.gitlab.requests.round_trips(since) == 1, action


@pytest.mark.parametrize("text", ["sync group/app {https}", "sync group/app"])
def test_a_sync_is_announced_after_one_round_trip_then_followed(slow: Harness, text: str):
    since = time.monotonic()
    slow.command(text.format(https=slow.sample.https_mirror.id))
    post = slow.wait(
        lambda: next((c for c in slow.posts() if "requested a sync" in str(c.body)), None)
    )
    # `sync P` reads the list, then asks for every sync at once: one more round trip.
    expected = 1 if "{https}" in text else 2
    assert slow.gitlab.requests.round_trips(since, until=post.at) == expected
    slow.wait_post(":large_green_circle: finished", method="chat.update", timeout=10)


def test_sync_all_asks_for_every_mirrors_sync_at_once(slow: Harness):
    since = time.monotonic()
    slow.command("sync group/app")
    post = slow.wait(
        lambda: next((c for c in slow.posts() if "requested a sync" in str(c.body)), None)
    )
    syncs = [r for r in slow.gitlab.requests.matching("POST", "/sync") if r.at >= since]
    assert len(syncs) == 2 and all(r.status == 204 for r in syncs)
    # Both were on their way before either was answered.
    assert max(r.at for r in syncs) < min(r.answered_at for r in syncs) < post.at


def test_a_developer_is_told_the_role_they_lack_naming_the_project(slow: Harness):
    mirror_id = slow.sample.https_mirror.id
    for text in ("list group/app", f"show 1 {mirror_id}", f"key 1 {slow.sample.ssh_mirror.id}"):
        slow.slack.calls.clear()
        slow.command(text, user="UDAVE")
        slow.wait_response("you need the Maintainer role on group/app")
    slow.slack.calls.clear()
    slow.command("pull 1", user="UDAVE")
    slow.wait_response("Maintainer role on group/app")


def test_a_rejected_token_is_told_to_log_in_again_not_a_role(slow: Harness):
    slow.sample.world.tokens["glpat-alice-maintainer-0001"].revoked = True
    for text in ("list group/app", f"show group/app {slow.sample.https_mirror.id}", "pull 1"):
        slow.slack.calls.clear()
        slow.command(text)
        body = slow.wait_response("rejected your token")
        assert "Maintainer" not in str(body)


def test_an_unknown_project_is_named_as_typed(slow: Harness):
    assert answer_and_round_trips(slow, "list group/nope", "group/nope") == 1
