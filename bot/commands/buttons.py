"""What pressing a button does, for Slack and the console alike.

A button carries an action id and a small value (`bot/commands/actions.py`); `press` acts on the
mirror or approval it names, as the person who pressed, and returns a typed result.
"""

from __future__ import annotations

from datetime import timedelta

from bot.commands.actions import (
    AlertActions,
    ApprovalActions,
    ApprovalRef,
    MirrorActions,
    MirrorRef,
    RotationActions,
    RotationRef,
)
from bot.commands.parse import Command, UsageError
from bot.commands.results import ApprovalDecided, MirrorList, Muted, Reply
from bot.commands.rotation import key_installed
from bot.commands.run import Actor, request_change, run_command, run_guarded
from bot.domain.accounts import SlackUser, gitlab_user_of
from bot.domain.approvals import ApprovalRefused
from bot.domain.errors import DomainError
from bot.domain.mirrors import (
    Operation,
    execute_operation,
    list_project_mirrors,
    require_maintainer,
)
from bot.domain.subscriptions import PULL_KEY, push_key
from bot.gitlab.errors import GitLabError
from bot.gitlab.refs import ProjectRef
from bot.services import Services
from bot.store.models import utcnow

MUTE_FOR = timedelta(hours=24)
_CHANGES = {
    MirrorActions.ENABLE: Operation.ENABLE,
    MirrorActions.DISABLE: Operation.DISABLE,
    MirrorActions.DELETE: Operation.DELETE,
    MirrorActions.PULL_SYNC: Operation.PULL_SYNC,
}
# Run as the command would: reads and a sync in one round trip (bot/commands/run.py).
_AS_COMMAND = {
    MirrorActions.PUBLIC_KEY: "key",
    MirrorActions.DETAILS: "show",
    MirrorActions.SYNC: "sync",
}

_APPROVAL_ACTIONS = frozenset(action.value for action in ApprovalActions)


async def press(action_id: str, value: str, actor: Actor, services: Services) -> Reply:
    return await run_guarded(lambda: _press(action_id, value, actor, services))


async def _press(action_id: str, value: str, actor: Actor, services: Services) -> Reply:
    if action_id in _APPROVAL_ACTIONS:
        return await decide(
            ApprovalActions(action_id),
            ApprovalRef.model_validate_json(value).request_id,
            actor,
            services,
        )
    if action_id == RotationActions.KEY_INSTALLED:
        rotation_id = RotationRef.model_validate_json(value).rotation_id
        return await key_installed(rotation_id, actor, services)
    target = MirrorRef.model_validate_json(value)
    project = target.project
    if action_id == AlertActions.MUTE:
        return await mute(project, target.mirror_id, actor, services)
    mirror_action = MirrorActions(action_id.removesuffix("-prev"))
    gitlab = await services.accounts.gitlab_for(actor.slack_user)
    if mirror_action is MirrorActions.PAGE:
        return MirrorList(await list_project_mirrors(gitlab, project), target.offset or 0)
    if mirror_action in _AS_COMMAND:
        if target.mirror_id is None:
            raise UsageError("that button names no mirror")
        return await run_command(
            Command(_AS_COMMAND[mirror_action], project, target.mirror_id), actor, services
        )
    return await request_change(
        gitlab, _CHANGES[mirror_action], project, target.mirror_id, {}, actor, services
    )


async def decide(
    action: ApprovalActions, request_id: str, actor: Actor, services: Services
) -> Reply:
    """Approve, reject or cancel; an approved change runs with the requester's token."""
    approval = await services.approvals.get(request_id)
    if approval is None or approval.team_id != actor.team_id:
        raise ApprovalRefused("that approval request no longer exists")
    if action is ApprovalActions.CANCEL:
        await services.approvals.cancel(request_id, actor.user_id)
        return await _decided(request_id, services)
    if actor.user_id == approval.requester_id and action is ApprovalActions.APPROVE:
        raise ApprovalRefused(
            "you cannot approve your own request — ask a colleague with the Maintainer role"
        )
    # The approver's own token must show at least Maintainer on the project.
    approver_gitlab = await services.accounts.gitlab_for(actor.slack_user)
    await require_maintainer(
        approver_gitlab, ProjectRef.of(approval.project_id, approval.project_path)
    )
    if action is ApprovalActions.REJECT:
        await services.approvals.reject(request_id, actor.user_id)
        return await _decided(request_id, services)
    approver = await gitlab_user_of(approver_gitlab)
    if approver.bot:
        raise ApprovalRefused(
            "a project or group access token cannot approve: its bot user is no second "
            "person — link your own GitLab account with `/mirror login`"
        )
    operation, requester_gitlab_user_id = await services.approvals.approve(
        request_id, actor.user_id, approver.id
    )
    if approval.operation is Operation.ROTATE:  # the worker runs it, posting its progress
        started = await services.rotations.approved(request_id)
        await services.approvals.finish(
            request_id,
            succeeded=started is not None,
            result="the rotation starts now; its progress is posted in this channel"
            if started
            else "the rotation request is gone",
        )
        return await _decided(request_id, services)
    try:
        requester = SlackUser(approval.team_id, approval.requester_id)
        gitlab = await services.accounts.gitlab_for(requester)
        # The requester's link may have been changed since: to the approver's GitLab user,
        # say. Run only as the GitLab user who asked.
        if (await gitlab_user_of(gitlab)).id != requester_gitlab_user_id:
            raise ApprovalRefused(
                "the requester's Slack account is now linked to another GitLab user; "
                "nothing was changed — they should ask again"
            )
        outcome = await execute_operation(gitlab, operation)
    except (GitLabError, DomainError) as exc:
        await services.approvals.finish(request_id, succeeded=False, result=exc.user_message)
    else:
        await services.approvals.finish(request_id, succeeded=True, result=outcome.summary)
    return await _decided(request_id, services)


async def _decided(request_id: str, services: Services) -> Reply:
    approval = await services.approvals.get(request_id)
    assert approval is not None
    return ApprovalDecided(approval)


async def mute(
    project_ref: ProjectRef, mirror_id: int | None, actor: Actor, services: Services
) -> Reply:
    """Silence one mirror in this channel for 24 h: no alert, reminder or recovery."""
    gitlab = await services.accounts.gitlab_for(actor.slack_user)
    project = await gitlab.get_project(project_ref)
    key = PULL_KEY if mirror_id is None else push_key(mirror_id)
    until = utcnow() + MUTE_FOR
    await services.subscriptions.mute(
        actor.channel_id,
        project.id,
        key,
        until,
        actor.user_id,
        project_path=project.path_with_namespace,
    )
    return Muted(actor.user_id, project.path_with_namespace, mirror_id, until)
