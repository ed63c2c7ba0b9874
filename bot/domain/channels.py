"""Which channel a `watch` sends alerts to, and whether it may.

A private project's alerts must not land in a channel its watcher cannot see, nor in one
the bot cannot post to (they would fail for good). The domain asks a `ChannelDirectory`
(Slack's conversations API, or the console's own channels) and decides the words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.domain.errors import DomainError

INVITE = "`/invite @Mirrorbot`"


@dataclass(frozen=True)
class ChannelName:
    """A channel as typed: by id (`<#C…|name>`, `#C…`) or by name (`#ops`)."""

    id: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        return f"<#{self.id}>" if self.id else f"#{self.name}"


@dataclass(frozen=True)
class Channel:
    id: str
    name: str | None
    is_private: bool = False
    is_archived: bool = False
    is_direct: bool = False  # a DM or group DM: no channel to share alerts in
    bot_is_member: bool = True
    # Shared with another organisation (Slack Connect): its people are not this company's.
    is_shared_outside: bool = False


class ChannelDirectory(Protocol):
    async def find(self, name: str) -> Channel | None:
        """The channel of that name the bot can see, or None."""

    async def get(self, channel_id: str) -> Channel | None:
        """The channel, or None when it does not exist or the bot cannot see it."""

    async def is_member(self, channel_id: str, user_id: str) -> bool: ...


class ChannelRefused(DomainError):
    """A watch into a channel that would leak alerts or never receive them."""


class ChannelUnavailable(DomainError):
    """The directory could not answer (Slack down): nothing was decided."""


async def channel_to_watch_into(
    directory: ChannelDirectory, wanted: ChannelName, user_id: str
) -> Channel:
    """The channel `user_id` may subscribe, or `ChannelRefused` saying why not."""
    if wanted.id is not None:
        channel = await directory.get(wanted.id)
    else:
        assert wanted.name is not None
        channel = await directory.find(wanted.name)
    if channel is None:
        raise ChannelRefused(
            f"I cannot find {wanted}: if it is a private channel, invite me there first ({INVITE})"
        )
    shown = f"<#{channel.id}>"
    if channel.is_direct:
        raise ChannelRefused(
            "alerts go to a channel: run `/mirror watch` in one, or name it "
            "(`/mirror watch PROJECT #channel`)"
        )
    if channel.is_archived:
        raise ChannelRefused(f"{shown} is archived: pick a channel that is in use")
    if channel.is_shared_outside:
        raise ChannelRefused(
            f"{shown} is shared with another organisation (Slack Connect): a project's alerts "
            "stay inside the company — pick a channel of this workspace"
        )
    if not await directory.is_member(channel.id, user_id):
        raise ChannelRefused(
            f"you are not a member of {shown}: only its members can send a project's alerts "
            "there — join it first, or pick a channel you are in"
        )
    if not channel.bot_is_member:
        raise ChannelRefused(
            f"I am not a member of {shown}, so its alerts could not be posted — {INVITE} there "
            "first"
        )
    return channel
