"""Async client for GitLab's mirror API, one method per documented endpoint.

One pooled `GitLabHTTP` per process is shared; a `GitLabClient` is a cheap view
of it bound to one person's token, so GitLab's own permissions decide what they may do.
Failures become the typed errors of `bot.gitlab.errors`; 429, 5xx and dropped
connections are retried within a bounded time, and only where repeating is safe.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from bot import __version__, metrics
from bot.gitlab import errors, graphql
from bot.gitlab.budget import RequestBudget
from bot.gitlab.http import Answer, Dropped, GitLabHTTP, Refused, TimedOut
from bot.gitlab.models import (
    GitLabUser,
    Group,
    ImportState,
    PersonalAccessToken,
    Project,
    PublicKey,
    PullMirror,
    PullMirrorConfig,
    PushMirror,
    PushMirrorCreate,
    PushMirrorUpdate,
)
from bot.gitlab.refs import GroupRef, ProjectRef

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)
PER_PAGE = 100
MAX_PAGES = 50
GROUP_MAX_PAGES = 500  # 50,000 projects


def create_http_client(
    gitlab_url: str,
    *,
    timeout: float = 10.0,
    max_connections: int = 100,
    replica: str | None = None,
) -> GitLabHTTP:
    """The process-wide pooled HTTP client for GitLab's API (`<gitlab_url>/api/v4`).
    `replica` goes into the User-Agent, so GitLab's logs tell the replicas apart."""
    user_agent = f"mirrorbot/{__version__}" + (f" (replica {replica})" if replica else "")
    return GitLabHTTP(
        gitlab_url, timeout=timeout, max_connections=max_connections, user_agent=user_agent
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How long a call may keep trying. `budget_seconds` bounds the whole call."""

    max_attempts: int = 4
    budget_seconds: float = 20.0
    base_delay: float = 0.5
    max_delay: float = 8.0


class Route(Enum):
    """Which family of routes a request belongs to; GitLab's errors differ between them."""

    PUSH_MIRROR = "push_mirror"
    PUBLIC_KEY = "public_key"
    PULL_MIRROR = "pull_mirror"
    GROUP = "group"
    GRAPHQL = "graphql"
    OTHER = "other"


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    route: Route
    safe_to_repeat: bool
    project: ProjectRef | None = None
    mirror_id: int | None = None
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None
    group: GroupRef | None = None
    read_mirror_on_404: bool = True  # public_key: find out what its 404 means
    outside_api: bool = False  # below the root URL, not /api/v4 (GraphQL's /api/graphql)


class Credentials(Protocol):
    """How a request says who it is: a personal access token, or an OAuth access token
    that expires and is renewed with its refresh token."""

    async def headers(self) -> dict[str, str]: ...

    async def renewed(self, rejected: dict[str, str]) -> dict[str, str] | None:
        """Headers to send once more after GitLab answered `401 invalid_token` to
        `rejected`; None when there is nothing to renew."""
        ...


@dataclass(frozen=True)
class PrivateToken:
    """A personal (or project, group) access token: `PRIVATE-TOKEN`, never renewed."""

    token: str

    def __repr__(self) -> str:
        return "PrivateToken(…)"

    async def headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.token}

    async def renewed(self, rejected: dict[str, str]) -> dict[str, str] | None:
        return None


class GitLabClient:
    """GitLab's remote-mirror and pull-mirror endpoints, plus the token and role checks."""

    def __init__(
        self,
        http: GitLabHTTP,
        token: str | Credentials,
        retry: RetryPolicy | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self._http = http
        self._credentials = PrivateToken(token) if isinstance(token, str) else token
        self._retry = retry or RetryPolicy()
        self._budget = budget  # every attempt, retries included, counts against it

    # --- push mirrors: /projects/:id/remote_mirrors ---------------------------------

    async def list_push_mirrors(self, project: ProjectRef) -> list[PushMirror]:
        items = await self._get_all_pages(
            _Call(
                "GET",
                f"/projects/{project.api_id}/remote_mirrors",
                Route.PUSH_MIRROR,
                safe_to_repeat=True,
                project=project,
            )
        )
        return [_parsed(PushMirror, item) for item in items]

    async def get_push_mirror(self, project: ProjectRef, mirror_id: int) -> PushMirror:
        body = await self._json(self._mirror_call("GET", project, mirror_id, ""))
        return _parsed(PushMirror, body)

    async def get_push_mirror_public_key(
        self, project: ProjectRef, mirror_id: int, *, read_mirror_on_404: bool = True
    ) -> str:
        """`read_mirror_on_404=False` where the caller reads the mirror itself, at the same
        time: a 404 is then "not an SSH-key mirror" unless that read says otherwise."""
        call = _Call(
            "GET",
            f"/projects/{project.api_id}/remote_mirrors/{mirror_id}/public_key",
            Route.PUBLIC_KEY,
            safe_to_repeat=True,
            project=project,
            mirror_id=mirror_id,
            read_mirror_on_404=read_mirror_on_404,
        )
        return _parsed(PublicKey, await self._json(call)).public_key

    async def create_push_mirror(
        self, project: ProjectRef, attributes: PushMirrorCreate
    ) -> PushMirror:
        # Never repeated: a create that reached GitLab and lost its answer would be made twice.
        call = _Call(
            "POST",
            f"/projects/{project.api_id}/remote_mirrors",
            Route.PUSH_MIRROR,
            safe_to_repeat=False,
            project=project,
            json=attributes.to_params(),
        )
        return _parsed(PushMirror, await self._json(call))

    async def update_push_mirror(
        self, project: ProjectRef, mirror_id: int, attributes: PushMirrorUpdate
    ) -> PushMirror:
        call = self._mirror_call("PUT", project, mirror_id, "", json=attributes.to_params())
        return _parsed(PushMirror, await self._json(call))

    async def sync_push_mirror(self, project: ProjectRef, mirror_id: int) -> None:
        # Safe to repeat: GitLab ignores a sync while one runs.
        await self._send(self._mirror_call("POST", project, mirror_id, "/sync"))

    async def delete_push_mirror(self, project: ProjectRef, mirror_id: int) -> None:
        await self._send(self._mirror_call("DELETE", project, mirror_id, ""))

    # --- pull mirror: /projects/:id/mirror/pull --------------------------------------

    async def get_pull_mirror(self, project: ProjectRef) -> PullMirror:
        return _parsed(PullMirror, await self._json(self._pull_call("GET", project)))

    async def configure_pull_mirror(
        self, project: ProjectRef, config: PullMirrorConfig
    ) -> PullMirror:
        call = self._pull_call("PUT", project, json=config.to_params())
        return _parsed(PullMirror, await self._json(call))

    async def start_pull_mirror(self, project: ProjectRef) -> None:
        # Current GitLab answers 200, its docs say 202: both are success.
        await self._send(self._pull_call("POST", project))

    # --- import states, by GraphQL: POST /api/graphql ----------------------------------

    async def list_import_states(
        self, project_ids: Iterable[int], *, concurrency: int = 4
    ) -> dict[int, ImportState | None]:
        """`Project.detailedImportStatus` of each project, 100 projects a request,
        `concurrency` requests at a time. None: the project has no import state, so no pull
        mirror; a project the token cannot read is absent. GitLab's errors (its GraphQL
        limits, a GitLab without GraphQL) raise `GraphQLRefused`."""
        ids = sorted(set(project_ids))
        limit = asyncio.Semaphore(concurrency)

        async def page(chunk: list[int]) -> dict[int, ImportState | None]:
            found: dict[int, ImportState | None] = {}
            after: str | None = None
            for _ in range(MAX_PAGES):  # one page holds them all; GitLab decides, though
                variables = {"ids": [graphql.project_gid(n) for n in chunk], "after": after}
                async with limit:
                    body = await self._json(self._graphql_call(graphql.IMPORT_STATES, variables))
                states, after = graphql.import_states_page(body)
                found.update(states)
                if after is None:
                    break
            return found

        chunks = [ids[n : n + graphql.PAGE_SIZE] for n in range(0, len(ids), graphql.PAGE_SIZE)]
        if not chunks:
            return {}
        # The first page alone: a GitLab that refuses GraphQL costs one request, not all.
        pages = [await page(chunks[0])]
        rest = [asyncio.ensure_future(page(chunk)) for chunk in chunks[1:]]
        try:
            pages += await asyncio.gather(*rest)
        except BaseException:
            # One page failed: the caller reads by REST, so the others stop spending the
            # budget now rather than run on unobserved.
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
            raise
        return {project_id: state for found in pages for project_id, state in found.items()}

    # --- who is asking ----------------------------------------------------------------

    async def get_current_user(self) -> GitLabUser:
        call = _Call("GET", "/user", Route.OTHER, safe_to_repeat=True)
        return _parsed(GitLabUser, await self._json(call))

    async def get_current_token(self) -> PersonalAccessToken | None:
        """Scopes and expiry of this token; None where GitLab cannot tell (older versions,
        OAuth or CI tokens)."""
        call = _Call("GET", "/personal_access_tokens/self", Route.OTHER, safe_to_repeat=True)
        try:
            return _parsed(PersonalAccessToken, await self._json(call))
        except (errors.ProjectNotFound, errors.InsufficientRole, errors.ValidationFailed):
            return None
        except errors.GitLabError as exc:
            if exc.status == 404:
                return None
            raise

    async def get_project(self, project: ProjectRef) -> Project:
        call = _Call(
            "GET", f"/projects/{project.api_id}", Route.OTHER, safe_to_repeat=True, project=project
        )
        return _parsed(Project, await self._json(call))

    # --- groups: /groups/:id ------------------------------------------------------------

    async def get_group(self, group: GroupRef) -> Group:
        call = _Call(
            "GET", f"/groups/{group.api_id}", Route.GROUP, safe_to_repeat=True, group=group
        )
        return _parsed(Group, await self._json(call))

    async def list_group_projects(
        self, group: GroupRef, *, min_access_level: int | None = None
    ) -> list[Project]:
        """Every project of the group and its subgroups the token can see (`min_access_level`:
        only those where it has that role). 100 a page; a 5,000-project group is 50 pages."""
        params: dict[str, Any] = {"include_subgroups": "true", "order_by": "id", "sort": "asc"}
        if min_access_level:
            params["min_access_level"] = min_access_level
        call = _Call(
            "GET",
            f"/groups/{group.api_id}/projects",
            Route.GROUP,
            safe_to_repeat=True,
            params=params,
            group=group,
        )
        items = await self._get_all_pages(call, max_pages=GROUP_MAX_PAGES)
        return [_parsed(Project, item) for item in items]

    # --- plumbing ---------------------------------------------------------------------

    def _mirror_call(
        self,
        method: str,
        project: ProjectRef,
        mirror_id: int,
        suffix: str,
        json: dict[str, Any] | None = None,
    ) -> _Call:
        return _Call(
            method,
            f"/projects/{project.api_id}/remote_mirrors/{mirror_id}{suffix}",
            Route.PUSH_MIRROR,
            safe_to_repeat=True,
            project=project,
            mirror_id=mirror_id,
            json=json,
        )

    def _pull_call(
        self, method: str, project: ProjectRef, json: dict[str, Any] | None = None
    ) -> _Call:
        return _Call(
            method,
            f"/projects/{project.api_id}/mirror/pull",
            Route.PULL_MIRROR,
            safe_to_repeat=True,
            project=project,
            json=json,
        )

    @staticmethod
    def _graphql_call(query: str, variables: dict[str, Any]) -> _Call:
        # A query only reads: safe to repeat after a 429, a 5xx or a dropped connection.
        return _Call(
            "POST",
            "/api/graphql",
            Route.GRAPHQL,
            safe_to_repeat=True,
            json={"query": query, "variables": variables},
            outside_api=True,
        )

    async def _json(self, call: _Call) -> Any:
        return _decoded(await self._send(call))

    async def _get_all_pages(self, call: _Call, max_pages: int = MAX_PAGES) -> list[Any]:
        items: list[Any] = []
        page: str | None = "1"
        pages = 0
        while page and pages < max_pages:
            paged = _Call(
                call.method,
                call.path,
                call.route,
                call.safe_to_repeat,
                call.project,
                params={**(call.params or {}), "per_page": PER_PAGE, "page": page},
                group=call.group,
            )
            response = await self._send(paged)
            batch = _decoded(response)
            if not isinstance(batch, list):
                raise errors.UnexpectedAnswer("GitLab sent an unexpected answer (not a list)")
            items.extend(batch)
            page = response.headers.get("X-Next-Page") or None
            pages += 1
        return items

    async def _send(self, call: _Call) -> Answer:
        return await _with_retries(self._retry, call, lambda: self._send_once(call))

    async def _send_once(self, call: _Call) -> Answer:
        headers = await self._credentials.headers()
        answer = await self._attempt(call, headers)
        if _expired_token(answer):  # an OAuth access token past its 2 hours: renew, once
            renewed = await self._credentials.renewed(headers)
            if renewed is not None:
                answer = await self._attempt(call, renewed)
        if answer.is_success:
            return answer
        raise await self._error_for(call, answer)

    async def _attempt(self, call: _Call, headers: dict[str, str]) -> Answer:
        if self._budget is not None:
            await self._budget.acquire()
        started = time.monotonic()
        answer: Answer | None = None
        try:
            answer = await self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                headers=headers,
                outside_api=call.outside_api,
            )
        except Refused as exc:
            # The request certainly never left. (A connect *timeout* is not treated so: a
            # dropped connection can look like one.)
            raise _NotSent(errors.GitLabUnreachable("connection refused")) from exc
        except TimedOut as exc:
            raise errors.GitLabTimeout() from exc
        except Dropped as exc:
            raise errors.GitLabUnreachable("the connection was dropped") from exc
        finally:
            _observe(call, started, answer)
            if self._budget is not None:
                self._budget.answered(answer.rate_limit if answer is not None else None)
        return answer

    async def _error_for(self, call: _Call, response: Answer) -> errors.GitLabError:
        status = response.status_code
        body = _body_of(response)
        message = errors.message_from_body(body)
        project = str(call.project) if call.project else "the project"
        if status == 401:
            # Push-mirror routes answer 401 for a valid token below Maintainer too: the
            # project's own answer tells the two apart, and names it.
            if call.route in (Route.PUSH_MIRROR, Route.PUBLIC_KEY) and call.project is not None:
                return await self._role_or_token(call.project)
            return errors.TokenRejected()
        if status == 403:
            if isinstance(body, dict) and body.get("error") == "insufficient_scope":
                return errors.InsufficientScope(str(body.get("scope") or "api"))
            if call.route is Route.GRAPHQL:
                return errors.GraphQLRefused(f"403 {message}", status=403)
            if "on pause" in message:
                return errors.MirroringPaused(project)
            if call.project is not None:
                project = await self._name_of(call.project)
            return errors.InsufficientRole(project)
        if status == 404:
            if call.route is Route.GRAPHQL:
                return errors.GraphQLRefused("GitLab has no GraphQL API here (404)", status=404)
            if call.route is Route.GROUP and call.group is not None:
                return errors.GroupNotFound(str(call.group))
            if "Project" in message or call.project is None:
                if call.project is None:
                    return errors.GitLabError(
                        f"GitLab has no such resource ({message})", status=404
                    )
                return errors.ProjectNotFound(project)
            if call.route is Route.PUBLIC_KEY and call.mirror_id is not None:
                if not call.read_mirror_on_404:
                    return errors.PublicKeyUnavailable(call.mirror_id)
                return await self._public_key_missing(call.project, call.mirror_id)
            if call.mirror_id is not None:
                return errors.MirrorNotFound(await self._name_of(call.project), call.mirror_id)
            return errors.GitLabError(f"GitLab has no such resource ({message})", status=404)
        if status in (400, 422):
            if call.route is Route.PULL_MIRROR and "not mirrored" in message:
                return errors.PullMirrorNotConfigured(project)
            if call.path.endswith("/sync") and "Cannot proceed" in message:
                return errors.MirrorDisabled(call.mirror_id or "?")
            return errors.ValidationFailed(f"GitLab refused it: {message}", status=status)
        if status == 409:
            return errors.Conflict(f"GitLab reports a conflict: {message}", status=409)
        if status == 412:
            return errors.PreconditionFailed(
                "the mirror changed meanwhile — look at it again and retry", status=412
            )
        if status == 429:
            return errors.RateLimited(_retry_after(response))
        if status >= 500:
            return errors.ServerError(status)
        return errors.GitLabError(f"GitLab answered {status}: {message}", status=status)

    async def _role_or_token(self, ref: ProjectRef) -> errors.GitLabError:
        """After a 401 from a push-mirror route: a token GitLab rejects, or one below
        Maintainer (named by the project's path, which a typed id does not show)."""
        try:
            project = await self.get_project(ref)
        except errors.TokenRejected as exc:
            return exc
        except errors.GitLabError:
            try:  # the project hides itself (or GitLab is unwell): ask about the token
                await self.get_current_user()
            except errors.GitLabError:
                return errors.TokenRejected()
            return errors.InsufficientRole(str(ref), status=401)
        return errors.InsufficientRole(project.path_with_namespace, status=401)

    async def _name_of(self, ref: ProjectRef) -> str:
        """How to name the project in an error: a typed id means little to people."""
        if not ref.is_numeric or ref.label:
            return str(ref)
        try:
            return (await self.get_project(ref)).path_with_namespace
        except errors.GitLabError:
            return str(ref)

    async def _public_key_missing(self, project: ProjectRef, mirror_id: int) -> errors.GitLabError:
        # public_key's 404 means either "no such mirror" or "not an SSH-key mirror".
        try:
            await self.get_push_mirror(project, mirror_id)
        except errors.MirrorNotFound as exc:
            return exc
        return errors.PublicKeyUnavailable(mirror_id)


class _NotSent(Exception):
    """The request never reached GitLab, so even a create may be sent again."""

    def __init__(self, error: errors.GitLabError) -> None:
        super().__init__(error.user_message)
        self.error = error


_TRANSIENT = (
    errors.RateLimited,
    errors.ServerError,
    errors.GitLabTimeout,
    errors.GitLabUnreachable,
)


async def _with_retries(
    policy: RetryPolicy, call: _Call, attempt: Callable[[], Awaitable[Answer]]
) -> Answer:
    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, _NotSent):
            return True
        return call.safe_to_repeat and isinstance(exc, _TRANSIENT)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, errors.RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        backoff: float = policy.base_delay * 2 ** (state.attempt_number - 1)
        jitter = 0.5 + random.random() / 2  # noqa: S311 - not for security
        return min(policy.max_delay, backoff) * jitter

    def stop(state: RetryCallState) -> bool:
        # Give up rather than sleep past the budget (e.g. a long Retry-After).
        elapsed = state.seconds_since_start or 0.0
        out_of_time = elapsed + state.upcoming_sleep > policy.budget_seconds
        return state.attempt_number >= policy.max_attempts or out_of_time

    retrying = AsyncRetrying(
        retry=retry_if_exception(retryable), wait=wait, stop=stop, reraise=True
    )
    try:
        async for attempt_state in retrying:
            with attempt_state:
                return await attempt()
    except _NotSent as exc:
        raise exc.error from None
    raise AssertionError("unreachable: tenacity either returns or raises")


def _observe(call: _Call, started: float, response: Answer | None) -> None:
    """One log line and the metrics for every attempt, answered or not."""
    status = response.status_code if response is not None else 0
    seconds = time.monotonic() - started
    metrics.GITLAB_LATENCY.labels(call.route.value, call.method).observe(seconds)
    if status == 0 or status >= 400:
        metrics.GITLAB_ERRORS.labels(str(status)).inc()
    log.info(
        "gitlab %s %s -> %s in %.0f ms",
        call.method,
        call.path,
        status or "no answer",
        seconds * 1000,
    )


def _expired_token(answer: Answer) -> bool:
    """GitLab's 401 for an OAuth access token it no longer accepts (expired, revoked)."""
    if answer.status_code != 401:
        return False
    body = _body_of(answer)
    return isinstance(body, dict) and body.get("error") == "invalid_token"


def _decoded(response: Answer) -> Any:
    try:
        return response.json()
    except ValueError:
        raise errors.UnexpectedAnswer(
            "GitLab sent an answer that is not JSON — is GITLAB_URL pointing at GitLab, "
            "or is a sign-in page or proxy in the way?",
            status=response.status_code,
        ) from None


def _parsed(model: type[M], body: Any) -> M:
    """The answer as `model`; an answer of another shape is GitLab's (or a proxy's)
    problem, not a crash. Never the validation text: it quotes values, URLs included."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise errors.UnexpectedAnswer(
            f"GitLab sent an answer that does not fit its API ({exc.error_count()} fields "
            f"wrong in a {model.__name__})"
        ) from None


def _body_of(response: Answer) -> object:
    try:
        return response.json()
    except ValueError:
        return response.text


def _retry_after(response: Answer) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
