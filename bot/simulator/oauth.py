"""GitLab's OAuth 2 endpoints used by the bot, as Doorkeeper answers them: the device
authorization grant (RFC 8628), refresh-token rotation and revocation (RFC 7009).

Errors are HTTP 400 (401 for a bad client) with a JSON `error`, as RFC 6749 section 5.2
says. A refresh spends its refresh token and the access token it came with at once.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from bot.simulator.api import Request, Response
from bot.simulator.world import SimDeviceGrant, SimRefreshToken, SimToken, World

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def handle_oauth(world: World, request: Request) -> Response:
    if request.method != "POST":
        return Response(404, {"error": "404 Not Found"})
    with world.lock:
        if request.path == "/oauth/authorize_device":
            return _authorize_device(world, request.body)
        if request.path == "/oauth/token":
            return _token(world, request.body)
        if request.path == "/oauth/revoke":
            return _revoke(world, request.body)
    return Response(404, {"error": "404 Not Found"})


def _error(error: str, description: str, status: int = 400) -> Response:
    return Response(status, {"error": error, "error_description": description})


def _client_problem(world: World, body: dict[str, Any]) -> Response | None:
    app = world.oauth.apps.get(str(body.get("client_id") or ""))
    if app is None or (app.secret is not None and body.get("client_secret") != app.secret):
        return _error(
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication "
            "included, or unsupported authentication method.",
            401,
        )
    return None


def _number(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else seconds


def _authorize_device(world: World, body: dict[str, Any]) -> Response:
    if problem := _client_problem(world, body):
        return problem
    scopes = str(body.get("scope") or "api").split()
    app = world.oauth.apps[str(body["client_id"])]
    if not set(scopes) <= set(app.scopes):
        return _error("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
    timing = world.timing
    grant = SimDeviceGrant(
        device_code=secrets.token_urlsafe(32),
        user_code=secrets.token_hex(4).upper(),
        client_id=app.client_id,
        scopes=scopes,
        expires_at=world.clock() + timedelta(seconds=timing.device_code_seconds),
        interval=timing.device_interval_seconds,
    )
    world.oauth.device_grants[grant.device_code] = grant
    verification_uri = f"{world.web_url}/oauth/device"
    return Response(
        200,
        {
            "device_code": grant.device_code,
            "user_code": grant.user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": f"{verification_uri}?user_code={grant.user_code}",
            "expires_in": _number(timing.device_code_seconds),
            "interval": _number(timing.device_interval_seconds),
        },
    )


def _token(world: World, body: dict[str, Any]) -> Response:
    if problem := _client_problem(world, body):
        return problem
    grant_type = body.get("grant_type")
    if grant_type == DEVICE_CODE_GRANT:
        return _device_token(world, body)
    if grant_type == "refresh_token":
        return _refresh(world, body)
    return _error(
        "unsupported_grant_type",
        "The authorization grant type is not supported by the authorization server.",
    )


def _device_token(world: World, body: dict[str, Any]) -> Response:
    grant = world.oauth.device_grants.get(str(body.get("device_code") or ""))
    if grant is None or grant.client_id != body.get("client_id"):
        return _invalid_grant()
    now = world.clock()
    if now >= grant.expires_at:
        return _error(
            "expired_token",
            "The device_code has expired, and the device authorization session has concluded.",
        )
    if grant.state == "denied":
        del world.oauth.device_grants[grant.device_code]
        return _error(
            "access_denied", "The resource owner or authorization server denied the request."
        )
    too_soon = grant.last_polled_at is not None and (
        (now - grant.last_polled_at).total_seconds() < grant.interval
    )
    grant.last_polled_at = now
    if too_soon:
        return _error(
            "slow_down", "A variant of authorization_pending, the client should slow down."
        )
    if grant.state == "pending" or grant.user_id is None:
        return _error("authorization_pending", "The authorization request is still pending.")
    del world.oauth.device_grants[grant.device_code]  # a device code is used once
    return _issue(world, grant.user_id, grant.client_id, grant.scopes)


def _refresh(world: World, body: dict[str, Any]) -> Response:
    value = str(body.get("refresh_token") or "")
    presented = world.oauth.refresh_presented
    presented[value] = presented.get(value, 0) + 1
    refresh = world.oauth.refresh_tokens.get(value)
    if refresh is None or refresh.used or refresh.client_id != body.get("client_id"):
        return _invalid_grant()
    refresh.used = True
    old_access = world.oauth.access_tokens.get(refresh.access_token)
    if old_access is not None:
        old_access.revoked = True
    return _issue(world, refresh.user_id, refresh.client_id, refresh.scopes)


def _revoke(world: World, body: dict[str, Any]) -> Response:
    if problem := _client_problem(world, body):
        return problem
    value = str(body.get("token") or "")
    world.oauth.revoked.append(value)
    access = world.oauth.access_tokens.get(value)
    refresh = world.oauth.refresh_tokens.get(value)
    if refresh is not None:
        refresh.used = True
        access = world.oauth.access_tokens.get(refresh.access_token)
    if access is not None:
        access.revoked = True
        for other in world.oauth.refresh_tokens.values():
            if other.access_token == access.value:
                other.used = True
    return Response(200, {})  # RFC 7009: 200 whether or not the token was known


def _invalid_grant() -> Response:
    return _error(
        "invalid_grant",
        "The provided authorization grant is invalid, expired, revoked, does not match the "
        "redirection URI used in the authorization request, or was issued to another client.",
    )


def _issue(world: World, user_id: int, client_id: str, scopes: list[str]) -> Response:
    now = world.clock()
    seconds = world.timing.oauth_access_seconds
    access = SimToken(
        secrets.token_hex(32),
        user_id,
        0,
        name=f"oauth:{client_id}",
        scopes=list(scopes),
        valid_until=now + timedelta(seconds=seconds),
        oauth=True,
    )
    refresh = SimRefreshToken(secrets.token_hex(32), user_id, client_id, list(scopes), access.value)
    world.oauth.access_tokens[access.value] = access
    world.oauth.refresh_tokens[refresh.value] = refresh
    return Response(
        200,
        {
            "access_token": access.value,
            "token_type": "Bearer",
            "expires_in": _number(seconds),
            "refresh_token": refresh.value,
            "scope": " ".join(scopes),
            "created_at": int(now.timestamp()),
        },
    )
