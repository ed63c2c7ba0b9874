"""The GraphQL queries the client sends to GitLab's `POST /api/graphql`, and reading their
answers. GitLab answers 200 with `data` and/or `errors`; any `errors` entry is a refusal
here (a limit exceeded, a field an older GitLab lacks): the caller falls back to REST.

`importStates` reads 100 projects' import states a page (GitLab's largest page): by
GitLab's complexity rule it costs about 30 of the 250 allowed, and the ids travel as
variables, which GitLab's 10,000-character limit on the query does not count.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bot.gitlab import errors
from bot.gitlab.models import ImportState
from bot.gitlab.scrub import scrub_text

PAGE_SIZE = 100

IMPORT_STATES = """
query importStates($ids: [ID!], $after: String) {
  projects(ids: $ids, first: 100, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      detailedImportStatus {
        id status url lastError lastUpdateAt lastUpdateStartedAt lastSuccessfulUpdateAt
      }
    }
  }
}
""".strip()

_PROJECT = "gid://gitlab/Project/"
_IMPORT_STATE = "gid://gitlab/ProjectImportState/"


def project_gid(project_id: int) -> str:
    return f"{_PROJECT}{project_id}"


def data_of(body: Any) -> dict[str, Any]:
    """The `data` of an answer; its `errors` as a `GraphQLRefused`."""
    if not isinstance(body, dict):
        raise errors.UnexpectedAnswer("GitLab's GraphQL sent an answer that is not an object")
    problems = body.get("errors")
    if problems:
        first = problems[0] if isinstance(problems, list) else problems
        message = first.get("message") if isinstance(first, dict) else str(first)
        raise errors.GraphQLRefused(scrub_text(str(message)) or "an error without a message")
    data = body.get("data")
    if not isinstance(data, dict):
        raise errors.UnexpectedAnswer("GitLab's GraphQL sent an answer without data")
    return data


def import_states_page(body: Any) -> tuple[dict[int, ImportState | None], str | None]:
    """One page of `IMPORT_STATES`: project id → its import state (None: it has none), and
    the cursor of the next page, if there is one."""
    connection = data_of(body).get("projects")
    if not isinstance(connection, dict):
        raise errors.UnexpectedAnswer("GitLab's GraphQL sent no projects")
    found: dict[int, ImportState | None] = {}
    try:
        for node in connection.get("nodes") or []:
            found[_number(node["id"], _PROJECT)] = _import_state(node.get("detailedImportStatus"))
        page = connection.get("pageInfo") or {}
    except (KeyError, TypeError, ValueError, ValidationError):
        raise errors.UnexpectedAnswer(
            "GitLab's GraphQL sent projects that do not fit its schema"
        ) from None
    after = page.get("endCursor") if page.get("hasNextPage") else None
    return found, after if isinstance(after, str) else None


def _import_state(node: Any) -> ImportState | None:
    if node is None:
        return None
    return ImportState(
        id=_number(node["id"], _IMPORT_STATE) if node.get("id") else None,
        status=node.get("status") or "none",
        url=node.get("url"),
        last_error=node.get("lastError"),
        last_update_at=node.get("lastUpdateAt"),
        last_update_started_at=node.get("lastUpdateStartedAt"),
        last_successful_update_at=node.get("lastSuccessfulUpdateAt"),
    )


def _number(gid: Any, prefix: str) -> int:
    if not isinstance(gid, str) or not gid.startswith(prefix):
        raise ValueError(gid)
    return int(gid.removeprefix(prefix))
