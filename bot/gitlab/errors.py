"""Typed GitLab errors, each with the one line a person can act on.

This is the one place a GitLab status code is turned into words. Every message is
built from scrubbed text only: no token, password or URL userinfo reaches it.
"""

from __future__ import annotations

from bot.gitlab.scrub import scrub_text


class GitLabError(Exception):
    """Base class. `user_message` is the line shown in Slack, the console and the CLI."""

    status: int | None = None

    def __init__(self, user_message: str, *, status: int | None = None, detail: str | None = None):
        self.user_message = scrub_text(user_message) or ""
        self.detail = scrub_text(detail)
        if status is not None:
            self.status = status
        super().__init__(self.user_message)


class TokenRejected(GitLabError):
    """401 from a token GitLab does not accept (revoked, expired, mistyped)."""

    status = 401

    def __init__(self) -> None:
        super().__init__("GitLab rejected your token — run `/mirror login` again")


class InsufficientRole(GitLabError):
    """The token is valid but its user lacks the role (GitLab says 401 or 403)."""

    def __init__(self, project: str, role: str = "Maintainer", *, status: int = 403) -> None:
        self.project = project
        self.role = role
        super().__init__(f"you need the {role} role on {project}", status=status)


class InsufficientScope(GitLabError):
    """403 `insufficient_scope`: e.g. a read_api token used for a change."""

    status = 403

    def __init__(self, scopes_gitlab_named: str = "api") -> None:
        self.scopes_gitlab_named = scopes_gitlab_named
        super().__init__(
            "your token lacks the `api` scope this needs — create a token with `api` and run "
            "`/mirror login` again"
        )


class ProjectNotFound(GitLabError):
    status = 404

    def __init__(self, project: str) -> None:
        self.project = project
        super().__init__(f"project {project} was not found, or your token cannot see it")


class GroupNotFound(GitLabError):
    status = 404

    def __init__(self, group: str) -> None:
        super().__init__(f"group {group} was not found, or your token cannot see it")


class MirrorNotFound(GitLabError):
    status = 404

    def __init__(self, project: str, mirror_id: int | str) -> None:
        super().__init__(
            f"push mirror {mirror_id} does not exist in {project} — `/mirror list {project}` "
            "shows its mirrors"
        )


class PublicKeyUnavailable(GitLabError):
    """404 on `public_key`: only ssh:// mirrors with SSH key authentication have one."""

    status = 404

    def __init__(self, mirror_id: int | str) -> None:
        super().__init__(
            f"mirror {mirror_id} has no SSH public key: only `ssh://` mirrors using SSH key "
            "authentication have one"
        )


class PullMirrorNotConfigured(GitLabError):
    status = 400

    def __init__(self, project: str) -> None:
        super().__init__(
            f"{project} has no pull mirror (pull mirroring is a GitLab Premium feature) — "
            f"set one up with `/mirror pull config {project}`"
        )


class MirroringPaused(GitLabError):
    status = 403

    def __init__(self, project: str) -> None:
        super().__init__(
            f"pull mirroring of {project} is paused after repeated failures — fix the "
            "mirror's settings with `/mirror pull config`, then start it again"
        )


class MirrorDisabled(GitLabError):
    """400 on sync: GitLab refuses to sync a disabled mirror."""

    status = 400

    def __init__(self, mirror_id: int | str) -> None:
        super().__init__(
            f"GitLab cannot sync mirror {mirror_id}: it is disabled or misconfigured — "
            "enable it first"
        )


class GraphQLRefused(GitLabError):
    """GitLab's GraphQL answered with errors (a limit exceeded, a field it does not know)
    or is not there (404: an old GitLab, or a proxy that does not pass it)."""

    def __init__(self, reason: str, *, status: int | None = 200) -> None:
        super().__init__(f"GitLab's GraphQL API refused the query: {reason}", status=status)


class ValidationFailed(GitLabError):
    """400/422 with GitLab's own validation message."""

    status = 400


class Conflict(GitLabError):
    status = 409


class PreconditionFailed(GitLabError):
    status = 412


class UnexpectedAnswer(GitLabError):
    """A success status with a body that is not GitLab's API: a sign-in page of an SSO
    proxy, a truncated answer, a payload of another shape."""


class RateLimited(GitLabError):
    status = 429

    def __init__(self, retry_after: float | None) -> None:
        self.retry_after = retry_after
        wait = f" for {round(retry_after)} s" if retry_after else ""
        super().__init__(f"GitLab is rate-limiting requests{wait} — try again shortly")


class ServerError(GitLabError):
    def __init__(self, status: int) -> None:
        super().__init__(
            f"GitLab answered with a server error ({status}) — try again in a minute",
            status=status,
        )


class GitLabTimeout(GitLabError):
    def __init__(self) -> None:
        super().__init__("GitLab did not answer in time — try again in a minute")


class GitLabUnreachable(GitLabError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot reach GitLab ({reason}) — check GITLAB_URL and the network")


def message_from_body(body: object) -> str:
    """Flatten GitLab's error bodies: `{"message": str|dict}`, `{"error": str}`."""
    if isinstance(body, dict):
        message = body.get("message", body.get("error"))
        if isinstance(message, dict):
            parts = []
            for field, problems in message.items():
                items = problems if isinstance(problems, list) else [problems]
                parts.append(f"{field} {', '.join(str(p) for p in items)}")
            return "; ".join(parts)
        if message is not None:
            return str(message)
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return "no details given"
