"""`/mirror login` with GitLab's OAuth device grant, end to end: the real app, the GitLab
simulator's /oauth endpoints and the Slack stand-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.commands.actions import LoginActions
from bot.simulator import Fault, GitLabSimulator
from bot.simulator.server import token_fingerprint
from bot.store.crypto import TokenCipher, generate_key
from bot.store.db import create_engine, session_factory
from bot.store.models import DeviceLogin, LinkedAccount
from bot.store.rotation import rotate_secrets
from bot.workers import WorkerTiming
from tests.conftest import BOB_TOKEN, SampleGitLab
from tests.fakes.bot_server import FAST_WORKERS
from tests.fakes.slack import SlackStandIn
from tests.slack.conftest import Harness, start_harness

CLIENT_ID = "mirrorbot-oauth-app"
OAUTH_WORKERS = WorkerTiming(**{**FAST_WORKERS.__dict__, "logins_every": 0.05})


def oauth_harness(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator, slack: SlackStandIn, url: str, key: str
) -> Harness:
    return start_harness(
        sample, gitlab_sim, slack, url, key, timing=OAUTH_WORKERS, gitlab_oauth_client_id=CLIENT_ID
    )


def oauth_app(sample: SampleGitLab) -> None:
    sample.world.add_oauth_app(CLIENT_ID)
    sample.world.timing.device_interval_seconds = 0.1


@pytest.fixture
def oauth(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator, slack: SlackStandIn, sqlite_url: str
) -> Iterator[Harness]:
    oauth_app(sample)
    h = oauth_harness(sample, gitlab_sim, slack, sqlite_url, generate_key())
    yield h
    h.server.stop()


@pytest.fixture
def oauth_on_each_database(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator, slack: SlackStandIn, database_url: str
) -> Iterator[Harness]:
    oauth_app(sample)
    h = oauth_harness(sample, gitlab_sim, slack, database_url, generate_key())
    yield h
    h.server.stop()


def login_message(h: Harness, user: str = "UALICE") -> dict[str, Any]:
    h.command("login", user=user)
    return h.wait_response("Link your GitLab account")


def user_code_of(message: dict[str, Any]) -> str:
    text = message["blocks"][0]["text"]["text"]
    return text.split("*`", 1)[1].split("`*", 1)[0]


def log_in(h: Harness, user: str = "UALICE") -> None:
    """A complete device login: the person approves at GitLab, the message says linked."""
    code = user_code_of(login_message(h, user))
    h.sample.world.approve_device(code, h.sample.alice if user == "UALICE" else h.sample.bob)
    h.wait(lambda: h.count(LinkedAccount, LinkedAccount.slack_user_id == user) == 1)
    h.wait_response("Linked as")


def issued_tokens(sample: SampleGitLab) -> list[str]:
    oauth = sample.world.oauth
    return [*oauth.access_tokens, *oauth.refresh_tokens]


def test_device_login_links_without_a_pasted_token_and_commands_use_the_bearer_token(
    oauth: Harness, sample: SampleGitLab, gitlab_sim: GitLabSimulator
) -> None:
    message = login_message(oauth)
    assert message["response_type"] == "ephemeral"
    code = user_code_of(message)
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    link = next(b for b in buttons if b["action_id"] == LoginActions.OPEN_GITLAB)
    assert link["url"] == f"{gitlab_sim.url}/oauth/device?user_code={code}"
    assert any(b["action_id"] == LoginActions.USE_TOKEN for b in buttons)
    assert oauth.slack.of("views.open") == []  # no token modal

    sample.world.approve_device(code, sample.alice)
    linked = oauth.wait_response("Linked as")
    assert "@alice" in json.dumps(linked) and "api" in json.dumps(linked)
    assert linked["replace_original"] is True

    oauth.command("list group/app")
    oauth.wait_response("push mirror")
    (access_token,) = sample.world.oauth.access_tokens
    listed = gitlab_sim.requests.matching("GET", "/remote_mirrors")
    # The simulator takes an OAuth access token only as `Authorization: Bearer`.
    assert listed and listed[-1].status == 200
    assert listed[-1].token_id == token_fingerprint(access_token)
    assert listed[-1].username == "alice"

    oauth.command("whoami")
    whoami = json.dumps(oauth.wait_response("You are linked"))
    assert "GitLab OAuth login" in whoami and "api" in whoami


def test_no_access_or_refresh_token_bytes_in_the_database_file(
    oauth: Harness, sample: SampleGitLab, sqlite_url: str
) -> None:
    log_in(oauth)
    oauth.command("list group/app")
    oauth.wait_response("push mirror")
    oauth.server.stop()  # everything written and checkpointed
    database = Path(sqlite_url.removeprefix("sqlite:///"))
    contents = b"".join(
        path.read_bytes() for path in database.parent.glob(database.name + "*") if path.is_file()
    )
    assert b"linked_accounts" in contents  # the file that was read is the bot's database
    tokens = issued_tokens(sample)
    assert len(tokens) == 2
    for token in tokens:
        assert token.encode() not in contents


def test_an_expired_access_token_is_refreshed_once_for_six_commands_at_the_same_moment(
    oauth_on_each_database: Harness, sample: SampleGitLab, gitlab_sim: GitLabSimulator
) -> None:
    oauth = oauth_on_each_database
    log_in(oauth)
    sample.world.expire_oauth_access_tokens()
    held = gitlab_sim.inject(Fault("hold", path="^/oauth/token$", method="POST", times=None))

    def rejected() -> int:
        return len([r for r in gitlab_sim.requests.matching("GET") if r.status == 401])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda _: oauth.command("list group/app"), range(6)))
    # All six met the expired token before the one refresh is answered.
    oauth.wait(lambda: rejected() >= 6)
    held.release()
    oauth.wait(lambda: len([b for b in oauth.responses() if "push mirror" in json.dumps(b)]) >= 6)
    presented = sample.world.oauth.refresh_presented
    assert sum(presented.values()) == 1
    assert max(presented.values()) == 1  # no refresh token ever presented twice
    assert not any("rejected" in json.dumps(b) for b in oauth.responses())


def test_a_denied_login_links_nothing_and_says_so(oauth: Harness, sample: SampleGitLab) -> None:
    code = user_code_of(login_message(oauth))
    sample.world.deny_device(code)
    denied = oauth.wait_response("You denied the login")
    assert "nothing was linked" in denied["text"]
    assert any(
        e["action_id"] == LoginActions.START_AGAIN
        for b in denied["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    )
    assert oauth.count(LinkedAccount) == 0
    assert oauth.read(select(DeviceLogin.state)) == ["denied"]


def test_an_expired_login_links_nothing_and_offers_to_start_again(
    oauth: Harness, sample: SampleGitLab
) -> None:
    sample.world.timing.device_code_seconds = 0.3
    login_message(oauth)
    expired = oauth.wait_response("The code expired")
    assert "nothing was linked" in expired["text"]
    assert oauth.count(LinkedAccount) == 0
    oauth.click(LoginActions.START_AGAIN, "again")
    oauth.wait(lambda: len(oauth.read(select(DeviceLogin.id))) == 2)
    assert oauth.count(LinkedAccount) == 0


def test_logout_revokes_the_tokens_at_gitlab_then_forgets_them(
    oauth: Harness, sample: SampleGitLab, gitlab_sim: GitLabSimulator
) -> None:
    log_in(oauth)
    (access_token,) = sample.world.oauth.access_tokens
    (refresh_token,) = sample.world.oauth.refresh_tokens
    oauth.command("logout")
    oauth.wait_response("unlinked")
    assert sample.world.oauth.revoked == [refresh_token]
    assert sample.world.oauth.access_tokens[access_token].revoked
    assert oauth.count(LinkedAccount) == 0


def test_a_refused_refresh_marks_the_link_broken_and_says_to_log_in_again(
    oauth: Harness, sample: SampleGitLab
) -> None:
    log_in(oauth)
    for refresh in sample.world.oauth.refresh_tokens.values():
        refresh.used = True  # revoked at GitLab meanwhile (the application's page, say)
    sample.world.expire_oauth_access_tokens()
    oauth.command("list group/app")
    answer = oauth.wait_response("run `/mirror login`")
    assert "rejected" not in json.dumps(answer)
    assert oauth.read(select(LinkedAccount.broken_at))[0] is not None
    oauth.command("list group/app")  # no second refresh for a broken link
    oauth.wait(lambda: len([b for b in oauth.responses() if "has ended" in json.dumps(b)]) == 2)
    assert sum(sample.world.oauth.refresh_presented.values()) == 1


def test_without_a_client_id_login_opens_the_token_modal(harness: Harness) -> None:
    harness.command("login")
    harness.wait(lambda: harness.slack.of("views.open"))
    assert harness.count(DeviceLogin) == 0


def test_an_access_token_near_its_expiry_is_refreshed_before_gitlab_refuses_it(
    oauth: Harness, sample: SampleGitLab, gitlab_sim: GitLabSimulator
) -> None:
    # Every token GitLab issues now lives less than the bot's 5-minute margin, so each
    # call renews the one before it, before using it.
    sample.world.timing.oauth_access_seconds = 60
    log_in(oauth)
    oauth.command("list group/app")
    oauth.wait_response("push mirror")
    presented = sample.world.oauth.refresh_presented
    assert presented and max(presented.values()) == 1
    assert [r for r in gitlab_sim.requests.entries if r.status == 401] == []


def test_keys_rotate_re_encrypts_the_oauth_tokens(oauth: Harness, sample: SampleGitLab) -> None:
    log_in(oauth)
    oauth.server.stop()
    (old_key,) = oauth.settings.secret_keys
    new_key = generate_key()

    async def rotate() -> int:
        engine = create_engine(oauth.settings.database_url)
        try:
            return await rotate_secrets(session_factory(engine), TokenCipher([new_key, old_key]))
        finally:
            await engine.dispose()

    assert asyncio.run(rotate()) >= 2
    (row,) = oauth.read(select(LinkedAccount))
    only_new = TokenCipher([new_key])
    assert row.refresh_token_ciphertext is not None
    assert only_new.decrypt(row.refresh_token_ciphertext) in sample.world.oauth.refresh_tokens
    assert only_new.decrypt(row.token_ciphertext) in sample.world.oauth.access_tokens


def test_when_the_response_url_no_longer_works_the_outcome_is_posted_ephemerally(
    oauth: Harness, sample: SampleGitLab, slack: SlackStandIn
) -> None:
    code = user_code_of(login_message(oauth))
    slack.refuse("response_url", 404, "expired_url")
    sample.world.approve_device(code, sample.alice)
    posted = oauth.wait_post("Linked as", method="chat.postEphemeral")
    assert posted["user"] == "UALICE" and posted["channel"] == "C1"


def test_a_login_pending_across_a_restart_is_polled_again_and_links(
    oauth: Harness, sample: SampleGitLab, gitlab_sim: GitLabSimulator, slack: SlackStandIn
) -> None:
    code = user_code_of(login_message(oauth))
    oauth.server.stop()
    sample.world.approve_device(code, sample.alice)
    (key,) = oauth.settings.secret_keys
    again = oauth_harness(sample, gitlab_sim, slack, oauth.settings.database_url, key)
    try:
        again.wait_response("Linked as")
        assert again.count(LinkedAccount, LinkedAccount.link_kind == "oauth") == 1
    finally:
        again.server.stop()


def test_slow_down_adds_five_seconds_to_the_polling_interval(
    oauth: Harness, gitlab_sim: GitLabSimulator
) -> None:
    slowed = gitlab_sim.inject(
        Fault(
            "body",
            status=400,
            body='{"error": "slow_down"}',
            content_type="application/json",
            path="^/oauth/token$",
        )
    )
    login_message(oauth)
    oauth.wait(lambda: slowed.hits == 1)
    oauth.wait(lambda: oauth.read(select(DeviceLogin.interval_seconds)) == [5.1])
    assert oauth.read(select(DeviceLogin.state)) == ["pending"]


def test_admins_see_each_link_kind_in_users_list(oauth: Harness) -> None:
    log_in(oauth)
    oauth.link("UBOB", BOB_TOKEN)
    oauth.command("users list", user="UADMIN")
    listing = json.dumps(oauth.wait_response("Linked users"))
    assert "*alice* (OAuth, api" in listing
    assert "*bob* (token, api" in listing


def test_a_new_login_revokes_the_tokens_of_the_link_it_replaces(
    oauth: Harness, sample: SampleGitLab
) -> None:
    log_in(oauth)
    (first_refresh,) = sample.world.oauth.refresh_tokens
    oauth.slack.clear()
    log_in(oauth)
    assert sample.world.oauth.revoked == [first_refresh]
    assert oauth.count(LinkedAccount) == 1
    oauth.command("list group/app")
    oauth.wait_response("push mirror")


def test_an_application_gitlab_does_not_know_is_named_and_the_token_modal_offered(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator, slack: SlackStandIn, sqlite_url: str
) -> None:
    h = oauth_harness(sample, gitlab_sim, slack, sqlite_url, generate_key())  # no such app
    try:
        h.command("login")
        answer = h.wait_response("GITLAB_OAUTH_CLIENT_ID")
        assert "personal access token" in answer["text"]
        assert h.count(DeviceLogin) == 0
    finally:
        h.server.stop()
