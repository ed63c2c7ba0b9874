"""Rotating a push mirror's credentials: a new mirror beside the old one, then one deleted.

GitLab cannot change a push mirror's URL, and an SSH mirror's key pair and host keys only
change when it is re-created. So a rotation creates the new mirror with every setting of
the old one, syncs it, and deletes the old one only once the new one finished; if the
new one fails, the new one is deleted and the old one kept. One row per rotation; each
state change is one conditional UPDATE whose row count says who won:

    awaiting_approval ─approved─▶ requested ─▶ creating ─▶ created
    created ─password─▶ syncing            created ─ssh─▶ awaiting_key ─Key installed─▶ syncing
    syncing ─finished─▶ deleting_old ─▶ done
    syncing ─failed──▶ deleting_new ─▶ failed
    unfinished after a day ─▶ cleaning_up (new mirror deleted) ─▶ expired

Only `deleting_old` deletes the old mirror and it is reached only from a finished sync;
`deleting_new` and `cleaning_up` delete only the new one: both are never deleted. Whoever
drives a rotation holds it (`running_until`); a worker resumes those whose holder is gone.
The new password lives encrypted in the row only until the new mirror exists.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain import audit
from bot.domain.audit import AuditEvent
from bot.domain.causes import AUTHENTICATION, HOST_KEY, classify
from bot.domain.errors import DomainError
from bot.domain.mirrors import follow_push_mirror
from bot.gitlab.client import GitLabClient
from bot.gitlab.errors import GitLabError, MirrorNotFound
from bot.gitlab.models import PushMirror, PushMirrorCreate
from bot.gitlab.refs import ProjectRef
from bot.gitlab.scrub import scrub_url
from bot.store.crypto import TokenCipher
from bot.store.db import transaction
from bot.store.models import RotationRow, utcnow

OPERATION = "rotate"  # the audit log's and MIRRORBOT_APPROVAL_REQUIRED's name
REQUEST_TTL = timedelta(days=1)
MIRRORBOT = "mirrorbot"
# The settings a new mirror takes from the old one (the URL's host and path too).
KEPT_SETTINGS = (
    "enabled",
    "auth_method",
    "only_protected_branches",
    "keep_divergent_refs",
    "mirror_branch_regex",
)


class State(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    REQUESTED = "requested"
    CREATING = "creating"
    CREATED = "created"
    AWAITING_KEY = "awaiting_key"
    SYNCING = "syncing"
    DELETING_OLD = "deleting_old"
    DELETING_NEW = "deleting_new"
    CLEANING_UP = "cleaning_up"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUSED = "refused"  # its approval was rejected, cancelled or expired


FINAL = frozenset({State.DONE, State.FAILED, State.EXPIRED, State.REFUSED})
# Unfinished after a day: the new mirror (if any) is deleted and the person told.
_EXPIRABLE = (State.REQUESTED, State.CREATING, State.CREATED, State.AWAITING_KEY, State.SYNCING)


class RotationRefused(DomainError):
    """The rotation cannot start or the click cannot change it; the message says why."""


@dataclass(frozen=True)
class Rotation:
    """A rotation as renderers see it: never a credential."""

    id: str
    team_id: str
    channel_id: str
    message_ts: str | None
    requester_id: str
    project_id: int
    project_path: str
    old_mirror_id: int
    new_mirror_id: int | None
    url: str
    settings: dict[str, Any]
    public_key: str | None
    state: State
    result: str | None
    approval_id: str | None
    expires_at: datetime

    @property
    def ssh(self) -> bool:
        return self.settings.get("auth_method") == "ssh_public_key"

    @property
    def finished(self) -> bool:
        return self.state in FINAL

    @property
    def project(self) -> ProjectRef:
        return ProjectRef.of(self.project_id, self.project_path)

    @staticmethod
    def of(row: RotationRow) -> Rotation:
        return Rotation(
            row.id,
            row.slack_team_id,
            row.channel_id,
            row.message_ts,
            row.requester_id,
            row.project_id,
            row.project_path,
            row.old_mirror_id,
            row.new_mirror_id,
            row.url,
            dict(row.settings),
            row.public_key,
            State(row.state),
            row.result,
            row.approval_id,
            row.expires_at,
        )


@dataclass(frozen=True)
class NewCredentials:
    """What the rotate form asks of a password mirror; SSH mirrors need none."""

    username: str
    password: str

    def problems(self) -> dict[str, str]:
        """Field → what is wrong, for the modal and the console prompts alike."""
        errors = {}
        if not self.username or any(c.isspace() for c in self.username):
            errors["username"] = "a username is needed (no spaces)"
        if not self.password:
            errors["password"] = "the new password or token is needed"  # noqa: S105
        return errors


def url_with_credentials(url: str, credentials: NewCredentials | None) -> str:
    """The old mirror's URL (GitLab shows it scrubbed) with the new userinfo."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    if credentials is None:
        # SSH: the user is `git` (the only one GitLab shows unmasked; the client masks even
        # that on the way in), or none if the URL had none.
        netloc = f"git@{host}" if "@" in parts.netloc else host
    else:
        netloc = f"{quote(credentials.username, safe='')}:{quote(credentials.password, safe='')}"
        netloc += f"@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def settings_of(mirror: PushMirror) -> dict[str, Any]:
    return {
        "enabled": mirror.enabled,
        "auth_method": mirror.auth_method or "password",
        "only_protected_branches": bool(mirror.only_protected_branches),
        "keep_divergent_refs": bool(mirror.keep_divergent_refs),
        "mirror_branch_regex": mirror.mirror_branch_regex or None,
    }


def failure_reason(mirror: PushMirror) -> str:
    """Why the new mirror failed, with its likely cause in words for this flow."""
    cause = classify(mirror.last_error)
    error = scrub_url(mirror.last_error or "") or "GitLab gave no error text"
    if cause is AUTHENTICATION:
        return f"the new token was rejected too ({error}) — check it can push to the target"
    if cause is HOST_KEY:
        return f"the target's host key was refused ({error})"
    return f"{cause.title.lower()}: {error}"


OnChange = Callable[[Rotation], Awaitable[None]]


class Rotations:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: TokenCipher,
        holder: str,
        *,
        lease: timedelta = timedelta(minutes=10),
        ttl: timedelta = REQUEST_TTL,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._holder = holder
        self._lease = lease
        self._ttl = ttl

    # --- starting ---------------------------------------------------------------------------

    async def request(
        self,
        mirror: PushMirror,
        *,
        project_id: int,
        project_path: str,
        team_id: str,
        channel_id: str,
        requester_id: str,
        requester_gitlab_user_id: int,
        credentials: NewCredentials | None,
        approval_id: str | None = None,
    ) -> Rotation:
        """Store the request (holding it, so the worker leaves it to the caller)."""
        settings = settings_of(mirror)
        if not mirror.enabled:
            raise RotationRefused(
                f"mirror {mirror.id} is disabled, so a new one could not be synced to prove "
                "the new credentials: enable it first (or add a new mirror)"
            )
        ssh = settings["auth_method"] == "ssh_public_key"
        if ssh != (credentials is None):
            raise RotationRefused(
                "an SSH mirror gets a new key pair: nothing to type"
                if ssh
                else "a password mirror needs a username and the new password or token"
            )
        if ssh and not (mirror.url or "").startswith("ssh://"):
            raise RotationRefused("only ssh:// mirrors with SSH key authentication get a new key")
        if mirror.url is None:
            raise RotationRefused("GitLab does not show this mirror's URL, so it cannot be copied")
        now = utcnow()
        row = RotationRow(
            id=str(uuid.uuid4()),
            slack_team_id=team_id,
            channel_id=channel_id,
            requester_id=requester_id,
            requester_gitlab_user_id=requester_gitlab_user_id,
            project_id=project_id,
            project_path=project_path,
            old_mirror_id=mirror.id,
            url=scrub_url(mirror.url) or "",
            settings=settings,
            credentials_ciphertext=self._cipher.encrypt(
                url_with_credentials(mirror.url, credentials)
            ),
            state=(State.AWAITING_APPROVAL if approval_id else State.REQUESTED).value,
            approval_id=approval_id,
            created_at=now,
            updated_at=now,
            expires_at=now + self._ttl,
            running_until=None if approval_id else now + self._lease,
            running_by=None if approval_id else self._holder,
        )
        async with transaction(self._sessions) as session:
            under_way = await session.scalar(
                select(RotationRow.id).where(
                    RotationRow.project_id == project_id,
                    RotationRow.old_mirror_id == mirror.id,
                    RotationRow.state.not_in([s.value for s in FINAL]),
                )
            )
            if under_way is not None:  # two new mirrors for one old one help nobody
                raise RotationRefused(
                    f"mirror {mirror.id} is already being rotated: see that rotation's message"
                )
            session.add(row)
            self._audit(session, row, requester_id, AuditEvent.REQUESTED, f"rotate {row.url}")
        return Rotation.of(row)

    async def approved(self, approval_id: str) -> Rotation | None:
        """awaiting_approval → requested, once; the worker runs it from there."""
        now = utcnow()
        async with transaction(self._sessions) as session:
            changed = await session.execute(
                update(RotationRow)
                .where(
                    RotationRow.approval_id == approval_id,
                    RotationRow.state == State.AWAITING_APPROVAL.value,
                )
                # Nobody holds it: the worker takes it up and posts its progress.
                .values(state=State.REQUESTED.value, updated_at=now)
            )
            if not changed.rowcount:  # type: ignore[attr-defined]
                return None
            row = (
                await session.scalars(
                    select(RotationRow).where(RotationRow.approval_id == approval_id)
                )
            ).one()
            return Rotation.of(row)

    async def refused(self, approval_id: str, why: str) -> Rotation | None:
        """The approval ended without a yes: the flow ends, its credentials erased."""
        async with transaction(self._sessions) as session:
            row = (
                await session.scalars(
                    select(RotationRow).where(RotationRow.approval_id == approval_id)
                )
            ).one_or_none()
            if row is None:
                return None
            done = await self._move(session, row, (State.AWAITING_APPROVAL,), State.REFUSED, why)
            return Rotation.of(row) if done else None

    # --- reading ------------------------------------------------------------------------------

    async def get(self, rotation_id: str) -> Rotation | None:
        async with self._sessions() as session:
            row = await session.get(RotationRow, rotation_id)
            return Rotation.of(row) if row else None

    async def of_approval(self, approval_id: str) -> Rotation | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(RotationRow).where(RotationRow.approval_id == approval_id)
            )
            return Rotation.of(row) if row else None

    async def set_message(self, rotation_id: str, message_ts: str) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(RotationRow)
                .where(RotationRow.id == rotation_id)
                .values(message_ts=message_ts)
            )

    async def interrupted(self) -> list[str]:
        """Unfinished rotations nobody holds (their driver stopped or died)."""
        now = utcnow()
        async with self._sessions() as session:
            ids = await session.scalars(
                select(RotationRow.id)
                .where(
                    RotationRow.state.in_([s.value for s in _STEPS]),
                    self._free(now),
                )
                .order_by(RotationRow.created_at)
            )
            return list(ids.all())

    async def awaiting_approval(self) -> list[Rotation]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(RotationRow).where(RotationRow.state == State.AWAITING_APPROVAL.value)
            )
            return [Rotation.of(row) for row in rows.all()]

    # --- holding --------------------------------------------------------------------------------

    def _free(self, now: datetime) -> Any:
        return or_(RotationRow.running_until.is_(None), RotationRow.running_until <= now)

    async def claim(self, rotation_id: str) -> bool:
        """Hold the rotation to drive it; False when someone else holds it."""
        now = utcnow()
        async with transaction(self._sessions) as session:
            changed = await session.execute(
                update(RotationRow)
                .where(
                    RotationRow.id == rotation_id,
                    RotationRow.state.not_in([s.value for s in FINAL]),
                    or_(self._free(now), RotationRow.running_by == self._holder),
                )
                .values(running_until=now + self._lease, running_by=self._holder)
            )
            return bool(changed.rowcount)  # type: ignore[attr-defined]

    async def release(self, rotation_id: str) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(RotationRow)
                .where(RotationRow.id == rotation_id, RotationRow.running_by == self._holder)
                .values(running_until=None, running_by=None)
            )

    # --- the clicks -----------------------------------------------------------------------------

    async def key_installed(self, rotation_id: str, clicker_id: str) -> Rotation:
        """awaiting_key → syncing, once, held by the clicker's process. The caller has
        checked that the clicker is the requester or a Maintainer of the project."""
        async with transaction(self._sessions) as session:
            row = await session.get(RotationRow, rotation_id)
            if row is None:
                raise RotationRefused("that rotation no longer exists")
            if not await self._move(session, row, (State.AWAITING_KEY,), State.SYNCING):
                raise RotationRefused(_why_not(row))
            await session.execute(
                update(RotationRow)
                .where(RotationRow.id == rotation_id)
                .values(running_until=utcnow() + self._lease, running_by=self._holder)
            )
            self._audit(session, row, clicker_id, AuditEvent.APPROVED, "the new key is installed")
            return Rotation.of(row)

    # --- driving ----------------------------------------------------------------------------------

    async def drive(
        self,
        rotation_id: str,
        gitlab: GitLabClient,
        on_change: OnChange,
        *,
        interval: float,
        give_up_after: float,
    ) -> Rotation:
        """Take the rotation as far as it goes now (the caller holds it): to the end, to
        the *Key installed* click, or until GitLab has not answered a sync in time (the
        worker follows it later). Releases the hold however it stops."""
        try:
            while True:
                rotation = await self.get(rotation_id)
                assert rotation is not None
                step = _STEPS.get(rotation.state)
                if step is None:
                    return rotation
                moved = await step(self, rotation, gitlab, interval, give_up_after)
                if moved is None:  # waits for a click, or for GitLab
                    return rotation
                await on_change(moved)
        finally:
            await asyncio.shield(self.release(rotation_id))

    async def _create(self, rotation: Rotation, gitlab: GitLabClient, *_: float) -> Rotation | None:
        async with transaction(self._sessions) as session:
            row = await self._row(session, rotation.id)
            if not await self._move(session, row, (State.REQUESTED,), State.CREATING):
                return None
            ciphertext = row.credentials_ciphertext
        assert ciphertext is not None
        settings = {k: v for k, v in rotation.settings.items() if v is not None}
        if settings.get("mirror_branch_regex"):
            settings.pop("only_protected_branches", None)  # GitLab takes one of the two
        try:
            created = await gitlab.create_push_mirror(
                rotation.project,
                PushMirrorCreate(url=self._cipher.decrypt(ciphertext), **settings),
            )
            key = (
                await gitlab.get_push_mirror_public_key(rotation.project, created.id)
                if rotation.ssh
                else None
            )
        except GitLabError as exc:
            return await self._end(rotation.id, (State.CREATING,), State.FAILED, exc.user_message)
        async with transaction(self._sessions) as session:
            row = await self._row(session, rotation.id)
            await self._move(
                session,
                row,
                (State.CREATING,),
                State.CREATED,
                extra={"new_mirror_id": created.id, "public_key": key},
            )
            self._audit(
                session,
                row,
                MIRRORBOT,
                AuditEvent.EXECUTED,
                f"new mirror created: {created.id}",
                mirror_id=created.id,
            )
            return Rotation.of(row)

    async def _adopt_or_retry(
        self, rotation: Rotation, gitlab: GitLabClient, *_: float
    ) -> Rotation | None:
        """A create was interrupted: adopt the mirror it made, or create again."""
        mirrors = await gitlab.list_push_mirrors(rotation.project)
        made = [
            m for m in mirrors if m.id > rotation.old_mirror_id and scrub_url(m.url) == rotation.url
        ]
        async with transaction(self._sessions) as session:
            row = await self._row(session, rotation.id)
            if not made:
                await self._move(session, row, (State.CREATING,), State.REQUESTED)
                return Rotation.of(row)
            newest = max(made, key=lambda m: m.id)
            await self._move(
                session, row, (State.CREATING,), State.CREATED, extra={"new_mirror_id": newest.id}
            )
            return Rotation.of(row)

    async def _after_create(
        self, rotation: Rotation, gitlab: GitLabClient, *_: float
    ) -> Rotation | None:
        target = State.AWAITING_KEY if rotation.ssh else State.SYNCING
        async with transaction(self._sessions) as session:
            row = await self._row(session, rotation.id)
            if not await self._move(session, row, (State.CREATED,), target):
                return None
            return Rotation.of(row)

    async def _sync(
        self, rotation: Rotation, gitlab: GitLabClient, interval: float, give_up_after: float
    ) -> Rotation | None:
        assert rotation.new_mirror_id is not None
        ref, mirror_id = rotation.project, rotation.new_mirror_id
        try:
            mirror = await gitlab.get_push_mirror(ref, mirror_id)
            if mirror.last_successful_update_at is None and not mirror.is_failed:
                await gitlab.sync_push_mirror(ref, mirror_id)  # GitLab ignores a repeat
                requested = await gitlab.get_push_mirror(ref, mirror_id)
                async for progress in follow_push_mirror(
                    gitlab,
                    ref,
                    mirror_id,
                    interval=interval,
                    give_up_after=give_up_after,
                    requested=requested,
                ):
                    mirror = progress.mirror
                    if progress.settled:
                        break
        except MirrorNotFound:
            return await self._fail_new(rotation, "the new mirror was deleted meanwhile")
        if mirror.last_successful_update_at is not None and not mirror.is_failed:
            async with transaction(self._sessions) as session:
                row = await self._row(session, rotation.id)
                if not await self._move(session, row, (State.SYNCING,), State.DELETING_OLD):
                    return None
                self._audit(
                    session, row, MIRRORBOT, AuditEvent.EXECUTED, "new mirror synced", mirror_id
                )
                return Rotation.of(row)
        if mirror.is_failed:
            return await self._fail_new(rotation, failure_reason(mirror))
        return None  # not settled in time: the worker follows it later

    async def _fail_new(self, rotation: Rotation, why: str) -> Rotation | None:
        async with transaction(self._sessions) as session:
            row = await self._row(session, rotation.id)
            if not await self._move(session, row, (State.SYNCING,), State.DELETING_NEW, why):
                return None
            self._audit(
                session, row, MIRRORBOT, AuditEvent.FAILED, why, mirror_id=row.new_mirror_id
            )
            return Rotation.of(row)

    async def _delete_old(
        self, rotation: Rotation, gitlab: GitLabClient, *_: float
    ) -> Rotation | None:
        try:
            await gitlab.delete_push_mirror(rotation.project, rotation.old_mirror_id)
        except MirrorNotFound:
            pass  # deleted already (by an earlier try, or by hand)
        result = (
            f"push mirror {rotation.new_mirror_id} replaces {rotation.old_mirror_id}, "
            f"which is deleted"
        )
        return await self._end(
            rotation.id,
            (State.DELETING_OLD,),
            State.DONE,
            result,
            audit_line=f"old mirror deleted: {rotation.old_mirror_id}",
            mirror_id=rotation.old_mirror_id,
        )

    async def _delete_new(
        self, rotation: Rotation, gitlab: GitLabClient, *_: float
    ) -> Rotation | None:
        if rotation.new_mirror_id is not None:
            try:
                await gitlab.delete_push_mirror(rotation.project, rotation.new_mirror_id)
            except MirrorNotFound:
                pass
        if rotation.state is State.CLEANING_UP:
            return await self._end(
                rotation.id,
                (State.CLEANING_UP,),
                State.EXPIRED,
                rotation.result or "unfinished after a day",
                audit_line="cleaned up: "
                + (
                    f"new mirror {rotation.new_mirror_id} deleted"
                    if rotation.new_mirror_id
                    else "no new mirror was made"
                ),
                mirror_id=rotation.new_mirror_id,
            )
        return await self._end(
            rotation.id, (State.DELETING_NEW,), State.FAILED, rotation.result or "failed"
        )

    async def expire_due(self) -> list[str]:
        """Unfinished rotations past their day, nobody holding them → cleaning_up."""
        now = utcnow()
        async with transaction(self._sessions) as session:
            changed = await session.scalars(
                select(RotationRow.id).where(
                    RotationRow.state.in_([s.value for s in _EXPIRABLE]),
                    RotationRow.expires_at <= now,
                    self._free(now),
                )
            )
            ids = list(changed.all())
            expired = []
            for rotation_id in ids:
                row = await self._row(session, rotation_id)
                why = (
                    "nobody clicked *Key installed* within a day"
                    if row.state == State.AWAITING_KEY.value
                    else "it did not finish within a day"
                )
                if await self._move(session, row, _EXPIRABLE, State.CLEANING_UP, why):
                    expired.append(rotation_id)
            return expired

    # --- the one way a state changes ---------------------------------------------------------

    async def _end(
        self,
        rotation_id: str,
        sources: tuple[State, ...],
        target: State,
        result: str,
        *,
        audit_line: str | None = None,
        mirror_id: int | None = None,
    ) -> Rotation | None:
        async with transaction(self._sessions) as session:
            row = await self._row(session, rotation_id)
            if not await self._move(session, row, sources, target, result):
                return None
            if audit_line:
                self._audit(session, row, MIRRORBOT, AuditEvent.EXECUTED, audit_line, mirror_id)
            elif target is State.FAILED and row.new_mirror_id is None:
                self._audit(session, row, MIRRORBOT, AuditEvent.FAILED, result)
            return Rotation.of(row)

    async def _move(
        self,
        session: AsyncSession,
        row: RotationRow,
        sources: tuple[State, ...],
        target: State,
        result: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        values: dict[str, Any] = {"state": target.value, "updated_at": utcnow(), **(extra or {})}
        if result is not None:
            values["result"] = result
        if target not in (State.REQUESTED, State.CREATING, State.AWAITING_APPROVAL):
            values["credentials_ciphertext"] = None  # the new mirror has them, or none will
        changed = await session.execute(
            update(RotationRow)
            .where(
                and_(RotationRow.id == row.id, RotationRow.state.in_([s.value for s in sources]))
            )
            .values(**values)
        )
        await session.refresh(row)
        return bool(changed.rowcount)  # type: ignore[attr-defined]

    async def _row(self, session: AsyncSession, rotation_id: str) -> RotationRow:
        row = await session.get(RotationRow, rotation_id)
        assert row is not None
        await session.refresh(row)
        return row

    @staticmethod
    def _audit(
        session: AsyncSession,
        row: RotationRow,
        actor: str,
        event: AuditEvent,
        result: str,
        mirror_id: int | None = None,
    ) -> None:
        audit.record(
            session,
            actor=actor,
            event=event,
            operation=OPERATION,
            project=row.project_path,
            mirror_id=mirror_id if mirror_id is not None else row.old_mirror_id,
            result=result,
            request_id=row.id,
            channel=row.channel_id,
        )


_DELETING = (State.DELETING_OLD, State.DELETING_NEW, State.CLEANING_UP)
Step = Callable[[Rotations, Rotation, GitLabClient, float, float], Awaitable[Rotation | None]]
_STEPS: dict[State, Step] = {
    State.REQUESTED: Rotations._create,
    State.CREATING: Rotations._adopt_or_retry,
    State.CREATED: Rotations._after_create,
    State.SYNCING: Rotations._sync,
    State.DELETING_OLD: Rotations._delete_old,
    State.DELETING_NEW: Rotations._delete_new,
    State.CLEANING_UP: Rotations._delete_new,
}


def _why_not(row: RotationRow) -> str:
    if row.state == State.SYNCING.value:
        return "the switch is already under way"
    if row.state in (State.DONE.value, State.FAILED.value, State.EXPIRED.value):
        return f"this rotation has already ended ({row.state})"
    return f"this rotation is {row.state.replace('_', ' ')}"
