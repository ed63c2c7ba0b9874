"""Linking Slack users to GitLab accounts with their own tokens."""

import time
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bot.domain.accounts import TOKEN_CACHE_SECONDS, Accounts, SlackUser
from bot.domain.errors import NotLinked, TokenNotUsable
from bot.gitlab.errors import TokenRejected
from bot.gitlab.refs import ProjectRef
from bot.store.models import LinkedAccount
from tests.conftest import ALICE_TOKEN, FAST_RETRY, READER_TOKEN

ALICE = SlackUser("T1", "UALICE")


@pytest.fixture
def accounts(sessions, cipher, gitlab_http) -> Accounts:
    return Accounts(sessions, cipher, gitlab_http, FAST_RETRY)


async def test_link_validates_the_token_and_records_the_gitlab_user(accounts):
    link = await accounts.link(ALICE, f"  {ALICE_TOKEN}\n", linked_by="UADMIN")
    assert link.gitlab_username == "alice"
    assert link.scopes == ("api",)
    assert (await accounts.get(ALICE)) == link


async def test_the_token_is_stored_encrypted(accounts, sessions):
    await accounts.link(ALICE, ALICE_TOKEN, linked_by="cli")
    async with sessions() as session:
        row = (await session.scalars(select(LinkedAccount))).one()
    assert ALICE_TOKEN not in row.token_ciphertext
    assert ALICE_TOKEN not in repr(row.__dict__)


async def test_calls_for_a_linked_user_use_their_own_token(accounts, gitlab_sim):
    await accounts.link(ALICE, ALICE_TOKEN, linked_by="cli")
    gitlab = await accounts.gitlab_for(ALICE)
    await gitlab.list_push_mirrors(ProjectRef("group/app"))
    assert gitlab_sim.requests.matching("GET", "/remote_mirrors")[0].username == "alice"


async def test_a_wrong_token_is_rejected_and_nothing_is_stored(accounts):
    with pytest.raises(TokenRejected):
        await accounts.link(ALICE, "glpat-not-a-real-token", linked_by="cli")
    assert await accounts.get(ALICE) is None


@pytest.mark.parametrize("token", ["", "   ", "two words", "x" * 600])
async def test_malformed_tokens_are_refused_before_gitlab_is_called(accounts, gitlab_sim, token):
    with pytest.raises(TokenNotUsable):
        await accounts.link(ALICE, token, linked_by="cli")
    assert gitlab_sim.requests.entries == []


async def test_a_token_without_api_scopes_is_refused(accounts, sample):
    sample.world.add_token(sample.alice, "glpat-registry-only", scopes=["read_registry"])
    with pytest.raises(TokenNotUsable) as error:
        await accounts.link(ALICE, "glpat-registry-only", linked_by="cli")
    assert "needs `api`" in error.value.user_message
    assert "glpat" not in error.value.user_message


async def test_a_read_api_token_links_as_read_only(accounts):
    link = await accounts.link(ALICE, READER_TOKEN, linked_by="cli")
    assert link.read_only


async def test_expiry_is_recorded(accounts, sample):
    expiry = date.today() + timedelta(days=30)
    sample.world.add_token(sample.alice, "glpat-expiring-soon", expires_at=expiry)
    link = await accounts.link(ALICE, "glpat-expiring-soon", linked_by="cli")
    assert link.expires_at == expiry


async def test_relinking_replaces_the_old_token(accounts, sample):
    await accounts.link(ALICE, ALICE_TOKEN, linked_by="cli")
    sample.world.add_token(sample.alice, "glpat-alice-second-token")
    await accounts.link(ALICE, "glpat-alice-second-token", linked_by="cli")
    assert len(await accounts.list_links()) == 1


async def test_unlink_forgets_the_token(accounts):
    await accounts.link(ALICE, ALICE_TOKEN, linked_by="cli")
    assert await accounts.unlink(ALICE) is True
    assert await accounts.unlink(ALICE) is False
    with pytest.raises(NotLinked) as error:
        await accounts.gitlab_for(ALICE)
    assert "/mirror login" in error.value.user_message


async def test_a_change_made_here_is_seen_at_once_despite_the_token_cache(accounts):
    await accounts.link(ALICE, ALICE_TOKEN, linked_by="cli")
    await accounts.gitlab_for(ALICE)  # now remembered
    await accounts.unlink(ALICE)
    with pytest.raises(NotLinked):
        await accounts.gitlab_for(ALICE)


async def test_a_change_made_by_another_process_is_seen_within_the_cache_time(
    accounts, sessions, cipher, gitlab_http, monkeypatch
):
    cli = Accounts(sessions, cipher, gitlab_http, FAST_RETRY)  # another process, same table
    await accounts.link(ALICE, ALICE_TOKEN, linked_by="cli")
    await accounts.gitlab_for(ALICE)
    await cli.unlink(ALICE)
    await accounts.gitlab_for(ALICE)  # still remembered
    later = time.monotonic() + TOKEN_CACHE_SECONDS + 1
    monkeypatch.setattr("bot.domain.accounts.time.monotonic", lambda: later)
    with pytest.raises(NotLinked):
        await accounts.gitlab_for(ALICE)


async def test_links_are_per_workspace(accounts):
    await accounts.link(ALICE, ALICE_TOKEN, linked_by="cli")
    assert await accounts.get(SlackUser("T2", "UALICE")) is None
