"""The GitLab client against the simulator: every operation and every error class."""

import asyncio
import json
import socket
import struct
import time

import aiohttp
import httpx
import pytest

from bot.gitlab import errors
from bot.gitlab.client import GitLabClient, RetryPolicy, create_http_client
from bot.gitlab.http import Dropped, TimedOut
from bot.gitlab.models import PullMirrorConfig, PushMirrorCreate, PushMirrorUpdate
from bot.gitlab.refs import ProjectRef
from bot.simulator import Fault, GitLabSimulator
from tests.conftest import DAVE_TOKEN, FAST_RETRY, READER_TOKEN, SampleGitLab

APP = ProjectRef("group/app")


async def wait_until_settled(client: GitLabClient, mirror_id: int) -> str:
    for _ in range(100):
        mirror = await client.get_push_mirror(APP, mirror_id)
        if not mirror.is_in_progress:
            return mirror.update_status
        await asyncio.sleep(0.02)
    raise AssertionError("mirror never settled")


# --- operations ------------------------------------------------------------------------------


async def test_list_push_mirrors_returns_scrubbed_mirrors(alice_gitlab, sample: SampleGitLab):
    mirrors = await alice_gitlab.list_push_mirrors(APP)
    assert [m.id for m in mirrors] == [sample.https_mirror.id, sample.ssh_mirror.id]
    assert mirrors[0].url == "https://*****:*****@github.example.org/acme/app.git"
    assert "s3cr3t" not in repr(mirrors)


async def test_list_follows_pagination(alice_gitlab, sample: SampleGitLab, gitlab_sim):
    for n in range(130):
        sample.world.add_push_mirror(sample.app, f"https://h{n}.example.org/x.git")
    mirrors = await alice_gitlab.list_push_mirrors(ProjectRef(str(sample.app.id)))
    assert len(mirrors) == 132
    assert len(gitlab_sim.requests.matching("GET", "/remote_mirrors")) == 2


async def test_get_push_mirror(alice_gitlab, sample):
    mirror = await alice_gitlab.get_push_mirror(APP, sample.ssh_mirror.id)
    assert mirror.auth_method == "ssh_public_key"
    assert mirror.url == "ssh://*****@ssh.example.org/acme/app.git"


async def test_public_key_of_an_ssh_mirror(alice_gitlab, sample):
    key = await alice_gitlab.get_push_mirror_public_key(APP, sample.ssh_mirror.id)
    assert key.startswith("ssh-") and key.endswith("git@gitlab.example.com")


async def test_public_key_of_a_password_mirror_is_unavailable(alice_gitlab, sample):
    with pytest.raises(errors.PublicKeyUnavailable):
        await alice_gitlab.get_push_mirror_public_key(APP, sample.https_mirror.id)


async def test_public_key_of_a_missing_mirror_says_not_found(alice_gitlab):
    with pytest.raises(errors.MirrorNotFound):
        await alice_gitlab.get_push_mirror_public_key(APP, 999)


async def test_create_push_mirror_with_every_attribute(alice_gitlab, gitlab_sim):
    mirror = await alice_gitlab.create_push_mirror(
        APP,
        PushMirrorCreate(
            url="https://bot:tok@backup.example.org/app.git",
            enabled=True,
            auth_method="password",
            keep_divergent_refs=True,
            mirror_branch_regex="^release/.*$",
        ),
    )
    assert mirror.enabled and mirror.keep_divergent_refs
    assert mirror.mirror_branch_regex == "^release/.*$"
    assert mirror.url == "https://*****:*****@backup.example.org/app.git"
    [create] = gitlab_sim.requests.matching("POST", "/remote_mirrors")
    assert create.status == 201 and create.username == "alice"


async def test_a_new_mirror_is_disabled_unless_enabled(alice_gitlab):
    mirror = await alice_gitlab.create_push_mirror(
        APP, PushMirrorCreate(url="https://backup.example.org/app.git")
    )
    assert mirror.enabled is False


async def test_update_push_mirror(alice_gitlab, sample):
    mirror = await alice_gitlab.update_push_mirror(
        APP, sample.https_mirror.id, PushMirrorUpdate(enabled=False, only_protected_branches=True)
    )
    assert mirror.enabled is False and mirror.only_protected_branches is True


async def test_sync_runs_the_mirror_to_finished(alice_gitlab, sample):
    await alice_gitlab.sync_push_mirror(APP, sample.https_mirror.id)
    assert await wait_until_settled(alice_gitlab, sample.https_mirror.id) == "finished"
    mirror = await alice_gitlab.get_push_mirror(APP, sample.https_mirror.id)
    assert mirror.last_successful_update_at is not None


async def test_sync_of_a_failing_mirror_ends_failed_after_retries(alice_gitlab, sample):
    sample.world.set_outcome(sample.https_mirror, "fatal: Authentication failed", transient=True)
    await alice_gitlab.sync_push_mirror(APP, sample.https_mirror.id)
    assert await wait_until_settled(alice_gitlab, sample.https_mirror.id) == "failed"
    mirror = await alice_gitlab.get_push_mirror(APP, sample.https_mirror.id)
    assert mirror.last_error == "fatal: Authentication failed"


async def test_sync_of_a_disabled_mirror_is_refused(alice_gitlab, sample):
    sample.https_mirror.enabled = False
    with pytest.raises(errors.MirrorDisabled) as error:
        await alice_gitlab.sync_push_mirror(APP, sample.https_mirror.id)
    assert "enable it first" in error.value.user_message


async def test_delete_push_mirror(alice_gitlab, sample):
    await alice_gitlab.delete_push_mirror(APP, sample.https_mirror.id)
    assert [m.id for m in await alice_gitlab.list_push_mirrors(APP)] == [sample.ssh_mirror.id]


async def test_pull_mirror_get_configure_start(alice_gitlab, sample):
    with pytest.raises(errors.PullMirrorNotConfigured) as error:
        await alice_gitlab.get_pull_mirror(APP)
    assert "Premium" in error.value.user_message
    configured = await alice_gitlab.configure_pull_mirror(
        APP,
        PullMirrorConfig(
            url="https://upstream.example.org/app.git",
            auth_user="puller",
            auth_password="pw!",
            enabled=True,
            mirror_trigger_builds=True,
        ),
    )
    assert configured.enabled and configured.mirror_trigger_builds
    assert configured.url == "https://*****:*****@upstream.example.org/app.git"
    await alice_gitlab.start_pull_mirror(APP)
    mirror = await alice_gitlab.get_pull_mirror(APP)
    assert mirror.update_status in ("scheduled", "started", "finished")


async def test_start_accepts_202_as_the_docs_say(alice_gitlab, sample, gitlab_sim):
    sample.world.set_pull_mirror(sample.app, "https://upstream.example.org/app.git")
    gitlab_sim.inject(Fault("status", status=202, path="/mirror/pull$", method="POST"))
    await alice_gitlab.start_pull_mirror(APP)


async def test_who_am_i_token_and_project_role(alice_gitlab, sample):
    user = await alice_gitlab.get_current_user()
    token = await alice_gitlab.get_current_token()
    project = await alice_gitlab.get_project(APP)
    assert user.username == "alice"
    assert token is not None and token.scopes == ["api"]
    assert project.id == sample.app.id and project.access_level == 40


# --- errors ----------------------------------------------------------------------------------


async def test_bad_token_is_rejected_with_relink_advice(gitlab_http):
    client = GitLabClient(gitlab_http, "glpat-wrong", FAST_RETRY)
    with pytest.raises(errors.TokenRejected) as error:
        await client.list_push_mirrors(APP)
    assert "run `/mirror login` again" in error.value.user_message


async def test_developer_gets_401_from_gitlab_but_is_told_the_role(gitlab_http):
    client = GitLabClient(gitlab_http, DAVE_TOKEN, FAST_RETRY)
    with pytest.raises(errors.InsufficientRole) as error:
        await client.list_push_mirrors(APP)
    assert error.value.status == 401
    assert error.value.user_message == "you need the Maintainer role on group/app"


async def test_developer_gets_403_on_pull_mirror_routes(gitlab_http, sample):
    sample.world.set_pull_mirror(sample.app, "https://upstream.example.org/app.git")
    client = GitLabClient(gitlab_http, DAVE_TOKEN, FAST_RETRY)
    with pytest.raises(errors.InsufficientRole) as error:
        await client.get_pull_mirror(APP)
    assert error.value.status == 403


async def test_read_api_token_cannot_change_anything(gitlab_http, sample):
    client = GitLabClient(gitlab_http, READER_TOKEN, FAST_RETRY)
    assert await client.list_push_mirrors(APP)
    with pytest.raises(errors.InsufficientScope) as error:
        await client.sync_push_mirror(APP, sample.https_mirror.id)
    assert "lacks the `api` scope" in error.value.user_message


async def test_invisible_project_is_not_found(alice_gitlab):
    with pytest.raises(errors.ProjectNotFound) as error:
        await alice_gitlab.list_push_mirrors(ProjectRef("group/secret"))
    assert "group/secret" in error.value.user_message


async def test_unknown_mirror_is_not_found(alice_gitlab):
    with pytest.raises(errors.MirrorNotFound) as error:
        await alice_gitlab.get_push_mirror(APP, 4242)
    assert "/mirror list group/app" in error.value.user_message


async def test_validation_errors_carry_gitlabs_message(alice_gitlab):
    with pytest.raises(errors.ValidationFailed) as error:
        await alice_gitlab.create_push_mirror(APP, PushMirrorCreate(url="ftp://h.example/x"))
    assert "Only allowed schemes are http, https, ssh, git" in error.value.user_message
    with pytest.raises(errors.ValidationFailed) as error:
        await alice_gitlab.create_push_mirror(APP, PushMirrorCreate(url="https://127.0.0.2/x"))
    assert "loopback" in error.value.user_message
    with pytest.raises(errors.ValidationFailed) as error:
        await alice_gitlab.create_push_mirror(
            APP,
            PushMirrorCreate(
                url="https://h.example/x", only_protected_branches=True, mirror_branch_regex="x"
            ),
        )
    assert "mutually exclusive" in error.value.user_message


async def test_an_update_clears_a_branch_filter_only_with_an_empty_filter_alone(
    alice_gitlab, sample
):
    """GitLab's code: both branch keys in one PUT are refused whatever their values, and
    `only_protected_branches: false` alone leaves a filter in place."""
    mirror = sample.https_mirror
    mirror.mirror_branch_regex = "^release/"
    with pytest.raises(errors.ValidationFailed, match="mutually exclusive"):
        await alice_gitlab.update_push_mirror(
            APP,
            mirror.id,
            PushMirrorUpdate(only_protected_branches=False, mirror_branch_regex=""),
        )
    kept = await alice_gitlab.update_push_mirror(
        APP, mirror.id, PushMirrorUpdate(only_protected_branches=False)
    )
    assert kept.mirror_branch_regex == "^release/"
    cleared = await alice_gitlab.update_push_mirror(
        APP, mirror.id, PushMirrorUpdate(mirror_branch_regex="")
    )
    assert not cleared.mirror_branch_regex and cleared.only_protected_branches is False


async def test_paused_pull_mirroring_is_explained(alice_gitlab, sample):
    pull = sample.world.set_pull_mirror(sample.app, "https://upstream.example.org/app.git")
    pull.retry_count = 15
    with pytest.raises(errors.MirroringPaused):
        await alice_gitlab.start_pull_mirror(APP)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(409, errors.Conflict), (412, errors.PreconditionFailed), (422, errors.ValidationFailed)],
)
async def test_other_statuses_become_typed_errors(alice_gitlab, gitlab_sim, status, error_class):
    gitlab_sim.inject(Fault("status", status=status, path="/remote_mirrors"))
    with pytest.raises(error_class):
        await alice_gitlab.list_push_mirrors(APP)


async def test_connection_refused_is_unreachable():
    http = create_http_client("http://127.0.0.1:9")  # discard port: nothing listens
    client = GitLabClient(http, "t", RetryPolicy(max_attempts=2, budget_seconds=1, base_delay=0.01))
    with pytest.raises(errors.GitLabUnreachable) as error:
        await client.get_current_user()
    assert "GITLAB_URL" in error.value.user_message
    await http.aclose()


async def test_a_slow_gitlab_times_out(gitlab_sim):
    http = create_http_client(gitlab_sim.url, timeout=0.2)
    client = GitLabClient(http, "t", RetryPolicy(max_attempts=1))
    gitlab_sim.inject(Fault("latency", delay=1.0, times=None))
    with pytest.raises(errors.GitLabTimeout):
        await client.get_current_user()
    await http.aclose()


# --- retries ---------------------------------------------------------------------------------


async def test_429_is_retried_after_retry_after(alice_gitlab, gitlab_sim):
    gitlab_sim.inject(Fault("status", status=429, retry_after=0.3, path="/remote_mirrors"))
    started = time.monotonic()
    assert len(await alice_gitlab.list_push_mirrors(APP)) == 2
    assert time.monotonic() - started >= 0.3  # waited as told
    statuses = [r.status for r in gitlab_sim.requests.matching("GET", "/remote_mirrors")]
    assert statuses == [429, 200]


async def test_retry_after_beyond_the_budget_gives_up_at_once(gitlab_http, gitlab_sim):
    client = GitLabClient(gitlab_http, "glpat-alice-maintainer-0001", RetryPolicy(budget_seconds=2))
    gitlab_sim.inject(Fault("status", status=429, retry_after=60, path="/remote_mirrors"))
    started = time.monotonic()
    with pytest.raises(errors.RateLimited) as error:
        await client.list_push_mirrors(APP)
    assert time.monotonic() - started < 2
    assert error.value.retry_after == 60
    assert "60 s" in error.value.user_message


async def test_5xx_and_dropped_connections_are_retried_for_reads(alice_gitlab, gitlab_sim):
    gitlab_sim.inject(Fault("status", status=502, path="/remote_mirrors"))
    gitlab_sim.inject(Fault("drop", path="/remote_mirrors"))
    assert len(await alice_gitlab.list_push_mirrors(APP)) == 2
    assert len(gitlab_sim.requests.matching("GET", "/remote_mirrors")) == 2  # 502 + success


async def test_persistent_5xx_gives_up_within_the_budget(alice_gitlab, gitlab_sim):
    gitlab_sim.inject(Fault("status", status=503, path="/remote_mirrors", times=None))
    with pytest.raises(errors.ServerError) as error:
        await alice_gitlab.list_push_mirrors(APP)
    assert error.value.status == 503
    assert len(gitlab_sim.requests.matching("GET", "/remote_mirrors")) == FAST_RETRY.max_attempts


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", status=500, method="POST"),
        Fault("status", status=429, retry_after=0.1, method="POST"),
        Fault("drop", method="POST"),
    ],
)
async def test_a_create_is_never_sent_twice(alice_gitlab, gitlab_sim, sample, fault):
    gitlab_sim.inject(fault)
    with pytest.raises(errors.GitLabError):
        await alice_gitlab.create_push_mirror(
            APP, PushMirrorCreate(url="https://backup.example.org/app.git")
        )
    creates = [r for r in gitlab_sim.requests.entries if r.method == "POST"]
    assert len(creates) <= 1
    assert len(sample.app.push_mirrors) == 2  # nothing was created behind our back


async def test_sync_is_retried_because_repeating_it_is_harmless(alice_gitlab, gitlab_sim, sample):
    gitlab_sim.inject(Fault("status", status=500, path="/sync"))
    await alice_gitlab.sync_push_mirror(APP, sample.https_mirror.id)
    assert [r.status for r in gitlab_sim.requests.matching("POST", "/sync")] == [500, 204]


async def test_error_messages_never_contain_the_token(gitlab_http):
    client = GitLabClient(gitlab_http, "glpat-SECRETSECRET123", FAST_RETRY)
    with pytest.raises(errors.GitLabError) as error:
        await client.list_push_mirrors(APP)
    assert "SECRETSECRET" not in str(error.value) and "SECRETSECRET" not in repr(error.value)


def test_pooled_client_points_at_api_v4():
    http = create_http_client("https://gitlab.example.com/")
    assert http.base_url == "https://gitlab.example.com/api/v4"


def test_simulator_is_a_real_server(gitlab_sim: GitLabSimulator):
    response = httpx.get(f"{gitlab_sim.url}/api/v4/user")
    assert response.status_code == 401
    assert response.json() == {"message": "401 Unauthorized"}


async def test_a_connection_reset_mid_answer_is_a_dropped_connection():
    """A server that resets the connection (RST) after reading the request: whichever
    aiohttp error that surfaces as, reads are retried and the person gets one clear error."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = create_http_client(f"http://127.0.0.1:{port}")
    client = GitLabClient(http, "t", RetryPolicy(max_attempts=2, base_delay=0.01))
    try:
        with pytest.raises(errors.GitLabUnreachable, match="dropped"):
            await client.get_current_user()
    finally:
        await http.aclose()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ClientConnectionResetError("reset while sending"), Dropped),
        (aiohttp.ServerDisconnectedError(), Dropped),
        (aiohttp.ClientPayloadError("cut short"), Dropped),
        (aiohttp.ConnectionTimeoutError(), TimedOut),
        (aiohttp.SocketTimeoutError(), TimedOut),
    ],
)
async def test_every_broken_exchange_maps_to_one_kind_of_failure(raised, expected):
    class Broken:
        def request(self, *args, **kwargs):
            raise raised

    http = create_http_client("http://127.0.0.1:9")
    http._client = Broken  # type: ignore[method-assign]
    with pytest.raises(expected):
        await http.request("GET", "/user", headers={})


# --- import states, by GraphQL -----------------------------------------------------------------


async def test_import_states_come_100_projects_a_request(alice_gitlab, sample, gitlab_sim):
    world = sample.world
    many = [world.add_project(f"many/p{n}", {sample.alice: 40}) for n in range(230)]
    mirrored = many[7]
    world.set_pull_mirror(mirrored, "https://u:hunter2@up.example.org/p7.git", enabled=True)
    mirrored.pull_mirror.update_status = "failed"
    mirrored.pull_mirror.last_error = "fatal: could not read from https://u:hunter2@up.example.org/"
    secret = next(p for p in world.projects.values() if p.path == "group/secret")
    gitlab_sim.requests.clear()

    states = await alice_gitlab.list_import_states([p.id for p in many] + [secret.id])

    assert len(gitlab_sim.requests.matching("POST", "/api/graphql")) == 3  # 231 ids
    assert len(gitlab_sim.requests.entries) == 3
    assert set(states) == {p.id for p in many}  # group/secret: alice cannot read it
    state = states[mirrored.id]
    assert state is not None and state.status == "failed"
    assert state.id == mirrored.pull_mirror.id
    assert "hunter2" not in repr(state)
    pull = state.as_pull_mirror()
    assert pull.enabled and pull.is_failed and pull.last_error == state.last_error
    assert all(states[p.id] is None for p in many if p is not mirrored)


async def test_import_states_without_graphql_are_refused(alice_gitlab, sample, gitlab_sim):
    gitlab_sim.inject(Fault("status", status=404, path="^/api/graphql$"))
    with pytest.raises(errors.GraphQLRefused) as refused:
        await alice_gitlab.list_import_states([sample.app.id])
    assert refused.value.status == 404


async def test_graphql_errors_become_a_typed_error(alice_gitlab, sample, gitlab_sim):
    message = "Query has complexity of 300, which exceeds max complexity of 250"
    body = json.dumps({"errors": [{"message": message}]})
    gitlab_sim.inject(
        Fault("body", status=200, path="^/api/graphql$", body=body, content_type="application/json")
    )
    with pytest.raises(errors.GraphQLRefused) as refused:
        await alice_gitlab.list_import_states([sample.app.id])
    assert "exceeds max complexity" in refused.value.user_message


async def test_graphql_is_retried_after_a_server_error(alice_gitlab, sample, gitlab_sim):
    gitlab_sim.inject(Fault("status", status=502, path="^/api/graphql$"))
    assert await alice_gitlab.list_import_states([sample.app.id]) == {sample.app.id: None}
    assert [r.status for r in gitlab_sim.requests.entries] == [502, 200]


async def test_a_gitlab_without_graphql_costs_one_request(alice_gitlab, sample, gitlab_sim):
    more = [sample.world.add_project(f"many/p{n}", {sample.alice: 40}) for n in range(250)]
    gitlab_sim.inject(Fault("status", status=404, path="^/api/graphql$", times=None))
    with pytest.raises(errors.GraphQLRefused):
        await alice_gitlab.list_import_states([p.id for p in more])
    assert len(gitlab_sim.requests.entries) == 1
