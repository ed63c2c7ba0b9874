"""Group discovery telling a channel it cannot list the group: once per episode, about
the token that failed, under keys that never repeat."""

from sqlalchemy import delete, select, update

from bot.domain import groups
from bot.domain.accounts import SlackUser
from bot.domain.errors import NotLinked
from bot.store.db import transaction
from bot.store.models import GroupSubscription, OutboxMessage


async def watch(sessions, watcher: str = "UBOB") -> int:
    async with transaction(sessions) as session:
        row = GroupSubscription(
            slack_team_id="T",
            channel_id="CALERTS",
            group_id=7,
            group_path="platform",
            created_by=watcher,
        )
        session.add(row)
        await session.flush()
        return row.id


async def notices(sessions) -> list[str]:
    async with sessions() as session:
        return list((await session.scalars(select(OutboxMessage.dedupe_key))).all())


async def not_linked(who: SlackUser):
    raise NotLinked()


async def test_a_watch_made_again_after_an_unwatch_is_told_of_its_own_failure(sessions):
    first = await watch(sessions)
    await groups.discover(sessions, not_linked)
    async with transaction(sessions) as session:  # unwatch: SQLite may reuse the id
        await session.execute(delete(GroupSubscription))
    again = await watch(sessions)
    assert again == first
    await groups.discover(sessions, not_linked)
    told = await notices(sessions)
    assert len(told) == 2 and len(set(told)) == 2


async def test_a_failure_of_the_old_watchers_token_after_a_takeover_blames_nobody(sessions):
    await watch(sessions, watcher="UALICE")

    async def taken_over_while_listing(who: SlackUser):
        async with transaction(sessions) as session:  # bob runs `watch platform/` meanwhile
            await session.execute(update(GroupSubscription).values(created_by="UBOB"))
        raise NotLinked()  # alice's link, gone

    await groups.discover(sessions, taken_over_while_listing)
    assert await notices(sessions) == []
