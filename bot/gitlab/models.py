"""Pydantic models of GitLab's mirror payloads and the request attributes we send.

Unknown extra fields are ignored (GitLab adds fields over time); fields that older
versions omit have defaults. Every URL and error text is scrubbed on the way in.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from bot.gitlab.scrub import scrub_text, scrub_url

# Push-mirror statuses from GitLab's state machine; `scheduled` is documented though the
# code never sets it for push mirrors. Only `failed` is a failure (`to_retry` is transient).
PUSH_STATUSES = ("none", "scheduled", "started", "to_retry", "finished", "failed")
# Pull-mirror statuses (ProjectImportState).
PULL_STATUSES = ("none", "scheduled", "started", "finished", "failed", "canceled")
IN_PROGRESS_STATUSES = frozenset({"scheduled", "started", "to_retry"})

AuthMethod = Literal["ssh_public_key", "password"]


class _GitLabModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HostKey(_GitLabModel):
    fingerprint_sha256: str


class _Updates(_GitLabModel):
    """A mirror's URL, last error and update times, as every GitLab answer about a mirror
    has them (REST's mirrors, GraphQL's import states); URL and error scrubbed on the way in."""

    url: str | None = None
    last_error: str | None = None
    last_update_at: datetime | None = None
    last_update_started_at: datetime | None = None
    last_successful_update_at: datetime | None = None

    @field_validator("url")
    @classmethod
    def _scrub_url(cls, value: str | None) -> str | None:
        return scrub_url(value)

    @field_validator("last_error")
    @classmethod
    def _scrub_error(cls, value: str | None) -> str | None:
        return scrub_text(value)


class _MirrorState(_Updates):
    """Fields push and pull mirrors share."""

    enabled: bool = False
    update_status: str = "none"
    mirror_branch_regex: str | None = None

    @property
    def is_failed(self) -> bool:
        return self.update_status == "failed"

    @property
    def is_in_progress(self) -> bool:
        return self.update_status in IN_PROGRESS_STATUSES


class PushMirror(_MirrorState):
    id: int
    auth_method: str = "password"
    keep_divergent_refs: bool | None = None
    only_protected_branches: bool | None = None
    host_keys: list[HostKey] = []

    @field_validator("auth_method", mode="before")
    @classmethod
    def _default_auth_method(cls, value: object) -> object:
        # GitLab's reader defaults a blank auth_method to "password".
        return value or "password"

    @property
    def has_public_key(self) -> bool:
        """GitLab serves `public_key` only for ssh:// URLs with SSH key auth."""
        return (self.url or "").startswith("ssh://") and self.auth_method == "ssh_public_key"


class PullMirror(_MirrorState):
    id: int | None = None  # the import_state row id, not the project id
    mirror_trigger_builds: bool | None = None
    only_mirror_protected_branches: bool | None = None
    mirror_overwrites_diverged_branches: bool | None = None


class ImportState(_Updates):
    """A project's import state as GraphQL's `Project.detailedImportStatus` shows it. A pull
    mirror has one, but so has a one-time import and a pull mirror since disabled: GraphQL
    does not say which, so only where REST said "a pull mirror" is it read as one."""

    id: int | None = None  # the import_state row id, as in PullMirror
    status: str = "none"  # last_error: null below Maintainer (read_import_error)

    def as_pull_mirror(self) -> PullMirror:
        """The state of a project known to be a pull mirror: what REST's `GET
        /projects/:id/mirror/pull` reports of it (REST answers only while it is enabled)."""
        return PullMirror(
            id=self.id,
            url=self.url,
            enabled=True,
            update_status=self.status,
            last_error=self.last_error,
            last_update_at=self.last_update_at,
            last_update_started_at=self.last_update_started_at,
            last_successful_update_at=self.last_successful_update_at,
        )


class PublicKey(_GitLabModel):
    public_key: str


class GitLabUser(_GitLabModel):
    id: int
    username: str
    name: str | None = None
    state: str | None = None
    is_admin: bool | None = None
    # True for the user behind a project or group access token (one Maintainer can mint
    # any number of them), so it is no second person.
    bot: bool | None = None
    web_url: str | None = None


class PersonalAccessToken(_GitLabModel):
    """`GET /personal_access_tokens/self`: the scopes and expiry of the caller's token."""

    id: int | None = None
    name: str | None = None
    scopes: list[str] = []
    active: bool | None = None
    revoked: bool | None = None
    expires_at: date | None = None


class ProjectAccess(_GitLabModel):
    access_level: int


class ProjectPermissions(_GitLabModel):
    project_access: ProjectAccess | None = None
    group_access: ProjectAccess | None = None


class Project(_GitLabModel):
    id: int
    path_with_namespace: str
    name: str | None = None
    web_url: str | None = None
    visibility: str | None = None
    permissions: ProjectPermissions | None = None
    mirror: bool | None = None  # group listings on Premium: True when it has a pull mirror

    @property
    def access_level(self) -> int:
        """The caller's effective access level: the higher of project and group access."""
        if self.permissions is None:
            return 0
        levels = [
            access.access_level
            for access in (self.permissions.project_access, self.permissions.group_access)
            if access is not None
        ]
        return max(levels, default=0)


class Group(_GitLabModel):
    id: int
    full_path: str
    name: str | None = None
    web_url: str | None = None


# GitLab access levels.
GUEST, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 20, 30, 40, 50
ROLE_NAMES = {
    GUEST: "Guest",
    REPORTER: "Reporter",
    DEVELOPER: "Developer",
    MAINTAINER: "Maintainer",
    OWNER: "Owner",
}


class _Attributes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_params(self) -> dict[str, object]:
        """Only the attributes the caller set, so GitLab keeps the others as they are."""
        return self.model_dump(exclude_unset=True)


class PushMirrorCreate(_Attributes):
    url: str
    enabled: bool | None = None
    auth_method: AuthMethod | None = None
    keep_divergent_refs: bool | None = None
    only_protected_branches: bool | None = None
    mirror_branch_regex: str | None = None


class PushMirrorUpdate(_Attributes):
    """PUT takes every create attribute except `url`: GitLab cannot change a mirror's URL."""

    enabled: bool | None = None
    auth_method: AuthMethod | None = None
    keep_divergent_refs: bool | None = None
    only_protected_branches: bool | None = None
    mirror_branch_regex: str | None = None


class PullMirrorConfig(_Attributes):
    url: str | None = None
    auth_user: str | None = None
    auth_password: str | None = None
    enabled: bool | None = None
    mirror_trigger_builds: bool | None = None
    only_mirror_protected_branches: bool | None = None
    mirror_overwrites_diverged_branches: bool | None = None
    mirror_branch_regex: str | None = None
