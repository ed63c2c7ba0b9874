"""Project references as people type them: `123`, `group/sub/project`, or a pasted URL.

Slack wraps pasted links as `<https://…>` or `<https://…|label>`; URLs may end in `.git`
or point at a sub-page (`/-/settings/repository`). All of them name one project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from bot.gitlab.scrub import scrub_text

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.\-]+@(?P<host>[A-Za-z0-9_.\-]+):(?P<path>[^\s]+)$")
MAX_REF_LENGTH = 1024


class ProjectRefError(ValueError):
    """The text does not name a GitLab project."""

    def __init__(self, text: str, reason: str) -> None:
        # What was typed may be a pasted URL with a token in it: never echo that part.
        shown = scrub_text(text) or ""
        shown = shown if len(shown) <= 80 else shown[:77] + "…"
        super().__init__(f"`{shown}` is not a GitLab project: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class ProjectRef:
    """A project as GitLab's `:id` path parameter accepts it."""

    value: str  # "42" or "group/sub/project"
    label: str | None = None  # how to name it to people, e.g. the path of a numeric id

    @staticmethod
    def of(project_id: int, path: str) -> ProjectRef:
        """By id (stable across renames), named by its path in messages."""
        return ProjectRef(str(project_id), path)

    @property
    def is_numeric(self) -> bool:
        return self.value.isdigit()

    @property
    def api_id(self) -> str:
        """URL-encoded for the API path: `group%2Fsub%2Fproject`."""
        return quote(self.value, safe="")

    def __str__(self) -> str:
        return self.label or self.value


def parse_project_ref(text: str, gitlab_url: str | None = None) -> ProjectRef:
    """Parse what a person typed into a `ProjectRef`, or raise `ProjectRefError`."""
    raw = text.strip()
    if not raw:
        raise ProjectRefError(text, "it is empty")
    if len(raw) > MAX_REF_LENGTH:
        raise ProjectRefError(text, "it is too long")
    raw = _unwrap_slack_link(raw)
    if raw.isdigit():
        if int(raw) == 0:
            raise ProjectRefError(text, "project ids start at 1")
        return ProjectRef(str(int(raw)))
    if "://" in raw:
        return ProjectRef(_path_from_url(text, raw, gitlab_url))
    scp = _SCP_LIKE.match(raw)
    if scp:
        _check_host(text, scp.group("host"), gitlab_url)
        return ProjectRef(_clean_path(text, scp.group("path")))
    return ProjectRef(_clean_path(text, raw))


def _unwrap_slack_link(raw: str) -> str:
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1].split("|", 1)[0]
    return raw.strip()


def _path_from_url(original: str, raw: str, gitlab_url: str | None) -> str:
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise ProjectRefError(original, "the URL cannot be parsed") from None
    if parts.scheme not in ("http", "https", "ssh"):
        raise ProjectRefError(original, "only http(s) and ssh project URLs are understood")
    _check_host(original, parts.hostname or "", gitlab_url)
    path = unquote(parts.path)
    if gitlab_url:
        # GitLab may live under a relative URL root (https://example.com/gitlab).
        root = urlsplit(gitlab_url).path.rstrip("/")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
    path = path.split("/-/", 1)[0]
    return _clean_path(original, path)


def _check_host(original: str, host: str, gitlab_url: str | None) -> None:
    if not host:
        raise ProjectRefError(original, "the URL has no host")
    if gitlab_url:
        expected = urlsplit(gitlab_url).hostname or ""
        if host.lower() != expected.lower():
            raise ProjectRefError(original, f"it is on {host}, not on {expected}")


def _clean_path(original: str, path: str) -> str:
    path = path.strip().strip("/")
    if path.endswith(".git"):
        path = path[: -len(".git")]
    segments = path.split("/")
    if len(segments) < 2:
        raise ProjectRefError(
            original, "use a numeric id, a full path like `group/project`, or the project's URL"
        )
    for segment in segments:
        if not _SEGMENT.match(segment):
            raise ProjectRefError(original, f"`{segment[:40]}` is not a valid path segment")
    return "/".join(segments)


@dataclass(frozen=True)
class GroupRef:
    """A group as GitLab's `/groups/:id` accepts it: a numeric id or its full path."""

    value: str

    @property
    def api_id(self) -> str:
        return quote(self.value, safe="")

    def __str__(self) -> str:
        return self.value


def parse_group_ref(text: str, gitlab_url: str | None = None) -> GroupRef:
    """`platform/`, `platform/tools`, `42`, or the group's URL (`…/groups/platform`)."""
    raw = _unwrap_slack_link(text.strip())
    if len(raw) > MAX_REF_LENGTH:
        raise ProjectRefError(text, "it is too long")
    if "://" in raw:
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https"):
            raise ProjectRefError(text, "only http(s) group URLs are understood")
        _check_host(text, parts.hostname or "", gitlab_url)
        raw = unquote(parts.path).split("/-/", 1)[0]
        if gitlab_url:
            root = urlsplit(gitlab_url).path.rstrip("/")
            if root and raw.startswith(root + "/"):
                raw = raw[len(root) :]
        raw = raw.strip("/").removeprefix("groups/")
    raw = raw.strip("/")
    if raw.isdigit() and int(raw) > 0:
        return GroupRef(raw)
    segments = raw.split("/")
    if not raw or not all(_SEGMENT.match(segment) for segment in segments):
        raise ProjectRefError(text, "use a group's full path like `platform/` or its URL")
    return GroupRef(raw)
