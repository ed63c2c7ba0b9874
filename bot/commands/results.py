"""What a command produced, as plain data. Renderers turn these into Block Kit or text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.accounts import AccountLink
from bot.domain.approvals import Approval
from bot.domain.device_login import FinishedLogin, StartedLogin
from bot.domain.groups import GroupWatch
from bot.domain.inventory import Inventory
from bot.domain.mirrors import OperationOutcome, OperationRequest, ProjectMirrors
from bot.domain.project_access import UncheckedProject
from bot.domain.rotations import Rotation
from bot.domain.subscriptions import MirrorObservation, MuteInfo, SubscriptionInfo
from bot.gitlab.models import PullMirror, PushMirror
from bot.gitlab.refs import ProjectRef


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Problem:
    """Something the person must fix: one line, and the usage when input was wrong."""

    message: str
    usage: str | None = None


@dataclass(frozen=True)
class Info:
    """A one-line answer only the caller sees."""

    text: str


@dataclass(frozen=True)
class AccountInfo:
    link: AccountLink | None


@dataclass(frozen=True)
class MirrorList:
    mirrors: ProjectMirrors
    offset: int = 0


@dataclass(frozen=True)
class MirrorDetails:
    project: ProjectRef  # as typed, or by id and path where GitLab gave the path
    mirror: PushMirror


@dataclass(frozen=True)
class PullDetails:
    project: ProjectRef
    pull: PullMirror


@dataclass(frozen=True)
class PublicKeyInfo:
    project: ProjectRef
    mirror_id: int
    public_key: str


@dataclass(frozen=True)
class ChangeMade:
    """A change that ran: posted in the channel, naming who did it."""

    actor_id: str
    request: OperationRequest
    outcome: OperationOutcome
    approver_id: str | None = None


@dataclass(frozen=True)
class SyncStarted:
    """Syncs that were requested; the reply follows each mirror until GitLab says it
    finished or failed (`settled` holds those mirrors' ids)."""

    actor_id: str
    project: ProjectRef
    mirrors: list[PushMirror]
    skipped: list[str] = field(default_factory=list)  # one line per mirror not synced
    settled: frozenset[int] = frozenset()

    @property
    def failed(self) -> list[PushMirror]:
        return [m for m in self.mirrors if m.id in self.settled and m.is_failed]

    @property
    def all_settled(self) -> bool:
        return all(m.id in self.settled for m in self.mirrors)

    @property
    def succeeded(self) -> bool:
        """Syncs were requested, GitLab ran each to its end and none failed: what the
        console's `-c` exits 0 for."""
        return bool(self.mirrors) and self.all_settled and not self.failed


@dataclass(frozen=True)
class ApprovalNeeded:
    approval: Approval


@dataclass(frozen=True)
class ApprovalDecided:
    """A button changed the request; its card shows the new state."""

    approval: Approval


@dataclass(frozen=True)
class Muted:
    """A mirror's alerts silenced in one channel until `until` (announced to the channel)."""

    actor_id: str
    project_path: str
    mirror_id: int | None
    until: datetime


@dataclass(frozen=True)
class Watching:
    subscriptions: list[SubscriptionInfo]
    mutes: list[MuteInfo]
    groups: list[GroupWatch] = field(default_factory=list)


@dataclass(frozen=True)
class InventoryReport:
    inventory: Inventory
    as_csv: bool = False


@dataclass(frozen=True)
class StatusReport:
    observations: list[MirrorObservation]
    watched_projects: int
    oldest_observation: datetime | None
    refreshed: bool
    unchecked: list[UncheckedProject] = field(default_factory=list)  # the monitor cannot


@dataclass(frozen=True)
class RotationProgress:
    """A rotation as it stands: posted in the channel, then kept current."""

    rotation: Rotation


@dataclass(frozen=True)
class PendingApprovals:
    approvals: list[Approval]


@dataclass(frozen=True)
class LinkedUsers:
    links: list[AccountLink]


@dataclass(frozen=True)
class DeviceLoginStarted:
    login: StartedLogin


@dataclass(frozen=True)
class DeviceLoginFinished:
    login: FinishedLogin


Reply = (
    Help
    | Problem
    | Info
    | AccountInfo
    | MirrorList
    | MirrorDetails
    | PullDetails
    | PublicKeyInfo
    | ChangeMade
    | SyncStarted
    | ApprovalNeeded
    | ApprovalDecided
    | Muted
    | Watching
    | StatusReport
    | InventoryReport
    | PendingApprovals
    | LinkedUsers
    | DeviceLoginStarted
    | DeviceLoginFinished
    | RotationProgress
)
