"""Every HTTP door checks who knocks, and refuses a body over its limit before reading it
whole: signatures (missing, wrong, replayed), webhook tokens, 413s, and the server stays up."""

import socket
import time
from urllib.parse import urlencode

import httpx
import pytest

from bot.commands.actions import MirrorActions, MirrorRef
from bot.doors import SLACK_MAX_BODY_BYTES
from bot.slack import delivery
from bot.store.crypto import generate_key
from tests.slack.conftest import ALICE_TOKEN, Harness, start_harness
from tests.slack.test_socket_mode import REPLIES, forged_requests

# Each door, an unauthenticated request to it, and what that request must get.
UNAUTHENTICATED = {
    "/slack/events": ("POST", 401),  # no X-Slack-Signature
    "/gitlab/webhook": ("POST", 401),  # no X-Gitlab-Token
    "/healthz": ("GET", 200),  # public: says only whether the database answers
    "/metrics": ("GET", 200),  # public: counters, never a secret
}


@pytest.fixture
def guarded(sample, gitlab_sim, slack, sqlite_url):
    """Every secret configured, so a refusal is the knock's, not a missing setting's."""
    h = start_harness(
        sample, gitlab_sim, slack, sqlite_url, generate_key(), gitlab_webhook_secret="hook"
    )
    yield h
    h.server.stop()


def test_every_door_refuses_an_unauthenticated_request_unless_public(guarded: Harness):
    doors = guarded.server.app.app.doors  # RequestLog(Doors(...))
    assert set(doors) == set(UNAUTHENTICATED), "a new route needs its unauthenticated test"
    for path, (method, status) in UNAUTHENTICATED.items():
        body = b'{"object_kind": "push"}' if method == "POST" else None
        response = httpx.request(method, f"{guarded.server.url}{path}", content=body)
        assert response.status_code == status, path
        assert doors[path].method == method


def test_a_path_that_is_no_door_is_404(harness: Harness):
    assert httpx.get(f"{harness.server.url}/slack/events/../admin").status_code == 404
    assert httpx.post(f"{harness.server.url}/anything").status_code == 404
    assert httpx.post(f"{harness.server.url}/healthz").status_code == 405


@pytest.mark.parametrize(
    "signing",
    [
        {"unsigned": True},
        {"secret": "a-guessed-secret"},
        # Signed right, but ten minutes ago: a captured request replayed.
        {"timestamp": int(time.time()) - 600},
    ],
    ids=["missing", "wrong", "replayed-old-timestamp"],
)
def test_a_bad_slack_signature_is_refused_and_nothing_reaches_gitlab(linked: Harness, signing):
    linked.gitlab.requests.clear()
    refused = forged_requests(linked, **signing)  # a command, a click, a form
    assert [r.status_code for r in refused] == [401] * len(refused)
    # Evidence that the pipeline runs: a properly signed command is answered...
    linked.command("list group/app")
    linked.wait_response("2 push mirrors")
    # ...and nothing forged reached GitLab or got a reply.
    assert [r for r in linked.gitlab.requests.entries if r.method != "GET"] == []
    assert len([c for c in linked.slack.calls if c.method in REPLIES]) == 1


def _big_slack_body(size: int) -> str:
    return urlencode({"payload": "x" * size})


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_3_mib_slack_body_is_413_and_the_server_stays_up(harness: Harness, signed):
    body = _big_slack_body(3 * 1024 * 1024)
    if signed:
        response = harness.agent._post(body, "application/x-www-form-urlencoded")
    else:
        response = httpx.post(f"{harness.server.url}/slack/events", content=body)
    assert response.status_code == 413
    assert response.json() == {"error": "payload too large"}
    assert httpx.get(f"{harness.server.url}/healthz").status_code == 200


def test_a_chunked_slack_body_over_the_limit_is_413_while_streaming(harness: Harness):
    def chunks():
        for _ in range(3):
            yield b"x" * (1024 * 1024)

    response = httpx.post(
        f"{harness.server.url}/slack/events",
        content=chunks(),  # chunked: no Content-Length to refuse it by
        # Headers that pass the check made before the body is read; the signature itself
        # can only be checked once the body is in, and the body never gets in whole.
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
    )
    assert response.status_code == 413
    assert httpx.get(f"{harness.server.url}/healthz").status_code == 200


def test_an_unsigned_chunked_body_is_refused_before_it_is_read(harness: Harness):
    sent = []

    def chunks():
        for _ in range(3):
            sent.append(1)
            yield b"x" * (1024 * 1024)

    response = httpx.post(
        f"{harness.server.url}/slack/events",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401


def test_a_body_that_dribbles_in_is_refused_after_its_deadline(harness: Harness):
    """A client sending one byte at a time holds no connection past BODY_SECONDS."""
    host, port = harness.server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"X-Slack-Request-Timestamp: " + str(int(time.time())).encode() + b"\r\n"
            b"X-Slack-Signature: v0=" + b"0" * 64 + b"\r\n\r\nx"
        )
        started = time.monotonic()
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 25  # the deadline (10 s), not the client, ended it


def test_a_replayed_signed_request_is_refused(harness: Harness):
    """The same signed request sent twice within its 5 minutes: the copy is refused."""
    body = "command=%2Fmirror&text=help&user_id=UALICE&team_id=T0TEAM&channel_id=C1"
    first = harness.agent._post(body, "application/x-www-form-urlencoded")
    assert first.status_code == 200
    again = httpx.post(
        f"{harness.server.url}/slack/events", content=body.encode(), headers=first.request.headers
    )
    assert again.status_code == 401


@pytest.fixture
def two_replicas(sample, gitlab_sim, slack, database_url):
    """Two app servers on one database, as two replicas behind a load balancer."""
    key = generate_key()
    replicas = [start_harness(sample, gitlab_sim, slack, database_url, key) for _ in range(2)]
    replicas[0].link("UALICE", ALICE_TOKEN)
    yield replicas
    for replica in replicas:
        replica.server.stop()


def replay_then_show(sent: httpx.Response, replica: Harness) -> None:
    """Send the captured request to `replica` (acked: that process has not seen it), then
    a request Slack really sent, as evidence that the replica works; wait for both."""
    replayed = httpx.post(
        f"{replica.server.url}/slack/events",
        content=sent.request.content,
        headers=sent.request.headers,
    )
    assert replayed.status_code == 200
    replica.command("show group/app 1")
    replica.wait_response("Push mirror")
    replica.settle()


@pytest.mark.parametrize("command", ["list group/app", "sync group/app 1"])
def test_a_signed_request_replayed_to_another_replica_does_nothing(two_replicas, command):
    """Slack sent a command to one replica; a captured copy sent to the other within its
    5 minutes is acked there (that process has not seen it), but its work never runs:
    GitLab and Slack see nothing of it. A request Slack really sent still works there."""
    first, second = two_replicas
    sent = first.command(command)
    first.wait_response("2 push mirrors") if "list" in command else first.wait_post("sync")
    first.wait(lambda: not delivery._background)  # the sync's progress followed to its end
    first.settle()
    gitlab_before = len(first.gitlab.requests.entries)
    slack_before = len(first.slack.calls)
    replay_then_show(sent, second)
    assert len(first.gitlab.requests.entries) == gitlab_before + 1  # the show's one read
    assert len(first.slack.calls) == slack_before + 1  # and its one reply


def test_a_button_click_replayed_to_another_replica_changes_nothing(two_replicas):
    """alice's click enabled a mirror; it is disabled again; the captured click, sent to
    the other replica, does not enable it a second time."""
    first, second = two_replicas
    mirror = first.sample.https_mirror
    mirror.enabled = False
    value = MirrorRef(project_id=first.sample.app.id, mirror_id=mirror.id).dump()
    clicked = first.click(MirrorActions.ENABLE, value)
    first.wait_post("enabled push mirror")
    first.settle()
    mirror.enabled = False
    puts = len(first.gitlab.requests.matching("PUT"))
    replay_then_show(clicked, second)
    assert len(first.gitlab.requests.matching("PUT")) == puts
    assert mirror.enabled is False


def test_a_slack_body_just_under_the_limit_still_gets_its_signature_checked(harness: Harness):
    body = _big_slack_body(SLACK_MAX_BODY_BYTES - 100)
    forged = harness.agent._post(body, "application/x-www-form-urlencoded", secret="guess")
    assert forged.status_code == 401
    assert len(body) <= SLACK_MAX_BODY_BYTES


def test_an_empty_webhook_token_is_refused(guarded: Harness):
    response = httpx.post(
        f"{guarded.server.url}/gitlab/webhook",
        content=b"{}",
        headers={"X-Gitlab-Token": "", "X-Gitlab-Event": "Push Hook"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize("token", ["", None, "anything"], ids=["empty", "missing", "some"])
def test_with_an_empty_webhook_secret_no_webhook_gets_in(
    sample, gitlab_sim, slack, sqlite_url, token
):
    h = start_harness(
        sample, gitlab_sim, slack, sqlite_url, generate_key(), gitlab_webhook_secret=""
    )
    try:
        headers = {"X-Gitlab-Event": "Push Hook"}
        if token is not None:
            headers["X-Gitlab-Token"] = token
        body = b'{"object_kind": "push", "project": {"id": 1}}'
        response = httpx.post(f"{h.server.url}/gitlab/webhook", content=body, headers=headers)
        assert response.status_code == 401
    finally:
        h.server.stop()
