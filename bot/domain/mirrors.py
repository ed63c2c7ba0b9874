"""Mirror operations as plain functions of a person's GitLab client.

Reads return data; changes are `Operation`s so that the same code runs them whether
they happen at once or after an approval (`execute_operation`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import (
    GitLabError,
    InsufficientRole,
    PullMirrorNotConfigured,
)
from bot.gitlab.models import (
    MAINTAINER,
    Project,
    PullMirror,
    PullMirrorConfig,
    PushMirror,
    PushMirrorCreate,
    PushMirrorUpdate,
)
from bot.gitlab.refs import ProjectRef

A = TypeVar("A")
B = TypeVar("B")


class Operation(StrEnum):
    """The changes a person can make; names as `MIRRORBOT_APPROVAL_REQUIRED` lists them."""

    DELETE = "delete"
    DISABLE = "disable"
    ENABLE = "enable"
    SYNC = "sync"
    ADD = "add"
    EDIT = "edit"
    PULL_CONFIG = "pull-config"
    PULL_SYNC = "pull-sync"
    ROTATE = "rotate"

    @property
    def verb(self) -> str:
        return _VERBS[self]


_VERBS = {
    Operation.DELETE: "delete push mirror",
    Operation.DISABLE: "disable push mirror",
    Operation.ENABLE: "enable push mirror",
    Operation.SYNC: "sync push mirror",
    Operation.ADD: "add a push mirror",
    Operation.EDIT: "edit push mirror",
    Operation.PULL_CONFIG: "configure the pull mirror",
    Operation.PULL_SYNC: "start pull mirroring",
    Operation.ROTATE: "rotate the credentials of push mirror",
}


@dataclass(frozen=True)
class ProjectMirrors:
    """Everything `/mirror list` shows of one project."""

    project: ProjectRef  # as the person named it: the mirror answers carry no project
    push_mirrors: list[PushMirror]
    pull_mirror: PullMirror | None
    pull_note: str | None  # why there is no pull mirror to show


@dataclass(frozen=True)
class OperationRequest:
    """One change to make: what, where, and its attributes (create/update/pull config)."""

    operation: Operation
    project_id: int
    project_path: str
    mirror_id: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def project(self) -> ProjectRef:
        return ProjectRef.of(self.project_id, self.project_path)


@dataclass(frozen=True)
class OperationOutcome:
    """What a change did, in one line, and the mirror's state afterwards (if it exists)."""

    summary: str
    push_mirror: PushMirror | None = None
    pull_mirror: PullMirror | None = None


async def resolve_project(gitlab: GitLabClient, ref: ProjectRef) -> Project:
    """The project as GitLab knows it (canonical path, numeric id, caller's role)."""
    return await gitlab.get_project(ref)


async def require_maintainer(gitlab: GitLabClient, ref: ProjectRef) -> Project:
    project = await gitlab.get_project(ref)
    if project.access_level < MAINTAINER:
        raise InsufficientRole(project.path_with_namespace)
    return project


# Reads go out in one round trip: `:id` may be the path, so no project lookup comes first,
# and what one answer needs is asked for at once. GitLab's refusals say enough; only a
# 401 costs one more request (`GET /user`, in the client) to tell a role from a token.


async def list_project_mirrors(gitlab: GitLabClient, ref: ProjectRef) -> ProjectMirrors:
    push_mirrors, (pull_mirror, pull_note) = await _both(
        gitlab.list_push_mirrors(ref), _pull_or_note(gitlab, ref)
    )
    return ProjectMirrors(ref, push_mirrors, pull_mirror, pull_note)


async def push_mirror_public_key(gitlab: GitLabClient, ref: ProjectRef, mirror_id: int) -> str:
    """The key, read beside the mirror: GitLab's 404 for the key means "no such mirror" or
    "not an SSH-key mirror", and the mirror's own answer tells which."""
    _, key = await _both(
        gitlab.get_push_mirror(ref, mirror_id),
        gitlab.get_push_mirror_public_key(ref, mirror_id, read_mirror_on_404=False),
    )
    return key


async def _both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both at once; the first one's error wins (it says more: the mirror, the project)."""
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    for outcome in (a, b):
        if isinstance(outcome, BaseException) and not isinstance(outcome, GitLabError):
            raise outcome
    if isinstance(a, BaseException):
        raise a
    if isinstance(b, BaseException):
        raise b
    return a, b


async def _pull_or_note(
    gitlab: GitLabClient, ref: ProjectRef
) -> tuple[PullMirror | None, str | None]:
    try:
        return await gitlab.get_pull_mirror(ref), None
    except PullMirrorNotConfigured:
        return None, "no pull mirror (a GitLab Premium feature)"
    except InsufficientRole:
        return None, "pull mirror not visible: it needs the Maintainer role"


async def pull_mirror_or_none(gitlab: GitLabClient, ref: ProjectRef) -> PullMirror | None:
    """The project's pull mirror, or None when it has none yet (a form starts empty)."""
    try:
        return await gitlab.get_pull_mirror(ref)
    except PullMirrorNotConfigured:
        return None


BRANCH_CHOICE = ("only_protected_branches", "mirror_branch_regex")


def branch_options(attributes: dict[str, Any], current: PushMirror | None) -> dict[str, Any]:
    """A form's branch choice (both keys: protected only, and a filter, "" for none) as
    GitLab takes it. GitLab refuses the two keys in one request (400, even with one of them
    empty), so one is sent: a filter (GitLab then turns "protected only" off), or "protected
    only" (GitLab then drops the filter); for all branches, an empty filter if the mirror
    has one (that removes it), else "protected only" off."""
    if not all(key in attributes for key in BRANCH_CHOICE):
        return attributes
    rest = {k: v for k, v in attributes.items() if k not in BRANCH_CHOICE}
    if regex := attributes["mirror_branch_regex"]:
        return {**rest, "mirror_branch_regex": regex}
    if attributes["only_protected_branches"]:
        return {**rest, "only_protected_branches": True}
    if current is not None and current.mirror_branch_regex:
        return {**rest, "mirror_branch_regex": ""}
    return {**rest, "only_protected_branches": False}


def _clears_a_filter(attributes: dict[str, Any]) -> bool:
    return all(key in attributes for key in BRANCH_CHOICE) and not any(
        attributes[key] for key in BRANCH_CHOICE
    )


async def execute_operation(gitlab: GitLabClient, request: OperationRequest) -> OperationOutcome:
    """Run one change with `gitlab` (the requester's client)."""
    ref, mirror_id = request.project, request.mirror_id
    op = request.operation
    if op is Operation.ADD:
        attributes = branch_options(request.attributes, None)
        created = await gitlab.create_push_mirror(ref, PushMirrorCreate(**attributes))
        return OperationOutcome(f"added push mirror {created.id} → {created.url}", created)
    if op is Operation.PULL_CONFIG:
        pull = await gitlab.configure_pull_mirror(ref, PullMirrorConfig(**request.attributes))
        state = "enabled" if pull.enabled else "disabled"
        return OperationOutcome(
            f"configured the pull mirror from {pull.url} ({state})", pull_mirror=pull
        )
    if op is Operation.PULL_SYNC:
        await gitlab.start_pull_mirror(ref)
        return OperationOutcome(
            "started pull mirroring (GitLab may defer it until the mirror's next interval)"
        )
    assert mirror_id is not None, f"{op} needs a mirror id"
    if op is Operation.DELETE:
        mirror = await gitlab.get_push_mirror(ref, mirror_id)
        await gitlab.delete_push_mirror(ref, mirror_id)
        return OperationOutcome(f"deleted push mirror {mirror_id} ({mirror.url})")
    if op in (Operation.ENABLE, Operation.DISABLE):
        enabled = op is Operation.ENABLE
        mirror = await gitlab.update_push_mirror(ref, mirror_id, PushMirrorUpdate(enabled=enabled))
        return OperationOutcome(f"{op.value}d push mirror {mirror_id} ({mirror.url})", mirror)
    if op is Operation.EDIT:
        # Which key clears the branch options depends on what the mirror has now.
        current = (
            await gitlab.get_push_mirror(ref, mirror_id)
            if _clears_a_filter(request.attributes)
            else None
        )
        attributes = branch_options(request.attributes, current)
        mirror = await gitlab.update_push_mirror(ref, mirror_id, PushMirrorUpdate(**attributes))
        return OperationOutcome(f"updated push mirror {mirror_id} ({mirror.url})", mirror)
    if op is Operation.SYNC:
        await gitlab.sync_push_mirror(ref, mirror_id)
        mirror = await gitlab.get_push_mirror(ref, mirror_id)
        return OperationOutcome(
            f"started a sync of push mirror {mirror_id} ({mirror.url}); GitLab may delay it by "
            "up to 5 minutes if the mirror ran recently",
            mirror,
        )
    raise AssertionError(f"unhandled operation {op}")


@dataclass(frozen=True)
class SyncProgress:
    """A followed mirror as GitLab last showed it. `settled`: GitLab ran the sync that was
    asked for to its end, so `mirror.update_status` (finished or failed) is its result;
    until then the status GitLab shows may still be the previous update's."""

    mirror: PushMirror
    settled: bool


async def follow_push_mirror(
    gitlab: GitLabClient,
    ref: ProjectRef,
    mirror_id: int,
    *,
    interval: float,
    give_up_after: float,
    requested: PushMirror | None = None,
) -> AsyncIterator[SyncProgress]:
    """Yield the mirror each time its status changes, until the sync settles or time runs
    out. `requested` is the mirror as read just after the sync was asked for."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after
    last: tuple[str, bool] | None = None
    seen_progress = requested is not None and requested.is_in_progress
    ended_before = requested.last_update_at if requested is not None else None
    while loop.time() < deadline:
        mirror = await gitlab.get_push_mirror(ref, mirror_id)
        if requested is None:
            requested, ended_before = mirror, mirror.last_update_at
        seen_progress = seen_progress or mirror.is_in_progress
        # A sync GitLab delayed still shows the previous result: it has settled once it
        # was seen running, or once an update ended after the one shown at the request.
        settled = not mirror.is_in_progress and (
            seen_progress or mirror.last_update_at != ended_before
        )
        if (mirror.update_status, settled) != last:
            last = (mirror.update_status, settled)
            yield SyncProgress(mirror, settled)
        if settled:
            return
        await asyncio.sleep(interval)
