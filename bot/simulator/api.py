"""GitLab's `/api/v4` routes for mirrors, as plain functions over the `World`.

`handle_request` takes the parsed request and returns (status, body, headers); the HTTP
server in `server.py` only moves bytes. Statuses and bodies follow GitLab's code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from bot.simulator.validation import coerce_bool, regex_error, url_blocked_reason
from bot.simulator.world import (
    ApiError,
    SimGroup,
    SimProject,
    SimPullMirror,
    SimPushMirror,
    SimToken,
    SimUser,
    World,
    fingerprint_sha256,
    iso,
    new_ssh_public_key,
    not_found,
)

MAX_HOST_KEYS = 10


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, a str (sent as text) or None (no body)
    headers: dict[str, str] | None = None


@dataclass
class Request:
    method: str
    path: str  # below /api/v4, still percent-encoded
    query: dict[str, str]
    body: dict[str, Any]
    token: str | None
    base_url: str = ""  # scheme://host:port/api/v4, for pagination links
    bearer: bool = False  # the token came as `Authorization: Bearer`, not PRIVATE-TOKEN


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(f"^{pattern}$"), name)
    for method, pattern, name in [
        ("GET", r"/version", "version"),
        ("GET", r"/user", "current_user"),
        ("GET", r"/personal_access_tokens/self", "current_token"),
        ("GET", r"/projects/(?P<id>[^/]+)", "get_project"),
        ("GET", r"/groups/(?P<id>[^/]+)", "get_group"),
        ("GET", r"/groups/(?P<id>[^/]+)/projects", "list_group_projects"),
        ("GET", r"/projects/(?P<id>[^/]+)/remote_mirrors", "list_push_mirrors"),
        ("POST", r"/projects/(?P<id>[^/]+)/remote_mirrors", "create_push_mirror"),
        ("GET", r"/projects/(?P<id>[^/]+)/remote_mirrors/(?P<mid>[^/]+)", "get_push_mirror"),
        ("PUT", r"/projects/(?P<id>[^/]+)/remote_mirrors/(?P<mid>[^/]+)", "update_push_mirror"),
        ("DELETE", r"/projects/(?P<id>[^/]+)/remote_mirrors/(?P<mid>[^/]+)", "delete_push_mirror"),
        ("POST", r"/projects/(?P<id>[^/]+)/remote_mirrors/(?P<mid>[^/]+)/sync", "sync_push_mirror"),
        ("GET", r"/projects/(?P<id>[^/]+)/remote_mirrors/(?P<mid>[^/]+)/public_key", "public_key"),
        ("GET", r"/projects/(?P<id>[^/]+)/mirror/pull", "get_pull_mirror"),
        ("PUT", r"/projects/(?P<id>[^/]+)/mirror/pull", "configure_pull_mirror"),
        ("POST", r"/projects/(?P<id>[^/]+)/mirror/pull", "start_pull_mirror"),
    ]
]


def _route_for(request: Request) -> tuple[str, re.Match[str]] | None:
    for method, pattern, name in _ROUTES:
        match = pattern.match(request.path)
        if match and method == request.method:
            return name, match
    return None


def handle_request(world: World, request: Request) -> Response:
    route = _route_for(request)
    if route is None:
        return Response(404, {"error": "404 Not Found"})
    name, match = route
    try:
        with world.lock:
            world.advance()
            user, token = world.authenticate(request.token, bearer=request.bearer)
            world.require_scope(token, write=request.method != "GET")
            handler = _HANDLERS[name]
            return handler(world, request, user, token, match.groupdict())
    except ApiError as exc:
        return Response(exc.status, exc.body)


# --- identity ------------------------------------------------------------------------------


def _version(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    return Response(200, {"version": "18.5.0-ee", "revision": "simulator"})


def _current_user(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    return Response(
        200,
        {
            "id": user.id,
            "username": user.username,
            "name": user.name,
            "state": "active",
            "is_admin": user.is_admin,
            "bot": user.bot,
            "web_url": f"{world.web_url}/{user.username}",
        },
    )


def _current_token(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    if token.oauth:  # not a personal access token: GitLab finds none
        raise not_found("404 Not Found")
    return Response(
        200,
        {
            "id": token.id,
            "name": token.name,
            "revoked": token.revoked,
            "active": True,
            "scopes": token.scopes,
            "user_id": user.id,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
    )


def _get_project(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = world.find_project(unquote(args["id"]), user)
    level = world.access_level(user, project)
    name = project.path.rsplit("/", 1)[-1]
    return Response(
        200,
        {
            "id": project.id,
            "name": name,
            "path": name,
            "path_with_namespace": project.path,
            "web_url": f"{world.web_url}/{project.path}",
            "visibility": project.visibility,
            "permissions": {
                "project_access": {"access_level": level, "notification_level": 3}
                if level
                else None,
                "group_access": None,
            },
        },
    )


# --- groups ----------------------------------------------------------------------------------


def _group_entity(world: World, group: SimGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.path.rsplit("/", 1)[-1],
        "path": group.path.rsplit("/", 1)[-1],
        "full_path": group.path,
        "full_name": group.path.replace("/", " / "),
        "visibility": group.visibility,
        "web_url": f"{world.web_url}/groups/{group.path}",
    }


def _get_group(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    return Response(200, _group_entity(world, world.find_group(unquote(args["id"]), user)))


def _list_group_projects(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    """GitLab's group project listing: only projects the caller can see, `min_access_level`
    narrowing it to a role; `mirror` is true for projects with a pull mirror (Premium)."""
    group = world.find_group(unquote(args["id"]), user)
    include = coerce_bool(request.query.get("include_subgroups", "false"))
    minimum = _int(request.query.get("min_access_level"), 0)
    projects = [
        p
        for p in world.group_projects(group, include_subgroups=bool(include))
        if world.can_read(user, p) and (not minimum or world.access_level(user, p) >= minimum)
    ]
    simple = coerce_bool(request.query.get("simple", "false"))
    entities = []
    for project in projects:
        name = project.path.rsplit("/", 1)[-1]
        entity: dict[str, Any] = {
            "id": project.id,
            "name": name,
            "path": name,
            "path_with_namespace": project.path,
            "web_url": f"{world.web_url}/{project.path}",
        }
        if not simple:
            entity["visibility"] = project.visibility
            entity["mirror"] = project.pull_mirror is not None
        entities.append(entity)
    return _paginated(request, entities)


# --- push mirrors ----------------------------------------------------------------------------


def _maintained_project(world: World, user: SimUser, args: dict[str, str]) -> SimProject:
    project = world.find_project(unquote(args["id"]), user)
    if not world.is_maintainer(user, project):
        # GitLab's remote_mirrors `before` hook: unauthorized!, even for a valid token.
        raise ApiError(401, {"message": "401 Unauthorized"})
    return project


def _push_mirror(project: SimProject, mirror_id: str) -> SimPushMirror:
    mirror = project.push_mirrors.get(int(mirror_id)) if mirror_id.isdigit() else None
    if mirror is None:
        raise ApiError(404, {"message": "404 Not found"})
    return mirror


def _list_push_mirrors(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _maintained_project(world, user, args)
    mirrors = [world.push_mirror_entity(m) for m in project.push_mirrors.values()]
    return _paginated(request, mirrors)


def _paginated(request: Request, items: list[Any]) -> Response:
    """One page of `items` with GitLab's offset-pagination headers."""
    mirrors = items
    page = max(1, _int(request.query.get("page"), 1))
    per_page = min(100, max(1, _int(request.query.get("per_page"), 20)))
    total_pages = max(1, -(-len(mirrors) // per_page))
    next_page = str(page + 1) if page < total_pages else ""
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Total": str(len(mirrors)),
        "X-Total-Pages": str(total_pages),
        "X-Next-Page": next_page,
        "X-Prev-Page": str(page - 1) if page > 1 else "",
    }
    links = {"first": 1, "last": total_pages}
    if page < total_pages:
        links["next"] = page + 1
    if page > 1:
        links["prev"] = page - 1
    target = f"{request.base_url}{request.path}"
    others = "".join(
        f"&{k}={quote(v)}" for k, v in request.query.items() if k not in ("page", "per_page")
    )
    headers["Link"] = ", ".join(
        f'<{target}?page={number}&per_page={per_page}{others}>; rel="{rel}"'
        for rel, number in links.items()
    )
    return Response(200, mirrors[(page - 1) * per_page : page * per_page], headers)


def _get_push_mirror(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _maintained_project(world, user, args)
    return Response(200, world.push_mirror_entity(_push_mirror(project, args["mid"])))


def _public_key(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _maintained_project(world, user, args)
    mirror = _push_mirror(project, args["mid"])
    if not (mirror.url.startswith("ssh://") and mirror.auth_method == "ssh_public_key"):
        raise not_found()
    return Response(200, {"public_key": mirror.ssh_public_key})


def _create_push_mirror(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _maintained_project(world, user, args)
    body = request.body
    if "url" not in body:
        raise ApiError(400, {"error": "url is missing"})
    if "auth_method" in body and body["auth_method"] not in ("ssh_public_key", "password"):
        raise ApiError(400, {"error": "auth_method does not have a valid value"})
    _refuse_both_branch_options(body)
    url = str(body["url"] or "").strip()
    attributes = _push_attributes(body)
    _validate_push_mirror(world, url, attributes)
    host_keys = _host_keys(world, body.get("host_keys"), url)
    mirror = world.add_push_mirror(
        project,
        url,
        enabled=attributes.pop("enabled", False),
        host_keys=host_keys or [],
        **attributes,
    )
    return Response(201, world.push_mirror_entity(mirror))


def _update_push_mirror(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _maintained_project(world, user, args)
    mirror = _push_mirror(project, args["mid"])
    _refuse_both_branch_options(request.body)
    attributes = _push_attributes(request.body)  # `url` is not a PUT parameter: ignored
    if "auth_method" in attributes and attributes["auth_method"] not in (
        "ssh_public_key",
        "password",
    ):
        raise ApiError(400, {"message": {"auth_method": ["is not included in the list"]}})
    merged_protected = attributes.get("only_protected_branches", mirror.only_protected_branches)
    merged_regex = attributes.get("mirror_branch_regex", mirror.mirror_branch_regex)
    if attributes.get("mirror_branch_regex"):
        merged_protected = attributes["only_protected_branches"] = False
    elif attributes.get("only_protected_branches"):
        merged_regex = attributes["mirror_branch_regex"] = None
    _validate_push_mirror(
        world,
        mirror.url,
        {
            **attributes,
            "only_protected_branches": merged_protected,
            "mirror_branch_regex": merged_regex,
        },
    )
    host_keys = _host_keys(world, request.body.get("host_keys"), mirror.url)
    for name, value in attributes.items():
        setattr(mirror, name, value)
    if host_keys is not None:
        mirror.host_keys = host_keys
    if mirror.auth_method == "ssh_public_key" and mirror.ssh_public_key is None:
        mirror.ssh_public_key = new_ssh_public_key(world.host)
    return Response(200, world.push_mirror_entity(mirror))


def _sync_push_mirror(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _maintained_project(world, user, args)
    world.sync_push_mirror(_push_mirror(project, args["mid"]))
    return Response(204)


def _delete_push_mirror(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _maintained_project(world, user, args)
    mirror = _push_mirror(project, args["mid"])
    del project.push_mirrors[mirror.id]
    return Response(204)


def _refuse_both_branch_options(body: dict[str, Any]) -> None:
    # Grape's `mutually_exclusive` on POST and PUT counts keys sent, whatever their values:
    # an empty filter next to `only_protected_branches: false` is refused too.
    if "only_protected_branches" in body and "mirror_branch_regex" in body:
        raise ApiError(
            400, {"error": "only_protected_branches, mirror_branch_regex are mutually exclusive"}
        )


def _push_attributes(body: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name in ("enabled", "keep_divergent_refs", "only_protected_branches"):
        if name in body:
            if body[name] is None and name == "only_protected_branches":
                raise ApiError(400, {"message": {name: ["can't be blank"]}})
            value = coerce_bool(body[name])
            if value is None:
                raise ApiError(400, {"error": f"{name} is invalid"})
            attributes[name] = value
    if "auth_method" in body:
        attributes["auth_method"] = body["auth_method"] or "password"
    if "mirror_branch_regex" in body:
        # Stored as sent: `RemoteMirrors::Attributes` passes an empty filter through (it is
        # not `present?`, so it does not turn "protected only" off), and empty means none.
        attributes["mirror_branch_regex"] = body["mirror_branch_regex"]
    return attributes


def _validate_push_mirror(world: World, url: str, attributes: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if not url:
        errors["url"] = ["can't be blank"]
    else:
        reason = url_blocked_reason(url, allow_local=world.allow_local_requests)
        if reason:
            errors["url"] = [f"is blocked: {reason}"]
    regex = attributes.get("mirror_branch_regex")
    if regex:
        if attributes.get("only_protected_branches"):
            errors["mirror_branch_regex"] = ["must be blank"]
        elif problem := regex_error(regex):
            errors["mirror_branch_regex"] = [problem]
    if errors:
        raise ApiError(400, {"message": errors})


def _host_keys(world: World, value: Any, url: str) -> list[str] | None:
    if value is None:
        return None
    keys = value if isinstance(value, list) else [value]
    if len(keys) > MAX_HOST_KEYS:
        raise ApiError(400, {"message": "Cannot save: too many host keys (maximum is 10)"})
    for key in keys:
        fingerprint_sha256(str(key))  # raises the 400 for an invalid key
    return [str(key) for key in keys]


# --- pull mirror -----------------------------------------------------------------------------


def _admin_project(world: World, user: SimUser, args: dict[str, str]) -> SimProject:
    project = world.find_project(unquote(args["id"]), user)
    if not world.is_maintainer(user, project):
        raise ApiError(403, {"message": "403 Forbidden"})
    return project


def _mirrored(project: SimProject) -> SimPullMirror:
    if project.pull_mirror is None or not project.pull_mirror.enabled:
        raise ApiError(400, {"message": "The project is not mirrored"})
    return project.pull_mirror


def _get_pull_mirror(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _admin_project(world, user, args)
    return Response(200, world.pull_mirror_entity(_mirrored(project)))


_PULL_PARAMS = (
    "enabled",
    "url",
    "auth_user",
    "auth_password",
    "mirror_trigger_builds",
    "only_mirror_protected_branches",
    "mirror_overwrites_diverged_branches",
    "mirror_branch_regex",
)


def _configure_pull_mirror(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _admin_project(world, user, args)
    body = {k: v for k, v in request.body.items() if k in _PULL_PARAMS}
    if not body:
        raise ApiError(
            400,
            {
                "error": ", ".join(_PULL_PARAMS) + " are missing, at least one "
                "parameter must be provided"
            },
        )
    mirror = project.pull_mirror
    url = str(body["url"]).strip() if "url" in body else (mirror.url if mirror else "")
    if not url:
        raise ApiError(400, {"message": {"url": ["is missing"]}})
    reason = url_blocked_reason(url, allow_local=world.allow_local_requests)
    if reason:
        raise ApiError(400, {"message": {"import_url": [f"is blocked: {reason}"]}})
    if body.get("mirror_branch_regex") and (problem := regex_error(body["mirror_branch_regex"])):
        raise ApiError(400, {"message": {"mirror_branch_regex": [problem]}})
    url = _with_credentials(url, body.get("auth_user"), body.get("auth_password"))
    if mirror is None:
        mirror = world.set_pull_mirror(project, url, enabled=False)
    mirror.url = url
    for name in (
        "enabled",
        "mirror_trigger_builds",
        "only_mirror_protected_branches",
        "mirror_overwrites_diverged_branches",
    ):
        if name in body:
            setattr(mirror, name, coerce_bool(body[name]))
    if "mirror_branch_regex" in body:
        mirror.mirror_branch_regex = body["mirror_branch_regex"] or None
        if mirror.mirror_branch_regex:
            mirror.only_mirror_protected_branches = False
    mirror.last_error = None
    if mirror.enabled:
        world.force_pull(mirror, world.clock())
    else:
        mirror.url = _with_credentials(mirror.url, None, None, drop=True)
    return Response(200, world.pull_mirror_entity(mirror))


def _start_pull_mirror(
    world: World, request: Request, user: SimUser, token: SimToken, args: dict[str, str]
) -> Response:
    project = _admin_project(world, user, args)
    world.start_pull_mirror(project)
    return Response(200, "")


def _with_credentials(url: str, user: str | None, password: str | None, drop: bool = False) -> str:
    parts = urlsplit(url)
    hostport = parts.netloc.rpartition("@")[2]
    old_user, _, old_password = parts.netloc.rpartition("@")[0].partition(":")
    if drop:
        return parts._replace(netloc=hostport).geturl()
    user = quote(user, safe="") if user is not None else old_user
    password = quote(password, safe="") if password is not None else old_password
    userinfo = f"{user}:{password}" if password else user
    return parts._replace(netloc=f"{userinfo}@{hostport}" if userinfo else hostport).geturl()


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


_HANDLERS = {
    "version": _version,
    "current_user": _current_user,
    "current_token": _current_token,
    "get_project": _get_project,
    "get_group": _get_group,
    "list_group_projects": _list_group_projects,
    "list_push_mirrors": _list_push_mirrors,
    "create_push_mirror": _create_push_mirror,
    "get_push_mirror": _get_push_mirror,
    "update_push_mirror": _update_push_mirror,
    "delete_push_mirror": _delete_push_mirror,
    "sync_push_mirror": _sync_push_mirror,
    "public_key": _public_key,
    "get_pull_mirror": _get_pull_mirror,
    "configure_pull_mirror": _configure_pull_mirror,
    "start_pull_mirror": _start_pull_mirror,
}


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """JSON or form bodies, as Grape accepts both; `host_keys[]` form arrays too."""
    if not raw:
        return {}
    if "json" in content_type:
        try:
            value = json.loads(raw)
        except ValueError:
            raise ApiError(400, {"error": "The provided content-type is not supported"}) from None
        return value if isinstance(value, dict) else {}
    body: dict[str, Any] = {}
    for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        if key.endswith("[]"):
            body.setdefault(key[:-2], []).append(value)
        else:
            body[key] = value
    return body


__all__ = ["Request", "Response", "handle_request", "iso", "parse_body"]
