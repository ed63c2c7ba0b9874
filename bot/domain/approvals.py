"""Approval requests: an operation waits until a second person approves it.

Every state change is one conditional UPDATE (`WHERE status = 'pending' AND …`), so a
double click, two replicas, or a click after expiry can change a request only once.

    pending ──approve──▶ approved ──run──▶ executed | failed
       ├──reject──▶ rejected
       ├──cancel──▶ cancelled   (the requester only)
       └──expire──▶ expired
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import audit
from bot.domain.audit import AuditEvent
from bot.domain.errors import DomainError
from bot.domain.mirrors import Operation, OperationRequest
from bot.store.crypto import TokenCipher
from bot.store.db import transaction
from bot.store.models import ApprovalRequest, utcnow

DEFAULT_TTL = timedelta(hours=1)


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    EXECUTED = "executed"
    FAILED = "failed"


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
        )


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
        mirror_url: str | None,
    ) -> Approval:
        now = utcnow()
        row = ApprovalRequest(
            id=str(uuid.uuid4()),
            slack_team_id=team_id,
            channel_id=channel_id,
            requester_id=requester_id,
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

    async def approve(self, request_id: str, approver_id: str) -> OperationRequest:
        """pending → approved, once. Returns the operation to run with the requester's token.

        The caller has already checked the approver's role on the project with their own
        token; the requester can never approve their own request."""
        async with transaction(self._sessions) as session:
            row = await session.get(ApprovalRequest, request_id)
            if row is None:
                raise ApprovalRefused("that approval request no longer exists")
            if row.requester_id == approver_id:
                raise ApprovalRefused(
                    "you cannot approve your own request — ask a colleague with the Maintainer role"
                )
            await self._transition(
                session,
                request_id,
                Status.PENDING,
                Status.APPROVED,
                approver_id=approver_id,
                event=AuditEvent.APPROVED,
            )
            approval = Approval.of(row)
            return self.operation_of(approval, row.params_ciphertext)

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

    async def finish(self, request_id: str, *, succeeded: bool, result: str) -> None:
        """approved → executed | failed, with the result shown on the card."""
        async with transaction(self._sessions) as session:
            row = await session.get(ApprovalRequest, request_id)
            assert row is not None
            await self._transition(
                session,
                request_id,
                Status.APPROVED,
                Status.EXECUTED if succeeded else Status.FAILED,
                approver_id=row.approver_id,
                event=AuditEvent.EXECUTED if succeeded else AuditEvent.FAILED,
                result=result,
                actor=row.requester_id,
            )

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
                    .values(status=Status.EXPIRED.value, decided_at=now)
                )
                if changed.rowcount:  # type: ignore[attr-defined]
                    row = await session.get(ApprovalRequest, request_id)
                    assert row is not None
                    await session.refresh(row)
                    audit.record(
                        session,
                        actor="mirrorbot",
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
    ) -> None:
        now = utcnow()
        conditions = [ApprovalRequest.id == request_id, ApprovalRequest.status == source.value]
        if source is Status.PENDING:
            conditions.append(ApprovalRequest.expires_at > now)
        values: dict[str, object] = {"status": target.value}
        if source is Status.PENDING:
            values |= {"decided_at": now, "approver_id": approver_id}
        if result is not None:
            values["result"] = result
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


def _why_not(row: ApprovalRequest | None, now: datetime) -> str:
    if row is None:
        return "that approval request no longer exists"
    if row.status == Status.PENDING.value and row.expires_at <= now:
        return "this request has expired — ask again"
    who = f" by <@{row.approver_id}>" if row.approver_id else ""
    return f"this request was already {row.status}{who}"
