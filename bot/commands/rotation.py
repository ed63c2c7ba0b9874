"""`/mirror rotate` for every door (command, buttons, form, console): start a rotation, or
ask for its approval, and the *Key installed — switch* click. Driving a rotation after
that is the caller's (Slack: bot/slack/rotations.py; the console drives it inline)."""

from __future__ import annotations

from bot.commands.results import ApprovalNeeded, Reply, RotationProgress
from bot.commands.run import Actor
from bot.domain.accounts import gitlab_user_of
from bot.domain.changes import AttributeChange, describe_change
from bot.domain.mirrors import Operation, OperationRequest, require_maintainer
from bot.domain.rotations import (
    KEPT_SETTINGS,
    NewCredentials,
    RotationRefused,
    settings_of,
)
from bot.gitlab.client import GitLabClient
from bot.gitlab.models import Project, PushMirror
from bot.gitlab.refs import ProjectRef
from bot.services import Services


async def mirror_to_rotate(
    gitlab: GitLabClient, project_ref: ProjectRef, mirror_id: int
) -> tuple[Project, PushMirror]:
    """The mirror, read as a Maintainer (the form asks for credentials only if needed)."""
    project = await require_maintainer(gitlab, project_ref)
    ref = ProjectRef.of(project.id, project.path_with_namespace)
    return project, await gitlab.get_push_mirror(ref, mirror_id)


async def request_rotation(
    gitlab: GitLabClient,
    project_ref: ProjectRef,
    mirror_id: int,
    credentials: NewCredentials | None,
    actor: Actor,
    services: Services,
) -> Reply:
    project, mirror = await mirror_to_rotate(gitlab, project_ref, mirror_id)
    if credentials is not None and (problems := credentials.problems()):
        raise RotationRefused("; ".join(problems.values()))
    requester = await gitlab_user_of(gitlab)
    approval_id = None
    approval = None
    if Operation.ROTATE in services.approval_required:
        approval = await services.approvals.request(
            OperationRequest(Operation.ROTATE, project.id, project.path_with_namespace, mirror_id),
            team_id=actor.team_id,
            channel_id=actor.channel_id,
            requester_id=actor.user_id,
            requester_gitlab_user_id=requester.id,
            mirror_url=mirror.url,
            changes=rotation_changes(mirror, credentials),
            needs_approval_of=(Operation.ROTATE,),
        )
        approval_id = approval.id
    rotation = await services.rotations.request(
        mirror,
        project_id=project.id,
        project_path=project.path_with_namespace,
        team_id=actor.team_id,
        channel_id=actor.channel_id,
        requester_id=actor.user_id,
        requester_gitlab_user_id=requester.id,
        credentials=credentials,
        approval_id=approval_id,
    )
    if approval is not None:
        return ApprovalNeeded(approval)
    return RotationProgress(rotation)


def rotation_changes(
    mirror: PushMirror, credentials: NewCredentials | None
) -> tuple[AttributeChange, ...]:
    """What the approval card shows: the scrubbed URL and every setting kept."""
    settings = settings_of(mirror)
    described = describe_change(
        OperationRequest(
            Operation.ADD,
            0,
            "",
            attributes={"url": mirror.url, **{k: settings[k] for k in KEPT_SETTINGS}},
        ),
        None,
    )
    what = (
        "new username and password (hidden)"
        if credentials is not None
        else "a new key pair and fresh host keys"
    )
    kept = tuple(
        AttributeChange(c.label, c.new, c.new, c.code) if c.label != "Target URL" else c
        for c in described
    )
    return (*kept, AttributeChange("Credentials", what))


async def key_installed(rotation_id: str, actor: Actor, services: Services) -> Reply:
    """The requester or another Maintainer says the new key is installed: switch."""
    rotation = await services.rotations.get(rotation_id)
    if rotation is None:
        raise RotationRefused("that rotation no longer exists")
    if actor.user_id != rotation.requester_id:
        clicker = await services.accounts.gitlab_for(actor.slack_user)
        await require_maintainer(clicker, rotation.project)
    return RotationProgress(await services.rotations.key_installed(rotation_id, actor.user_id))
