"""Run a parsed command for a person: the one place that decides what each command does.

Takes plain values (who, where, which command) and returns a typed result; it never
touches Slack. Errors a person can act on come back as `Problem`, never as exceptions.
"""

from __future__ import annotations

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
from bot.domain import monitor, project_access
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
from bot.domain.mirrors import (
    Operation,
    OperationRequest,
    list_project_mirrors,
    pull_mirror_or_none,
    require_maintainer,
)
from bot.domain.subscriptions import PULL_KEY, push_key
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError
from bot.gitlab.models import Project, PullMirror, PushMirror
from bot.gitlab.refs import ProjectRef
from bot.services import Services

T = TypeVar("T")

# Commands that open a modal: Slack must open it within 3 s of the click, before any I/O.
MODAL_COMMANDS = frozenset({"login", "add", "edit", "pull-config"})


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
        )
    if name == "status":
        return await status_report(actor.channel_id, services, refresh=command.refresh)
    if name in MODAL_COMMANDS:
        raise UsageError(f"`{name.replace('-', ' ')}` opens a form: use it from Slack")
    gitlab = await services.accounts.gitlab_for(actor.slack_user)
    project_ref = _required(command.project)
    if name == "list":
        return MirrorList(await list_project_mirrors(gitlab, project_ref))
    if name == "show":
        project = await gitlab.get_project(project_ref)
        mirror = await gitlab.get_push_mirror(_canonical(project), _required(command.mirror_id))
        return MirrorDetails(project, mirror)
    if name == "key":
        project = await gitlab.get_project(project_ref)
        mirror_id = _required(command.mirror_id)
        key = await gitlab.get_push_mirror_public_key(_canonical(project), mirror_id)
        return PublicKeyInfo(project, mirror_id, key)
    if name == "pull":
        project = await gitlab.get_project(project_ref)
        return PullDetails(project, await gitlab.get_pull_mirror(_canonical(project)))
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
    if name == "sync" and command.mirror_id is None:
        return await sync_all(gitlab, project_ref, actor, services)
    operation = Operation(name)
    return await request_change(
        gitlab, operation, project_ref, command.mirror_id, {}, actor, services
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
        return SyncStarted(actor.user_id, project, [outcome.push_mirror])
    return ChangeMade(actor.user_id, request, outcome)


async def sync_all(
    gitlab: GitLabClient, project_ref: ProjectRef, actor: Actor, services: Services
) -> Reply:
    if Operation.SYNC in services.approval_required:
        raise UsageError(
            "syncs need approval here: name one mirror", "/mirror sync PROJECT MIRROR_ID"
        )
    project = await require_maintainer(gitlab, project_ref)
    ref = _canonical(project)
    started, skipped = [], []
    for mirror in await gitlab.list_push_mirrors(ref):
        if not mirror.enabled:
            skipped.append(f"mirror {mirror.id} is disabled")
            continue
        try:
            await gitlab.sync_push_mirror(ref, mirror.id)
            started.append(await gitlab.get_push_mirror(ref, mirror.id))
        except GitLabError as exc:
            skipped.append(f"mirror {mirror.id}: {exc.user_message}")
    if not started and not skipped:
        return Info(f"{project.path_with_namespace} has no push mirrors")
    return SyncStarted(actor.user_id, project, started, skipped)


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


def _canonical(project: Project) -> ProjectRef:
    return ProjectRef.of(project.id, project.path_with_namespace)


def _required(value: T | None) -> T:
    if value is None:
        raise UsageError("a required argument is missing")
    return value
