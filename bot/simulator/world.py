"""The simulated GitLab instance: users, tokens, projects, mirrors and the mirror worker.

Plain Python with one lock; `server.py` puts GitLab's HTTP routes in front of it. The
worker is lazy: every request first advances mirrors whose phase has ended, moving
`update_status` as GitLab's code does (started → to_retry → … → finished or failed).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.simulator.validation import safe_url

MAINTAINER = 40
MAX_TRIES = 3  # GitLab retries a push mirror update this often before `failed`
PULL_MAX_RETRY = 14  # past this, pull mirroring is "on pause"


class ApiError(Exception):
    """An error response: status and GitLab's JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def not_found(what: str = "Not Found") -> ApiError:
    return ApiError(404, {"message": f"404 {what}"})


@dataclass
class Timing:
    """How long the simulated worker takes. Defaults are quick; GitLab's sync back-off
    (5 min, 1 min for protected-only mirrors) is kept but can be set to 0 for tests."""

    update_seconds: float = 0.3
    retry_seconds: float = 0.3
    sync_backoff_seconds: float = 300.0
    protected_sync_backoff_seconds: float = 60.0
    pull_interval_seconds: float = 300.0
    # OAuth (GitLab's values): a device code lives 5 minutes, is polled every 5 s, and an
    # access token lives 2 hours. Tests shorten them.
    device_code_seconds: float = 300.0
    device_interval_seconds: float = 5.0
    oauth_access_seconds: float = 7200.0


@dataclass
class Outcome:
    """What the next mirror update does: succeed, fail hard, or fail transiently."""

    error: str | None = None
    transient: bool = False


@dataclass
class SimToken:
    value: str
    user_id: int
    id: int
    name: str = "mirrorbot"
    scopes: list[str] = field(default_factory=lambda: ["api"])
    expires_at: date | None = None
    revoked: bool = False
    # OAuth access tokens expire to the second and answer `invalid_token` when they do.
    valid_until: datetime | None = None
    oauth: bool = False

    def usable(self, today: date) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at >= today)


@dataclass(eq=False)  # hashable by identity: used as a dict key in set-up
class SimUser:
    id: int
    username: str
    name: str
    is_admin: bool = False
    # A project or group access token's user: GitLab makes one bot user per such token.
    bot: bool = False


@dataclass
class SimPushMirror:
    id: int
    url: str
    enabled: bool = False
    auth_method: str = "password"
    keep_divergent_refs: bool = False
    only_protected_branches: bool = False
    mirror_branch_regex: str | None = None
    host_keys: list[str] = field(default_factory=list)
    update_status: str = "none"
    last_error: str | None = None
    last_update_at: datetime | None = None
    last_update_started_at: datetime | None = None
    last_successful_update_at: datetime | None = None
    outcome: Outcome = field(default_factory=Outcome)
    tries: int = 0
    phase_ends_at: datetime | None = None  # when `started` finishes or `to_retry` restarts
    pending_start_at: datetime | None = None  # a sync delayed by GitLab's back-off
    ssh_public_key: str | None = None


@dataclass
class SimPullMirror:
    id: int
    url: str
    enabled: bool = True
    mirror_trigger_builds: bool = False
    only_mirror_protected_branches: bool | None = None
    mirror_overwrites_diverged_branches: bool | None = None
    mirror_branch_regex: str | None = None
    update_status: str = "none"
    last_error: str | None = None
    last_update_at: datetime | None = None
    last_update_started_at: datetime | None = None
    last_successful_update_at: datetime | None = None
    retry_count: int = 0
    outcome: Outcome = field(default_factory=Outcome)
    phase_ends_at: datetime | None = None


@dataclass
class SimProject:
    id: int
    path: str
    visibility: str = "private"
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    push_mirrors: dict[int, SimPushMirror] = field(default_factory=dict)
    # The import state: a pull mirror (`enabled`: project.mirror) or a one-time import.
    pull_mirror: SimPullMirror | None = None


def _invalid_token(description: str) -> dict[str, Any]:
    return {"error": "invalid_token", "error_description": description}


@dataclass
class SimOAuthApp:
    client_id: str
    secret: str | None = None  # None: a public (non-confidential) application
    scopes: tuple[str, ...] = ("api",)


@dataclass
class SimDeviceGrant:
    device_code: str
    user_code: str
    client_id: str
    scopes: list[str]
    expires_at: datetime
    interval: float
    last_polled_at: datetime | None = None
    state: str = "pending"  # pending → approved | denied; gone once tokens were issued
    user_id: int | None = None


@dataclass
class SimRefreshToken:
    value: str
    user_id: int
    client_id: str
    scopes: list[str]
    access_token: str
    used: bool = False  # a refresh (or revocation) spends it at once


@dataclass
class OAuthState:
    """GitLab's Doorkeeper tables: applications, device grants, access and refresh tokens,
    and what tests count (how often each refresh token was presented)."""

    apps: dict[str, SimOAuthApp] = field(default_factory=dict)
    device_grants: dict[str, SimDeviceGrant] = field(default_factory=dict)
    access_tokens: dict[str, SimToken] = field(default_factory=dict)
    refresh_tokens: dict[str, SimRefreshToken] = field(default_factory=dict)
    refresh_presented: dict[str, int] = field(default_factory=dict)  # value → times
    revoked: list[str] = field(default_factory=list)  # values revoked via /oauth/revoke

    def grant_for_user_code(self, user_code: str) -> SimDeviceGrant:
        for grant in self.device_grants.values():
            if grant.user_code == user_code:
                return grant
        raise KeyError(user_code)


@dataclass
class SimGroup:
    """A group or subgroup; its projects and subgroups are those under its full path."""

    id: int
    path: str  # full path: "platform/tools"
    visibility: str = "private"
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level


def iso(moment: datetime | None) -> str | None:
    """GitLab's timestamp format: 2020-01-06T17:32:02.823Z."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def fingerprint_sha256(host_key: str) -> str:
    """`SHA256:…` of a known_hosts line or a bare `type base64` key."""
    fields = host_key.split()
    blob = fields[-1] if len(fields) >= 2 else ""
    try:
        raw = base64.b64decode(blob.replace(" ", "+"), validate=True)
    except ValueError:
        raise ApiError(400, {"message": "Invalid SSH host key"}) from None
    if len(fields) < 2 or not raw:
        raise ApiError(400, {"message": "Invalid SSH host key"})
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def new_ssh_public_key(host: str) -> str:
    # GitLab makes RSA-4096 keys; ed25519 is as good for a simulator and far quicker.
    key = Ed25519PrivateKey.generate().public_key()
    blob = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{blob.decode()} git@{host}"


class World:
    """Everything the simulated GitLab knows, guarded by one lock."""

    def __init__(
        self,
        timing: Timing | None = None,
        clock: Callable[[], datetime] | None = None,
        host: str = "gitlab.example.com",
    ) -> None:
        self.timing = timing or Timing()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.host = host
        self.web_url = f"https://{host}"  # the simulator's server sets its own address
        self.lock = threading.RLock()
        self.allow_local_requests = False
        self.users: dict[int, SimUser] = {}
        self.tokens: dict[str, SimToken] = {}
        self.oauth = OAuthState()
        self.projects: dict[int, SimProject] = {}
        self._by_path: dict[str, SimProject] = {}
        # Only mirrors with a phase under way are advanced: a request costs O(active), not
        # O(every mirror of every project).
        self._active: dict[int, SimPushMirror | SimPullMirror] = {}
        self.groups: dict[int, SimGroup] = {}
        self._next_id = {
            "user": 1,
            "project": 1,
            "mirror": 1,
            "token": 1,
            "import": 1,
            "group": 1,
        }
        # Per remote host, the passwords (or tokens) it refuses: a mirror pushing with one
        # fails as an expired token does, whenever it was made.
        self.rejected_credentials: dict[str, set[str]] = {}

    def _id(self, kind: str) -> int:
        value = self._next_id[kind]
        self._next_id[kind] = value + 1
        return value

    # --- set-up (used by tests and the demo) --------------------------------------------

    def add_user(self, username: str, *, is_admin: bool = False, bot: bool = False) -> SimUser:
        with self.lock:
            user = SimUser(
                self._id("user"), username, username.replace(".", " ").title(), is_admin, bot
            )
            self.users[user.id] = user
            return user

    def add_token(
        self,
        user: SimUser,
        value: str,
        *,
        scopes: list[str] | None = None,
        expires_at: date | None = None,
    ) -> SimToken:
        with self.lock:
            token = SimToken(
                value, user.id, self._id("token"), scopes=scopes or ["api"], expires_at=expires_at
            )
            self.tokens[value] = token
            return token

    def add_oauth_app(self, client_id: str, secret: str | None = None) -> SimOAuthApp:
        with self.lock:
            app = SimOAuthApp(client_id, secret)
            self.oauth.apps[client_id] = app
            return app

    def approve_device(self, user_code: str, user: SimUser) -> None:
        """What the person does on GitLab's /oauth/device page: enter the code, Authorize."""
        with self.lock:
            grant = self.oauth.grant_for_user_code(user_code)
            grant.state, grant.user_id = "approved", user.id

    def deny_device(self, user_code: str) -> None:
        with self.lock:
            self.oauth.grant_for_user_code(user_code).state = "denied"

    def expire_oauth_access_tokens(self) -> None:
        """As if two hours passed: every OAuth access token now answers `invalid_token`."""
        with self.lock:
            past = self.clock() - timedelta(seconds=1)
            for token in self.oauth.access_tokens.values():
                token.valid_until = past

    def add_project(
        self,
        path: str,
        members: dict[SimUser, int] | None = None,
        *,
        visibility: str = "private",
    ) -> SimProject:
        with self.lock:
            project = SimProject(
                self._id("project"),
                path,
                visibility,
                {user.id: level for user, level in (members or {}).items()},
            )
            self.projects[project.id] = project
            self._by_path[path] = project
            return project

    def add_group(
        self, path: str, members: dict[SimUser, int] | None = None, *, visibility: str = "private"
    ) -> SimGroup:
        """A group (or, with a `/` in its path, a subgroup of the group above it).
        Members of a group have their access level on all its projects and subgroups."""
        with self.lock:
            group = SimGroup(
                self._id("group"),
                path,
                visibility,
                {user.id: level for user, level in (members or {}).items()},
            )
            self.groups[group.id] = group
            return group

    def find_group(self, ref: str, user: SimUser) -> SimGroup:
        group = None
        if ref.isdigit():
            group = self.groups.get(int(ref))
        else:
            group = next((g for g in self.groups.values() if g.path == ref), None)
        if group is None or not self.can_read_group(user, group):
            raise not_found("Group Not Found")
        return group

    def _ancestors(self, path: str) -> list[SimGroup]:
        return [g for g in self.groups.values() if path.startswith(g.path + "/")]

    def can_read_group(self, user: SimUser, group: SimGroup) -> bool:
        if user.is_admin or group.visibility != "private":
            return True
        chain = [group, *self._ancestors(group.path)]
        if any(user.id in g.members for g in chain):
            return True
        # A member of a project below can see the groups above it.
        return any(
            self.can_read(user, p)
            for p in self.projects.values()
            if p.path.startswith(group.path + "/")
        )

    def group_projects(self, group: SimGroup, *, include_subgroups: bool) -> list[SimProject]:
        prefix = group.path + "/"
        return sorted(
            (
                p
                for p in self.projects.values()
                if p.path.startswith(prefix)
                and (include_subgroups or "/" not in p.path[len(prefix) :])
            ),
            key=lambda p: p.id,
        )

    def rename_project(self, project: SimProject, new_path: str) -> None:
        """Move the project to a new path (a rename or a transfer); its id stays."""
        with self.lock:
            del self._by_path[project.path]
            project.path = new_path
            self._by_path[new_path] = project

    def add_push_mirror(self, project: SimProject, url: str, **attributes: Any) -> SimPushMirror:
        with self.lock:
            mirror = SimPushMirror(self._id("mirror"), url, **attributes)
            if mirror.auth_method == "ssh_public_key":
                mirror.ssh_public_key = new_ssh_public_key(self.host)
            project.push_mirrors[mirror.id] = mirror
            return mirror

    def set_pull_mirror(self, project: SimProject, url: str, **attributes: Any) -> SimPullMirror:
        with self.lock:
            project.pull_mirror = SimPullMirror(self._id("import"), url, **attributes)
            return project.pull_mirror

    def add_import(self, project: SimProject, url: str) -> SimPullMirror:
        """A one-time import, done: an import state as a pull mirror's, but no mirror."""
        with self.lock:
            now = self.clock()
            project.pull_mirror = SimPullMirror(
                self._id("import"),
                url,
                enabled=False,
                update_status="finished",
                last_update_at=now,
                last_update_started_at=now,
                last_successful_update_at=now,
            )
            return project.pull_mirror

    def set_outcome(
        self,
        mirror: SimPushMirror | SimPullMirror,
        error: str | None = None,
        *,
        transient: bool = False,
    ) -> None:
        """Decide what the mirror's next updates do (None: they succeed)."""
        with self.lock:
            mirror.outcome = Outcome(error, transient)

    def fail_now(self, mirror: SimPushMirror, error: str) -> None:
        """Put a push mirror straight into `failed`, as after its last retry."""
        with self.lock:
            now = self.clock()
            mirror.outcome = Outcome(error)
            mirror.update_status = "failed"
            mirror.last_error = error
            mirror.last_update_at = now
            mirror.last_update_started_at = now
            mirror.phase_ends_at = None

    def stick(self, mirror: SimPushMirror, started_at: datetime) -> None:
        """Leave a push mirror `started` since `started_at`, as a lost Sidekiq job does."""
        with self.lock:
            self._active.pop(id(mirror), None)
            mirror.update_status = "started"
            mirror.last_update_started_at = started_at
            mirror.phase_ends_at = mirror.pending_start_at = None

    def pause_pull(self, mirror: SimPullMirror, error: str, last_attempt: datetime) -> None:
        """Hard-fail a pull mirror: past PULL_MAX_RETRY failures GitLab stops scheduling it."""
        with self.lock:
            self._active.pop(id(mirror), None)
            mirror.outcome = Outcome(error)
            mirror.update_status = "failed"
            mirror.last_error = error
            mirror.last_update_at = mirror.last_update_started_at = last_attempt
            mirror.retry_count = PULL_MAX_RETRY + 1
            mirror.phase_ends_at = None

    def succeed_at(self, mirror: SimPushMirror | SimPullMirror, moment: datetime) -> None:
        """Record a finished update at `moment` (to start a demo or test from history)."""
        with self.lock:
            mirror.update_status = "finished"
            mirror.last_error = None
            mirror.last_update_at = mirror.last_successful_update_at = moment
            mirror.last_update_started_at = moment - timedelta(seconds=3)
            mirror.phase_ends_at = None

    def reject_credentials(self, host: str, *passwords: str) -> None:
        """Make `host` refuse pushes that authenticate with any of `passwords`."""
        with self.lock:
            self.rejected_credentials.setdefault(host, set()).update(passwords)

    def _refused_credentials(self, url: str) -> str | None:
        """The error a push to `url` gets if its host refuses its credentials."""
        parts = urlsplit(url)
        refused = self.rejected_credentials.get(parts.hostname or "", set())
        if parts.password is None or unquote(parts.password) not in refused:
            return None
        shown = f"{parts.scheme}://{parts.hostname}{parts.path}"
        return f"fatal: Authentication failed for '{shown}/'\nremote: Invalid username or password."

    def push(self, project: SimProject) -> None:
        """A git push: GitLab then updates every enabled push mirror."""
        with self.lock:
            for mirror in project.push_mirrors.values():
                if mirror.enabled:
                    self._start_push_update(mirror, self.clock())

    # --- authentication and authorisation -------------------------------------------------

    def authenticate(
        self, token_value: str | None, *, bearer: bool = True
    ) -> tuple[SimUser, SimToken]:
        oauth_token = self.oauth.access_tokens.get(token_value or "")
        # GitLab reads an OAuth access token from `Authorization: Bearer` only; PRIVATE-TOKEN
        # is for personal, project and group access tokens.
        if oauth_token is not None and not bearer:
            raise ApiError(401, {"message": "401 Unauthorized"})
        if oauth_token is not None:
            # Doorkeeper's answers (GitLab's Gitlab::Auth::ExpiredError / RevokedError).
            if oauth_token.revoked:
                raise ApiError(401, _invalid_token("Token was revoked. You have to re-authorize."))
            if oauth_token.valid_until is not None and oauth_token.valid_until <= self.clock():
                raise ApiError(
                    401,
                    _invalid_token(
                        "Token is expired. You can either do re-authorization or token refresh."
                    ),
                )
            return self.users[oauth_token.user_id], oauth_token
        token = self.tokens.get(token_value or "")
        if token is None or not token.usable(self.clock().date()):
            raise ApiError(401, {"message": "401 Unauthorized"})
        return self.users[token.user_id], token

    @staticmethod
    def require_scope(token: SimToken, write: bool) -> None:
        allowed = {"api"} if write else {"api", "read_api"}
        if not allowed & set(token.scopes):
            raise ApiError(
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided "
                    "by the access token.",
                    "scope": "api" if write else "api read_api",
                },
            )

    def find_project(self, ref: str, user: SimUser) -> SimProject:
        project = None
        if ref.isdigit():
            project = self.projects.get(int(ref))
        elif "/" in ref:
            project = self._by_path.get(ref)
        if project is None or not self.can_read(user, project):
            raise not_found("Project Not Found")
        return project

    def access_level(self, user: SimUser, project: SimProject) -> int:
        inherited = [g.members.get(user.id, 0) for g in self._ancestors(project.path)]
        return max([project.members.get(user.id, 0), *inherited])

    def can_read(self, user: SimUser, project: SimProject) -> bool:
        return (
            user.is_admin or project.visibility != "private" or self.access_level(user, project) > 0
        )

    def is_maintainer(self, user: SimUser, project: SimProject) -> bool:
        return user.is_admin or self.access_level(user, project) >= MAINTAINER

    # --- the worker ----------------------------------------------------------------------

    def advance(self) -> None:
        """Move every mirror whose current phase has ended."""
        with self.lock:
            now = self.clock()
            for key, mirror in list(self._active.items()):
                if isinstance(mirror, SimPushMirror):
                    self._advance_push(mirror, now)
                    busy = mirror.phase_ends_at is not None or mirror.pending_start_at is not None
                else:
                    self._advance_pull(mirror, now)
                    busy = mirror.phase_ends_at is not None
                if not busy:
                    del self._active[key]

    def _activate(self, mirror: SimPushMirror | SimPullMirror) -> None:
        self._active[id(mirror)] = mirror

    def _start_push_update(self, mirror: SimPushMirror, now: datetime) -> None:
        self._activate(mirror)
        mirror.update_status = "started"
        mirror.last_update_started_at = now
        mirror.pending_start_at = None
        mirror.phase_ends_at = now + timedelta(seconds=self.timing.update_seconds)

    def _advance_push(self, mirror: SimPushMirror, now: datetime) -> None:
        if mirror.pending_start_at and mirror.pending_start_at <= now:
            self._start_push_update(mirror, mirror.pending_start_at)
        if mirror.phase_ends_at is None or mirror.phase_ends_at > now:
            return
        ended = mirror.phase_ends_at
        if mirror.update_status == "to_retry":
            self._start_push_update(mirror, ended)
            self._advance_push(mirror, now)
            return
        if mirror.update_status != "started":
            mirror.phase_ends_at = None
            return
        outcome = mirror.outcome
        if outcome.error is None and (refused := self._refused_credentials(mirror.url)):
            outcome = Outcome(refused)
        if outcome.error is None:
            mirror.update_status = "finished"
            mirror.last_update_at = mirror.last_successful_update_at = ended
            mirror.last_error = None
            mirror.tries = 0
            mirror.phase_ends_at = None
        elif outcome.transient and mirror.tries + 1 < MAX_TRIES:
            mirror.tries += 1
            mirror.update_status = "to_retry"
            mirror.last_error = outcome.error
            mirror.phase_ends_at = ended + timedelta(seconds=self.timing.retry_seconds)
            self._advance_push(mirror, now)
        else:
            mirror.update_status = "failed"
            mirror.last_error = outcome.error
            mirror.last_update_at = ended
            mirror.tries = 0
            mirror.phase_ends_at = None

    def _advance_pull(self, mirror: SimPullMirror, now: datetime) -> None:
        if mirror.phase_ends_at is None or mirror.phase_ends_at > now:
            return
        ended = mirror.phase_ends_at
        mirror.phase_ends_at = None
        if mirror.update_status == "scheduled":
            mirror.update_status = "started"
            mirror.last_update_started_at = ended
            mirror.phase_ends_at = ended + timedelta(seconds=self.timing.update_seconds)
            self._advance_pull(mirror, now)
            return
        if mirror.update_status != "started":
            return
        mirror.last_update_at = ended
        if mirror.outcome.error is None:
            mirror.update_status = "finished"
            mirror.last_successful_update_at = ended
            mirror.last_error = None
            mirror.retry_count = 0
        else:
            mirror.update_status = "failed"
            mirror.last_error = mirror.outcome.error
            mirror.retry_count += 1

    # --- push-mirror operations ------------------------------------------------------------

    def sync_push_mirror(self, mirror: SimPushMirror) -> None:
        now = self.clock()
        if not mirror.enabled:
            raise ApiError(
                400,
                {
                    "message": "Cannot proceed with the push mirroring. "
                    "Please verify your mirror configuration."
                },
            )
        if mirror.update_status == "started" or mirror.pending_start_at:
            return  # already running or queued: 204 and nothing new
        backoff = (
            self.timing.protected_sync_backoff_seconds
            if mirror.only_protected_branches
            else self.timing.sync_backoff_seconds
        )
        started = mirror.last_update_started_at
        if backoff > 0 and started and started >= now - timedelta(seconds=backoff):
            mirror.pending_start_at = now + timedelta(seconds=backoff)
            self._activate(mirror)
        else:
            self._start_push_update(mirror, now)

    def start_pull_mirror(self, project: SimProject) -> None:
        mirror = project.pull_mirror
        if mirror is None or not mirror.enabled:
            raise ApiError(400, {"message": "The project is not mirrored"})
        if mirror.retry_count > PULL_MAX_RETRY:
            raise ApiError(403, {"message": "Mirroring for the project is on pause"})
        if mirror.update_status in ("scheduled", "started"):
            return
        now = self.clock()
        interval = timedelta(seconds=self.timing.pull_interval_seconds)
        recent = (
            mirror.last_update_at is not None
            and mirror.last_successful_update_at is not None
            and mirror.last_update_at > now - interval
        )
        if recent:
            return  # GitLab defers the pull to the next interval but still answers 200
        self.force_pull(mirror, now)

    def force_pull(self, mirror: SimPullMirror, now: datetime) -> None:
        mirror.update_status = "scheduled"
        mirror.phase_ends_at = now
        self._activate(mirror)

    # --- rendering as GitLab's entities -----------------------------------------------------

    def push_mirror_entity(self, mirror: SimPushMirror) -> dict[str, Any]:
        return {
            "id": mirror.id,
            "enabled": mirror.enabled,
            "url": safe_url(mirror.url),
            "update_status": mirror.update_status,
            "last_update_at": iso(mirror.last_update_at),
            "last_update_started_at": iso(mirror.last_update_started_at),
            "last_successful_update_at": iso(mirror.last_successful_update_at),
            "last_error": mirror.last_error,
            "only_protected_branches": mirror.only_protected_branches,
            "keep_divergent_refs": mirror.keep_divergent_refs,
            "auth_method": mirror.auth_method,
            "mirror_branch_regex": mirror.mirror_branch_regex,
            "host_keys": [
                {"fingerprint_sha256": fingerprint_sha256(key)} for key in mirror.host_keys
            ],
        }

    @staticmethod
    def pull_mirror_entity(mirror: SimPullMirror) -> dict[str, Any]:
        return {
            "id": mirror.id,
            "update_status": mirror.update_status,
            "url": safe_url(mirror.url),
            "last_error": mirror.last_error,
            "last_update_at": iso(mirror.last_update_at),
            "last_update_started_at": iso(mirror.last_update_started_at),
            "last_successful_update_at": iso(mirror.last_successful_update_at),
            "enabled": mirror.enabled,
            "mirror_trigger_builds": mirror.mirror_trigger_builds,
            "only_mirror_protected_branches": mirror.only_mirror_protected_branches,
            "mirror_overwrites_diverged_branches": mirror.mirror_overwrites_diverged_branches,
            "mirror_branch_regex": mirror.mirror_branch_regex,
        }
