"""GitLab's `POST /api/graphql`, the subset the monitor reads: `Query.projects` and each
project's `detailedImportStatus` (its import state, which a pull mirror has).

Executed by graphql-core over a schema written as GitLab names it. GitLab's limits apply:
at most 10,000 characters of query, a complexity of at most 250, 100 nodes a page, 50
`fullPaths`; over one, GitLab answers 200 with an `errors` entry and no data, as here.

Complexity, approximating GitLab's rule (graphql-ruby with GitLab's field costs): every
selected field costs 1 plus what is selected under it; a connection (`projects`) costs
(1 + its children) × (1 + page size × 0.01), so a page of 100 doubles it. A query of 100
projects with their import states costs about 30.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    get_named_type,
    parse,
    validate,
)
from graphql.utilities import value_from_ast_untyped

from bot.simulator.api import Request, Response
from bot.simulator.validation import safe_url
from bot.simulator.world import ApiError, SimProject, SimUser, World

MAX_QUERY_LENGTH = 10_000
MAX_COMPLEXITY = 250  # authenticated calls
MAX_PAGE_SIZE = 100
MAX_FULL_PATHS = 50
CONNECTION_MULTIPLIER = 0.01

SCHEMA = build_schema(
    """
    scalar Time

    type Query {
      "Projects the caller can read; `ids` are global ids (gid://gitlab/Project/<id>)."
      projects(ids: [ID!], fullPaths: [String!], first: Int, after: String): ProjectConnection
    }

    type ProjectConnection {
      nodes: [Project]
      edges: [ProjectEdge]
      pageInfo: PageInfo!
    }

    type ProjectEdge {
      cursor: String!
      node: Project
    }

    type PageInfo {
      hasNextPage: Boolean!
      hasPreviousPage: Boolean!
      startCursor: String
      endCursor: String
    }

    type Project {
      id: ID!
      fullPath: ID!
      importStatus: String
      detailedImportStatus: DetailedImportStatus
    }

    type DetailedImportStatus {
      id: ID
      status: String
      url: String
      lastError: String
      lastUpdateAt: Time
      lastUpdateStartedAt: Time
      lastSuccessfulUpdateAt: Time
    }
    """
)

_PROJECT_GID = re.compile(r"^gid://gitlab/Project/(\d+)$")


def graphql_time(moment: datetime | None) -> str | None:
    """GitLab's GraphQL `Time` (Types::TimeType): `value.iso8601`, whole seconds — REST
    writes milliseconds (bot/simulator/world.py `iso`)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def handle_graphql(world: World, request: Request) -> Response:
    """One GraphQL request: authenticated like `/api/v4`, then 200 with data or errors."""
    try:
        with world.lock:
            world.advance()
            user, token = world.authenticate(request.token, bearer=request.bearer)
            world.require_scope(token, write=False)
            return Response(200, _answer(world, user, request.body))
    except ApiError as exc:
        return Response(exc.status, exc.body)


def _answer(world: World, user: SimUser, body: dict[str, Any]) -> dict[str, Any]:
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        return _errors("No query string was present")
    if len(query) > MAX_QUERY_LENGTH:
        return _errors("Query too large")
    variables = body.get("variables") or {}
    if isinstance(variables, str):  # GitLab accepts variables as a JSON string too
        try:
            variables = json.loads(variables) if variables else {}
        except ValueError:
            return _errors("Variables are invalid JSON")
    if not isinstance(variables, dict):
        return _errors("Variables must be an object")
    try:
        document = parse(query)
    except GraphQLError as exc:
        return _errors(exc.message)
    problems = validate(SCHEMA, document)
    if problems:
        return {"errors": [problem.formatted for problem in problems]}
    operation = _operation(document, body.get("operationName"))
    if operation is None:
        return _errors("An operation name is required")
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    cost = _complexity(operation.selection_set, SCHEMA.query_type, fragments, variables)
    if cost > MAX_COMPLEXITY:
        return _errors(
            f"Query has complexity of {cost}, which exceeds max complexity of {MAX_COMPLEXITY}"
        )
    root = {"projects": lambda info, **args: _projects(world, user, args)}
    result = execute_sync(
        SCHEMA,
        document,
        root_value=root,
        variable_values=variables,
        operation_name=body.get("operationName"),
    )
    answer: dict[str, Any] = {}
    if result.errors:
        answer["errors"] = [error.formatted for error in result.errors]
    if result.data is not None:
        answer["data"] = result.data
    return answer


def _errors(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}


def _operation(document: DocumentNode, name: object) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        return next((o for o in operations if o.name and o.name.value == name), None)
    return operations[0] if len(operations) == 1 else None


def _complexity(
    selection_set: SelectionSetNode | None,
    parent: GraphQLObjectType | None,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> int:
    """The cost of a selection (see the module's docstring); run on validated queries."""
    if selection_set is None or parent is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            total += _complexity(fragment.selection_set, parent, fragments, variables)
        elif isinstance(selection, InlineFragmentNode):
            total += _complexity(selection.selection_set, parent, fragments, variables)
        elif isinstance(selection, FieldNode):
            name = selection.name.value
            if name.startswith("__"):
                total += 1
                continue
            field = parent.fields[name]
            child = get_named_type(field.type)
            children = _complexity(
                selection.selection_set,
                child if isinstance(child, GraphQLObjectType) else None,
                fragments,
                variables,
            )
            if child.name.endswith("Connection"):
                page = _page_size(selection, variables)
                total += int((1 + children) * (1 + page * CONNECTION_MULTIPLIER))
            else:
                total += 1 + children
    return total


def _page_size(field: FieldNode, variables: dict[str, Any]) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            value = value_from_ast_untyped(argument.value, variables)
            if isinstance(value, int):
                return max(0, min(value, MAX_PAGE_SIZE))
    return MAX_PAGE_SIZE


def _projects(world: World, user: SimUser, args: dict[str, Any]) -> dict[str, Any]:
    ids = args.get("ids")
    full_paths = args.get("fullPaths")
    if full_paths is not None and len(full_paths) > MAX_FULL_PATHS:
        raise GraphQLError(f"fullPaths is too long (maximum is {MAX_FULL_PATHS})")
    first = args.get("first")
    if first is not None and first < 0:
        raise GraphQLError("first must be a non-negative integer")
    page_size = MAX_PAGE_SIZE if first is None else min(first, MAX_PAGE_SIZE)
    found: list[SimProject] = sorted(world.projects.values(), key=lambda p: p.id)
    if ids is not None:
        wanted = {_project_id(gid) for gid in ids}
        found = [p for p in found if p.id in wanted]
    if full_paths is not None:
        paths = set(full_paths)
        found = [p for p in found if p.path in paths]
    found = [p for p in found if world.can_read(user, p)]  # others are simply absent
    after = args.get("after")
    if after is not None:
        last_id = _cursor_id(after)
        found = [p for p in found if p.id > last_id]
    page = found[:page_size]
    cursors = [_cursor(p.id) for p in page]
    return {
        "nodes": [_project(world, user, p) for p in page],
        "edges": [
            {"cursor": cursor, "node": _project(world, user, p)}
            for cursor, p in zip(cursors, page, strict=True)
        ],
        "pageInfo": {
            "hasNextPage": len(found) > page_size,
            "hasPreviousPage": after is not None,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def _project(world: World, user: SimUser, project: SimProject) -> dict[str, Any]:
    state = project.pull_mirror  # the project's import state: pull mirrors and imports
    return {
        "id": f"gid://gitlab/Project/{project.id}",
        "fullPath": project.path,
        "importStatus": state.update_status if state else "none",
        "detailedImportStatus": None
        if state is None
        else {
            "id": f"gid://gitlab/ProjectImportState/{state.id}",
            "status": state.update_status,
            "url": safe_url(state.url),
            # read_import_error: Maintainers and above only
            "lastError": state.last_error if world.is_maintainer(user, project) else None,
            "lastUpdateAt": graphql_time(state.last_update_at),
            "lastUpdateStartedAt": graphql_time(state.last_update_started_at),
            "lastSuccessfulUpdateAt": graphql_time(state.last_successful_update_at),
        },
    }


def _project_id(gid: str) -> int:
    match = _PROJECT_GID.match(gid)
    if match is None:
        raise GraphQLError(f"{gid} is not a valid ID for Project.")
    return int(match.group(1))


def _cursor(project_id: int) -> str:
    return base64.b64encode(json.dumps({"id": str(project_id)}).encode()).decode()


def _cursor_id(cursor: str) -> int:
    try:
        return int(json.loads(base64.b64decode(cursor))["id"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise GraphQLError("Please provide a valid cursor") from None
