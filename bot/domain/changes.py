"""Run a change and write its outcome (executed or failed) to the audit log."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import audit
from bot.domain.audit import AuditEvent
from bot.domain.mirrors import OperationOutcome, OperationRequest, execute_operation
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError
from bot.store.db import transaction


async def perform_change(
    gitlab: GitLabClient,
    request: OperationRequest,
    *,
    actor_id: str,
    sessions: async_sessionmaker[AsyncSession],
) -> OperationOutcome:
    try:
        outcome = await execute_operation(gitlab, request)
    except GitLabError as exc:
        await _audit(sessions, request, actor_id, AuditEvent.FAILED, exc.user_message)
        raise
    await _audit(sessions, request, actor_id, AuditEvent.EXECUTED, outcome.summary)
    return outcome


async def _audit(
    sessions: async_sessionmaker[AsyncSession],
    request: OperationRequest,
    actor_id: str,
    event: AuditEvent,
    result: str,
) -> None:
    async with transaction(sessions) as session:
        audit.record(
            session,
            actor=actor_id,
            event=event,
            operation=request.operation.value,
            project=request.project_path,
            mirror_id=request.mirror_id,
            result=result,
        )
