"""Run a parsed command for a person: the one place that decides what each command does.

Takes plain values (who, where, which command) and returns a typed result; it never
touches Slack. Errors a person can act on come back as `Problem`, never as exceptions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeVar

from bot.commands.parse import Command, UsageError, parse_command
from bot.commands.results import (
    AccountInfo,
    ApprovalNeeded,
    ChangeMade,
    Help,
    Info,
    InventoryReport,
    LinkedUsers,
    MirrorDetails,
    MirrorList,
    PendingApprovals,
    Problem,
    PublicKeyInfo,
    PullDetails,
    Reply,
    StatusReport,
    SyncStarted,
    Watching,
)
from bot.domain import audit, digest, groups, monitor, project_access
from bot.domain.accounts import SlackUser, gitlab_user_of
from bot.domain.approvals import visible_to
from bot.domain.changes import (
    approvals_needed,
    describe_change,
    perform_change,
    without_unchanged_toggle,
)
from bot.domain.channels import ChannelName, channel_to_watch_into
from bot.domain.errors import DomainError, NotAllowed
from bot.domain.inventory import take_inventory
from bot.domain.mirrors import (
    Operation,
    OperationRequest,
    list_project_mirrors,
    pull_mirror_or_none,
    push_mirror_public_key,
    require_maintainer,
)
from bot.domain.subscriptions import PULL_KEY, push_key
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError
from bot.gitlab.models import PullMirror, PushMirror
from bot.gitlab.refs import GroupRef, ProjectRef
from bot.services import Services
from bot.store.db import transaction

T = TypeVar("T")

# Commands that open a modal: Slack must open it within 3 s of the click, before any I/O.
MODAL_COMMANDS = frozenset({"login", "add", "edit", "pull-config", "rotate"})


@dataclass(frozen=True)
class Actor:
    """Who is asking, and from which channel."""

    team_id: str
    user_id: str
    channel_id: str

    @property
    def slack_user(self) -> SlackUser:
        return SlackUser(self.team_id, self.user_id)


async def run_text(text: str, actor: Actor, services: Services) -> Reply:
    try:
        command = parse_command(text, services.settings.gitlab_url)
    except UsageError as exc:
        return Problem(exc.message, exc.usage)
    return await run_command(command, actor, services)


async def run_command(command: Command, actor: Actor, services: Services) -> Reply:
    return await run_guarded(lambda: _dispatch(command, actor, services))


async def run_guarded(work: Callable[[], Awaitable[Reply]]) -> Reply:
    """Run `work`; errors a person can act on become a `Problem` reply."""
    try:
        return await work()
    except UsageError as exc:
        return Problem(exc.message, exc.usage)
    except (GitLabError, DomainError) as exc:
        return Problem(exc.user_message)


async def _dispatch(command: Command, actor: Actor, services: Services) -> Reply:
    name = command.name
    if name == "help":
        return Help()
    if name == "whoami":
        return AccountInfo(await services.accounts.get(actor.slack_user))
    if name == "logout":
        removed = await services.accounts.unlink(actor.slack_user, channel_id=actor.channel_id)
        return Info(
            "your GitLab account is unlinked and its token deleted"
            if removed
            else "you had no GitLab account linked"
        )
    if name in ("users", "users-list", "users-unlink"):
        return await _admin_users(command, actor, services)
    if name == "approvals":
        gitlab = await services.accounts.gitlab_for(actor.slack_user)  # unlinked: nothing
        pending = await services.approvals.pending(actor.team_id)
        return PendingApprovals(await visible_to(gitlab, actor.user_id, pending))
    if name == "watching":
        return Watching(
            await services.subscriptions.of_channel(actor.channel_id),
            await services.subscriptions.active_mutes(actor.channel_id),
            await groups.group_watches(services.sessions, actor.channel_id),
        )
    if name == "status":
        if command.refresh:  # it spends the service token's budget: linked people only
            await services.accounts.gitlab_for(actor.slack_user)
        return await status_report(actor.channel_id, services, refresh=command.refresh)
    if name == "digest":
        return await _digest(command, actor, services)
    if name in MODAL_COMMANDS:
        raise UsageError(f"`{name.replace('-', ' ')}` opens a form: use it from Slack")
    gitlab = await services.accounts.gitlab_for(actor.slack_user)
    if command.group is not None and name in ("watch", "unwatch"):
        return await _group_subscription(command, command.group, gitlab, actor, services)
    if name == "inventory":
        # Its reads are many: paced by the caller's token's share of the budget.
        paced = await services.accounts.gitlab_for(actor.slack_user, services.budget_of)
        inventory = await take_inventory(
            services.sessions,
            paced,
            _required(command.group),
            stale_after=timedelta(days=services.settings.mirrorbot_stale_after),
            concurrency=services.settings.mirrorbot_monitor_concurrency,
        )
        return InventoryReport(inventory, command.csv)
    project_ref = _required(command.project)
    # Reads: one round trip each, named as the person named the project (bot/domain/mirrors.py).
    if name == "list":
        return MirrorList(await list_project_mirrors(gitlab, project_ref))
    if name == "show":
        mirror = await gitlab.get_push_mirror(project_ref, _required(command.mirror_id))
        return MirrorDetails(project_ref, mirror)
    if name == "key":
        mirror_id = _required(command.mirror_id)
        key = await push_mirror_public_key(gitlab, project_ref, mirror_id)
        return PublicKeyInfo(project_ref, mirror_id, key)
    if name == "pull":
        return PullDetails(project_ref, await gitlab.get_pull_mirror(project_ref))
    if name == "watch":
        channel = await channel_to_watch_into(
            services.channels, command.channel or ChannelName(id=actor.channel_id), actor.user_id
        )
        info = await services.subscriptions.watch(
            gitlab,
            project_ref,
            team_id=actor.team_id,
            channel_id=channel.id,
            user_id=actor.user_id,
            channel_name=channel.name,
        )
        shown = f"<#{channel.id}|{channel.name}>" if channel.name else f"<#{channel.id}>"
        if info.already:
            return Info(
                f"{shown} is already watching {info.project_path} "
                f"(since <@{info.created_by}> asked)"
            )
        return Info(f"{shown} now gets alerts for the mirrors of {info.project_path}")
    if name == "unwatch":
        project = await gitlab.get_project(project_ref)
        removed = await services.subscriptions.unwatch(actor.channel_id, project, by=actor.user_id)
        return Info(
            f"this channel no longer watches {project.path_with_namespace}"
            if removed
            else f"this channel was not watching {project.path_with_namespace}"
        )
    if name == "unmute":
        project = await gitlab.get_project(project_ref)
        key = PULL_KEY if command.mirror_id is None else push_key(command.mirror_id)
        what = "the pull mirror" if command.mirror_id is None else f"mirror {command.mirror_id}"
        ended = await services.subscriptions.unmute(
            actor.channel_id, project, key, by=actor.user_id
        )
        return Info(
            f"alerts for {what} are back on in this channel"
            if ended
            else f"{what} was not muted in this channel"
        )
    if name == "sync" and Operation.SYNC not in services.approval_required:
        if command.mirror_id is None:
            return await sync_all(gitlab, project_ref, actor, services)
        return await sync_one(gitlab, project_ref, command.mirror_id, actor, services)
    if name == "sync" and command.mirror_id is None:
        raise UsageError(
            "syncs need approval here: name one mirror", "/mirror sync PROJECT MIRROR_ID"
        )
    operation = Operation(name)
    return await request_change(
        gitlab, operation, project_ref, command.mirror_id, {}, actor, services
    )


async def _digest(command: Command, actor: Actor, services: Services) -> Reply:
    if command.digest_at is None:
        current = await digest.digest_of(services.sessions, actor.channel_id)
        if current is None:
            return Info("this channel has no daily digest — `/mirror digest 09:00 Europe/Berlin`")
        return Info(_digest_words(current))
    if command.digest_at == "off":
        ended = await digest.stop_digest(services.sessions, actor.channel_id)
        return Info("the daily digest is off" if ended else "this channel had no daily digest")
    # Posted in this channel: the bot must be able to post there, as for `watch`.
    channel = await channel_to_watch_into(
        services.channels, ChannelName(id=actor.channel_id), actor.user_id
    )
    schedule = await digest.set_digest(
        services.sessions,
        team_id=actor.team_id,
        channel_id=channel.id,
        user_id=actor.user_id,
        at=command.digest_at,
        timezone=command.digest_timezone,
        always=command.digest_always,
    )
    return Info(_digest_words(schedule))


def _digest_words(schedule: digest.DigestSchedule) -> str:
    when = f"every day at {schedule.at_time} ({schedule.timezone})"
    if schedule.always:
        return f"this channel gets a mirror digest {when}, even when all is well"
    return f"this channel gets a mirror digest {when} when something needs attention"


async def _group_subscription(
    command: Command, group: GroupRef, gitlab: GitLabClient, actor: Actor, services: Services
) -> Reply:
    if command.name == "unwatch":
        ended = await groups.unwatch_group(
            services.sessions, actor.channel_id, group, by=actor.user_id
        )
        if ended is None:
            return Info(f"this channel was not watching the group {group}/")
        return Info(
            f"this channel no longer watches the group {ended.group_path}/ "
            f"({ended.project_count} projects)"
        )
    channel = await channel_to_watch_into(
        services.channels, command.channel or ChannelName(id=actor.channel_id), actor.user_id
    )
    watch = await groups.watch_group(
        services.sessions,
        gitlab,
        group,
        team_id=actor.team_id,
        channel_id=channel.id,
        user_id=actor.user_id,
        channel_name=channel.name,
    )
    shown = f"<#{channel.id}|{channel.name}>" if channel.name else f"<#{channel.id}>"
    return Info(
        f"{shown} now gets alerts for the mirrors of the group {watch.group_path}/: "
        f"{watch.project_count} projects you maintain, and those added later"
    )


async def request_change(
    gitlab: GitLabClient,
    operation: Operation,
    project_ref: ProjectRef,
    mirror_id: int | None,
    attributes: dict[str, object],
    actor: Actor,
    services: Services,
) -> Reply:
    """Run a change now, or ask for approval when it needs one: by its name, or by what it
    does (an edit that unticks Enabled is a disable). Every door — command, button, form,
    App Home, console — comes through here."""
    project = await require_maintainer(gitlab, project_ref)
    request = OperationRequest(
        operation, project.id, project.path_with_namespace, mirror_id, dict(attributes)
    )
    required = services.approval_required
    current_mirror: PushMirror | None = None
    if mirror_id is not None and (operation in required or operation is Operation.EDIT):
        # also proves the mirror exists before anyone is asked
        current_mirror = await gitlab.get_push_mirror(request.project, mirror_id)
        request = replace(request, attributes=without_unchanged_toggle(request, current_mirror))
    needs = approvals_needed(request, current_mirror, required)
    if needs:
        current: PushMirror | PullMirror | None = current_mirror
        if operation is Operation.PULL_CONFIG:
            current = await pull_mirror_or_none(gitlab, request.project)
        requester = await gitlab_user_of(gitlab)
        approval = await services.approvals.request(
            request,
            team_id=actor.team_id,
            channel_id=actor.channel_id,
            requester_id=actor.user_id,
            requester_gitlab_user_id=requester.id,
            mirror_url=current_mirror.url if current_mirror else None,
            changes=describe_change(request, current),
            needs_approval_of=needs,
        )
        return ApprovalNeeded(approval)
    outcome = await perform_change(
        gitlab, request, actor_id=actor.user_id, sessions=services.sessions
    )
    if operation is Operation.SYNC and outcome.push_mirror is not None:
        return SyncStarted(actor.user_id, request.project, [outcome.push_mirror])
    return ChangeMade(actor.user_id, request, outcome)


async def sync_one(
    gitlab: GitLabClient, project_ref: ProjectRef, mirror_id: int, actor: Actor, services: Services
) -> Reply:
    """Ask for the sync and read the mirror at once: the answer goes out after GitLab's 204,
    one round trip, and the reply follows from there. The read may land just before the
    sync or just after; either is a baseline `follow_push_mirror` can settle from. The
    audit entry is written as soon as the sync's outcome is known, while the read is
    still on its way."""
    summary = f"started a sync of push mirror {mirror_id}"

    async def sync_and_audit() -> None:
        try:
            await gitlab.sync_push_mirror(project_ref, mirror_id)
        except Exception as exc:
            await _audit_sync(services, actor, project_ref, mirror_id, _user_message(exc))
            raise
        await _audit_sync(services, actor, project_ref, mirror_id, summary, executed=True)

    sync, mirror = await asyncio.gather(
        sync_and_audit(), gitlab.get_push_mirror(project_ref, mirror_id), return_exceptions=True
    )
    if isinstance(sync, BaseException):
        raise sync
    if isinstance(mirror, BaseException):
        if not isinstance(mirror, GitLabError):
            raise mirror
        return Info(f"{summary} of {project_ref}; GitLab may delay it by up to 5 minutes")
    return SyncStarted(actor.user_id, project_ref, [mirror])


async def sync_all(
    gitlab: GitLabClient, project_ref: ProjectRef, actor: Actor, services: Services
) -> Reply:
    """Every enabled push mirror's sync asked for at once, after one read of the list."""
    mirrors = await gitlab.list_push_mirrors(project_ref)
    enabled = [m for m in mirrors if m.enabled]
    skipped = [f"mirror {m.id} is disabled" for m in mirrors if not m.enabled]
    outcomes = await asyncio.gather(
        *(gitlab.sync_push_mirror(project_ref, m.id) for m in enabled), return_exceptions=True
    )
    started = []
    for mirror, outcome in zip(enabled, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, GitLabError):
                raise outcome
            skipped.append(f"mirror {mirror.id}: {outcome.user_message}")
            await _audit_sync(services, actor, project_ref, mirror.id, outcome.user_message)
        else:
            started.append(mirror)  # as read before the sync: the follow's baseline
            await _audit_sync(
                services,
                actor,
                project_ref,
                mirror.id,
                f"started a sync of push mirror {mirror.id}",
                executed=True,
            )
    if not started and not skipped:
        return Info(f"{project_ref} has no push mirrors")
    return SyncStarted(actor.user_id, project_ref, started, skipped)


async def _audit_sync(
    services: Services,
    actor: Actor,
    project: ProjectRef,
    mirror_id: int,
    result: str,
    *,
    executed: bool = False,
) -> None:
    async with transaction(services.sessions) as session:
        audit.record(
            session,
            actor=actor.user_id,
            event=audit.AuditEvent.EXECUTED if executed else audit.AuditEvent.FAILED,
            operation=Operation.SYNC.value,
            project=str(project),
            mirror_id=mirror_id,
            result=result,
        )


def _user_message(exc: BaseException) -> str:
    return getattr(exc, "user_message", None) or type(exc).__name__


async def status_report(channel_id: str, services: Services, *, refresh: bool) -> Reply:
    """Answer from the monitor's observations; `refresh` checks GitLab first (the same
    check the monitor makes, so a failure it finds alerts too)."""
    subscriptions = await services.subscriptions.of_channel(channel_id)
    if not subscriptions:
        return Info("this channel watches no project — start with `/mirror watch PROJECT`")
    project_ids = [s.project_id for s in subscriptions]
    if refresh:
        gitlab = services.service_gitlab()
        if gitlab is None:
            raise NotAllowed("`--refresh` needs GITLAB_SERVICE_TOKEN to be configured")
        await monitor.check_projects(
            services.sessions,
            gitlab,
            [(s.project_id, s.project_path) for s in subscriptions],
            concurrency=services.settings.mirrorbot_monitor_concurrency,
            remind_after=timedelta(seconds=services.settings.mirrorbot_remind_after),
        )
    observations = await services.subscriptions.observations(project_ids)
    oldest = min((o.observed_at for o in observations), default=None)
    unchecked = await project_access.unchecked(services.sessions, project_ids)
    return StatusReport(observations, len(project_ids), oldest, refresh, unchecked)


async def _admin_users(command: Command, actor: Actor, services: Services) -> Reply:
    if not services.is_admin(actor.user_id):
        raise NotAllowed("only Mirrorbot admins (MIRRORBOT_ADMINS) can manage linked users")
    if command.name == "users-unlink":
        assert command.target_user is not None
        removed = await services.accounts.unlink(
            SlackUser(actor.team_id, command.target_user),
            by=actor.user_id,
            channel_id=actor.channel_id,
        )
        return Info(
            f"unlinked <@{command.target_user}>"
            if removed
            else f"<@{command.target_user}> was not linked"
        )
    return LinkedUsers(await services.accounts.list_links(actor.team_id))


def _required(value: T | None) -> T:
    if value is None:
        raise UsageError("a required argument is missing")
    return value
