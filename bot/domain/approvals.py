"""Approval requests: an operation waits until a second person approves it.

Every state change is one conditional UPDATE (`WHERE status = 'pending' AND …`), so a
double click, two replicas, or a click after expiry can change a request only once.

    pending ──approve──▶ approved ──run──▶ executed | failed
       ├──reject──▶ rejected          └──interrupted (crash, SIGTERM)──▶ resolved later
       ├──cancel──▶ cancelled   (the requester only)
       └──expire──▶ expired

Four eyes compares GitLab user ids: two Slack accounts linked to one GitLab user are one
person. An approved request is run under a lease (`running_until`); a request still
`approved` after its lease was interrupted, and `claim_interrupted` hands it to whoever
resolves it (once, across replicas).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from bot.domain import audit
from bot.domain.audit import AuditEvent
from bot.domain.changes import AttributeChange
from bot.domain.errors import DomainError
from bot.domain.mirrors import Operation, OperationRequest
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import InsufficientRole, ProjectNotFound
from bot.gitlab.models import MAINTAINER
from bot.gitlab.refs import ProjectRef
from bot.store.crypto import TokenCipher
from bot.store.db import transaction
from bot.store.models import ApprovalRequest, utcnow

DEFAULT_TTL = timedelta(hours=1)
# Longer than any run of an approved change can take: a few GitLab calls, each bounded by
# the client's retry budget. A request still `approved` after this was interrupted.
EXECUTION_LEASE = timedelta(minutes=5)
MIRRORBOT = "mirrorbot"  # the actor of what the bot does on its own (expiry, recovery)


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    EXECUTED = "executed"
    FAILED = "failed"


FINAL = frozenset(
    {Status.EXECUTED, Status.FAILED, Status.REJECTED, Status.CANCELLED, Status.EXPIRED}
)


class ApprovalRefused(DomainError):
    """The click cannot change the request; the message says why."""


@dataclass(frozen=True)
class Approval:
    """A request as the renderers see it (parameters stay encrypted in the database)."""

    id: str
    team_id: str
    channel_id: str
    message_ts: str | None
    requester_id: str
    operation: Operation
    project_id: int
    project_path: str
    mirror_id: int | None
    mirror_url: str | None
    status: Status
    approver_id: str | None
    result: str | None
    created_at: datetime
    expires_at: datetime
    changes: tuple[AttributeChange, ...] = ()
    # The operations whose approval this needs: its own, or one an edit implies (disable).
    needs_approval_of: tuple[Operation, ...] = ()

    @staticmethod
    def of(row: ApprovalRequest) -> Approval:
        return Approval(
            row.id,
            row.slack_team_id,
            row.channel_id,
            row.message_ts,
            row.requester_id,
            Operation(row.operation),
            row.project_id or 0,
            row.project_path,
            row.mirror_id,
            row.mirror_url,
            Status(row.status),
            row.approver_id,
            row.result,
            row.created_at,
            row.expires_at,
            tuple(AttributeChange.from_json(c) for c in row.changes or ()),
            tuple(Operation(op) for op in (row.needs_approval_of or "").split(",") if op),
        )

    @property
    def implied_approvals(self) -> tuple[Operation, ...]:
        """Approvals needed because of what the change does, not what it is called."""
        return tuple(op for op in self.needs_approval_of if op is not self.operation)


class Approvals:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: TokenCipher,
        ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._ttl = ttl

    async def request(
        self,
        operation: OperationRequest,
        *,
        team_id: str,
        channel_id: str,
        requester_id: str,
        requester_gitlab_user_id: int,
        mirror_url: str | None,
        changes: tuple[AttributeChange, ...] = (),
        needs_approval_of: tuple[Operation, ...] = (),
    ) -> Approval:
        now = utcnow()
        row = ApprovalRequest(
            id=str(uuid.uuid4()),
            slack_team_id=team_id,
            channel_id=channel_id,
            requester_id=requester_id,
            requester_gitlab_user_id=requester_gitlab_user_id,
            changes=[change.as_json() for change in changes],
            needs_approval_of=",".join(op.value for op in needs_approval_of),
            operation=operation.operation.value,
            project_id=operation.project_id,
            project_path=operation.project_path,
            mirror_id=operation.mirror_id,
            mirror_url=mirror_url,
            params_ciphertext=self._cipher.encrypt(json.dumps(operation.attributes)),
            status=Status.PENDING.value,
            created_at=now,
            expires_at=now + self._ttl,
        )
        async with transaction(self._sessions) as session:
            session.add(row)
            audit.record(
                session,
                actor=requester_id,
                event=AuditEvent.REQUESTED,
                operation=operation.operation.value,
                project=operation.project_path,
                mirror_id=operation.mirror_id,
                request_id=row.id,
            )
        return Approval.of(row)

    async def set_message(self, request_id: str, message_ts: str) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == request_id)
                .values(message_ts=message_ts)
            )

    async def get(self, request_id: str) -> Approval | None:
        async with self._sessions() as session:
            row = await session.get(ApprovalRequest, request_id)
            return Approval.of(row) if row else None

    async def pending(self, team_id: str) -> list[Approval]:
        query = (
            select(ApprovalRequest)
            .where(
                ApprovalRequest.slack_team_id == team_id,
                ApprovalRequest.status == Status.PENDING.value,
                ApprovalRequest.expires_at > utcnow(),
            )
            .order_by(ApprovalRequest.created_at)
        )
        async with self._sessions() as session:
            return [Approval.of(row) for row in (await session.scalars(query)).all()]

    def operation_of(self, approval: Approval, ciphertext: str | None) -> OperationRequest:
        attributes = json.loads(self._cipher.decrypt(ciphertext)) if ciphertext else {}
        return OperationRequest(
            approval.operation,
            approval.project_id,
            approval.project_path,
            approval.mirror_id,
            attributes,
        )

    async def approve(
        self, request_id: str, approver_id: str, approver_gitlab_user_id: int
    ) -> tuple[OperationRequest, int]:
        """pending → approved, once. Returns the operation to run with the requester's token
        and the GitLab user that token must still belong to.

        The caller has already checked the approver's role on the project with their own
        token, and asked GitLab whose token it is: the requester's GitLab user can never
        approve their own request, from whichever Slack account."""
        async with transaction(self._sessions) as session:
            row = await session.get(ApprovalRequest, request_id)
            if row is None:
                raise ApprovalRefused("that approval request no longer exists")
            if row.requester_id == approver_id:
                raise ApprovalRefused(
                    "you cannot approve your own request — ask a colleague with the Maintainer role"
                )
            requester_gitlab_user_id = row.requester_gitlab_user_id
            if requester_gitlab_user_id is None:
                raise ApprovalRefused(
                    "this request does not say which GitLab user made it, so nobody can approve "
                    "it — the requester should ask again"
                )
            if requester_gitlab_user_id == approver_gitlab_user_id:
                raise ApprovalRefused(
                    "you cannot approve this: your Slack account is linked to the same GitLab "
                    "user as the requester's, and four eyes means two people — ask another "
                    "Maintainer"
                )
            await self._transition(
                session,
                request_id,
                Status.PENDING,
                Status.APPROVED,
                approver_id=approver_id,
                event=AuditEvent.APPROVED,
                # Checked again in the UPDATE itself, so no path around it exists.
                extra_conditions=(
                    ApprovalRequest.requester_gitlab_user_id != approver_gitlab_user_id,
                ),
                extra_values={
                    "approver_gitlab_user_id": approver_gitlab_user_id,
                    "running_until": utcnow() + EXECUTION_LEASE,
                },
            )
            approval = Approval.of(row)
            return self.operation_of(approval, row.params_ciphertext), requester_gitlab_user_id

    async def reject(self, request_id: str, approver_id: str) -> None:
        async with transaction(self._sessions) as session:
            row = await session.get(ApprovalRequest, request_id)
            if row is None:
                raise ApprovalRefused("that approval request no longer exists")
            if row.requester_id == approver_id:
                raise ApprovalRefused("use Cancel to withdraw your own request")
            await self._transition(
                session,
                request_id,
                Status.PENDING,
                Status.REJECTED,
                approver_id=approver_id,
                event=AuditEvent.REJECTED,
            )

    async def cancel(self, request_id: str, requester_id: str) -> None:
        async with transaction(self._sessions) as session:
            row = await session.get(ApprovalRequest, request_id)
            if row is None:
                raise ApprovalRefused("that approval request no longer exists")
            if row.requester_id != requester_id:
                raise ApprovalRefused("only the person who asked can cancel this request")
            await self._transition(
                session,
                request_id,
                Status.PENDING,
                Status.CANCELLED,
                approver_id=None,
                event=AuditEvent.CANCELLED,
            )

    async def finish(
        self, request_id: str, *, succeeded: bool, result: str, actor: str | None = None
    ) -> Approval:
        """approved → executed | failed, with the result shown on the card. `actor` is who
        ran it: the requester (their token) unless the bot resolved an interruption."""
        async with transaction(self._sessions) as session:
            row = await session.get(ApprovalRequest, request_id)
            if row is None:
                raise ApprovalRefused("that approval request no longer exists")
            await self._transition(
                session,
                request_id,
                Status.APPROVED,
                Status.EXECUTED if succeeded else Status.FAILED,
                approver_id=row.approver_id,
                event=AuditEvent.EXECUTED if succeeded else AuditEvent.FAILED,
                result=result,
                actor=actor or row.requester_id,
                extra_values={"running_until": None},
            )
            await session.refresh(row)
            return Approval.of(row)

    async def claim_interrupted(
        self, lease: timedelta = EXECUTION_LEASE
    ) -> list[tuple[Approval, OperationRequest]]:
        """Approved requests whose run outlived its lease: whoever ran them is gone. Each is
        claimed (its lease renewed for the resolver) by one conditional UPDATE, so two
        replicas never resolve the same request, and none resolves one that is running."""
        now = utcnow()
        stale = and_(
            ApprovalRequest.status == Status.APPROVED.value,
            or_(
                ApprovalRequest.running_until <= now,
                # approved before the lease column existed
                and_(
                    ApprovalRequest.running_until.is_(None),
                    ApprovalRequest.decided_at <= now - lease,
                ),
            ),
        )
        async with self._sessions() as session:
            due = (
                await session.scalars(
                    select(ApprovalRequest.id).where(stale).order_by(ApprovalRequest.decided_at)
                )
            ).all()
        claimed = []
        for request_id in due:
            async with transaction(self._sessions) as session:
                changed = await session.execute(
                    update(ApprovalRequest)
                    .where(ApprovalRequest.id == request_id, stale)
                    .values(running_until=now + lease)
                )
                if not changed.rowcount:  # type: ignore[attr-defined]
                    continue  # another replica claimed it first
                row = await session.get(ApprovalRequest, request_id)
                assert row is not None
                await session.refresh(row)
                approval = Approval.of(row)
                claimed.append((approval, self.operation_of(approval, row.params_ciphertext)))
        return claimed

    async def expire_due(self) -> list[Approval]:
        """pending → expired for every request past its expiry; returns those it expired."""
        now = utcnow()
        async with transaction(self._sessions) as session:
            due = (
                await session.scalars(
                    select(ApprovalRequest.id).where(
                        ApprovalRequest.status == Status.PENDING.value,
                        ApprovalRequest.expires_at <= now,
                    )
                )
            ).all()
            expired = []
            for request_id in due:
                changed = await session.execute(
                    update(ApprovalRequest)
                    .where(
                        ApprovalRequest.id == request_id,
                        ApprovalRequest.status == Status.PENDING.value,
                    )
                    .values(status=Status.EXPIRED.value, decided_at=now, params_ciphertext=None)
                )
                if changed.rowcount:  # type: ignore[attr-defined]
                    row = await session.get(ApprovalRequest, request_id)
                    assert row is not None
                    await session.refresh(row)
                    audit.record(
                        session,
                        actor=MIRRORBOT,
                        event=AuditEvent.EXPIRED,
                        operation=row.operation,
                        project=row.project_path,
                        mirror_id=row.mirror_id,
                        request_id=row.id,
                    )
                    expired.append(Approval.of(row))
            return expired

    async def _transition(
        self,
        session: AsyncSession,
        request_id: str,
        source: Status,
        target: Status,
        *,
        approver_id: str | None,
        event: AuditEvent,
        result: str | None = None,
        actor: str | None = None,
        extra_conditions: tuple[ColumnElement[bool], ...] = (),
        extra_values: dict[str, object] | None = None,
    ) -> None:
        now = utcnow()
        conditions = [
            ApprovalRequest.id == request_id,
            ApprovalRequest.status == source.value,
            *extra_conditions,
        ]
        if source is Status.PENDING:
            conditions.append(ApprovalRequest.expires_at > now)
        values: dict[str, object] = {"status": target.value, **(extra_values or {})}
        if source is Status.PENDING:
            values |= {"decided_at": now, "approver_id": approver_id}
        if result is not None:
            values["result"] = result
        if target in FINAL:  # the parameters may hold a password: kept only while needed
            values["params_ciphertext"] = None
        changed = await session.execute(update(ApprovalRequest).where(*conditions).values(**values))
        if not changed.rowcount:  # type: ignore[attr-defined]
            current = await session.get(ApprovalRequest, request_id)
            if current is not None:
                await session.refresh(current)
            raise ApprovalRefused(_why_not(current, now))
        row = await session.get(ApprovalRequest, request_id)
        assert row is not None
        await session.refresh(row)
        audit.record(
            session,
            actor=actor or approver_id or row.requester_id,
            event=event,
            operation=row.operation,
            project=row.project_path,
            mirror_id=row.mirror_id,
            result=result,
            approver=row.approver_id,
            request_id=row.id,
        )


async def visible_to(
    gitlab: GitLabClient, user_id: str, approvals: list[Approval], *, concurrency: int = 8
) -> list[Approval]:
    """The requests `user_id` may see: their own, and those on projects where their own
    token (`gitlab`) has the Maintainer role — GitLab shows a project's mirrors to its
    Maintainers only, and a request names a mirror URL and what it changes."""
    others = {a.project_id for a in approvals if a.requester_id != user_id}
    readable: set[int] = set()
    limit = asyncio.Semaphore(concurrency)

    async def check(project_id: int) -> None:
        async with limit:
            try:
                project = await gitlab.get_project(ProjectRef(str(project_id)))
            except (ProjectNotFound, InsufficientRole):
                return
            if project.access_level >= MAINTAINER:
                readable.add(project_id)

    await asyncio.gather(*(check(project_id) for project_id in others))
    return [a for a in approvals if a.requester_id == user_id or a.project_id in readable]


def _why_not(row: ApprovalRequest | None, now: datetime) -> str:
    if row is None:
        return "that approval request no longer exists"
    if row.status == Status.PENDING.value and row.expires_at <= now:
        return "this request has expired — ask again"
    if row.status == Status.APPROVED.value:
        return "this request was already approved and is running"
    return f"this request was already {row.status}"
