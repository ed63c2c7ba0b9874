"""GitLab's OAuth 2 endpoints (`doc/api/oauth2.md`): the device authorization grant,
refresh-token rotation and revocation, for one OAuth application.

Errors arrive as HTTP 400/401 with a JSON `error` (RFC 6749 5.2, RFC 8628 3.5) and
become the typed errors below; none of them quotes a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.gitlab import errors
from bot.gitlab.http import Answer, Dropped, GitLabHTTP, Refused, TimedOut

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "api"


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: float
    interval: float


@dataclass(frozen=True)
class OAuthTokens:
    access_token: str
    refresh_token: str | None  # GitLab's documented example has none: handle both
    expires_at: datetime
    scopes: tuple[str, ...]

    def __repr__(self) -> str:  # never the tokens, wherever this is printed
        return f"OAuthTokens(expires_at={self.expires_at.isoformat()}, scopes={self.scopes})"


class OAuthError(errors.GitLabError):
    """GitLab's OAuth endpoints refused; `error` is the RFC's code."""

    def __init__(self, error: str, user_message: str | None = None, status: int = 400) -> None:
        self.error = error
        super().__init__(user_message or f"GitLab refused the login ({error})", status=status)


class AuthorizationPending(OAuthError):
    pass


class SlowDown(OAuthError):
    pass


class AccessDenied(OAuthError):
    pass


class ExpiredToken(OAuthError):
    pass


class InvalidGrant(OAuthError):
    """The device code or refresh token is not (or no longer) valid."""


class InvalidClient(OAuthError):
    pass


_ERRORS: dict[str, type[OAuthError]] = {
    "authorization_pending": AuthorizationPending,
    "slow_down": SlowDown,
    "access_denied": AccessDenied,
    "expired_token": ExpiredToken,
    "invalid_grant": InvalidGrant,
    "invalid_client": InvalidClient,
}


class GitLabOAuth:
    """One OAuth application on `GITLAB_URL`: public (no secret) or confidential."""

    def __init__(self, http: GitLabHTTP, client_id: str, client_secret: str | None = None) -> None:
        self._http = http
        self._client = {"client_id": client_id}
        if client_secret:
            self._client["client_secret"] = client_secret

    async def authorize_device(self) -> DeviceAuthorization:
        body = await self._post("/oauth/authorize_device", {"scope": SCOPE})
        return DeviceAuthorization(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body["verification_uri"]),
            verification_uri_complete=str(
                body.get("verification_uri_complete")
                or f"{body['verification_uri']}?user_code={body['user_code']}"
            ),
            expires_in=_seconds(body.get("expires_in"), 300.0),
            interval=_seconds(body.get("interval"), 5.0),
        )

    async def poll_device(self, device_code: str) -> OAuthTokens:
        """The tokens once the person approved; else `AuthorizationPending`, `SlowDown`,
        `AccessDenied`, `ExpiredToken` or `InvalidGrant`."""
        return _tokens(
            await self._post(
                "/oauth/token", {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code}
            )
        )

    async def refresh(self, refresh_token: str) -> OAuthTokens:
        """A new pair; the old refresh token and access token stop working at once."""
        return _tokens(
            await self._post(
                "/oauth/token", {"grant_type": "refresh_token", "refresh_token": refresh_token}
            )
        )

    async def revoke(self, token: str) -> None:
        await self._post("/oauth/revoke", {"token": token})

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, object]:
        try:
            answer = await self._http.request(
                "POST",
                path,
                headers={"Accept": "application/json"},
                form={**self._client, **form},
                outside_api=True,
            )
        except (Refused, TimedOut, Dropped) as exc:
            raise errors.GitLabUnreachable(type(exc).__name__.lower()) from exc
        return _body(answer)


def _body(answer: Answer) -> dict[str, object]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code == 404:
        raise OAuthError(
            "not_found",
            "this GitLab offers no device login (it needs GitLab 17.2 or later with the device "
            "authorization grant on) — use a personal access token instead",
            status=404,
        )
    if not isinstance(body, dict):
        if answer.status_code >= 500:
            raise errors.ServerError(answer.status_code)
        raise errors.UnexpectedAnswer(
            f"GitLab's OAuth endpoint sent an unexpected answer ({answer.status_code})",
            status=answer.status_code,
        )
    if answer.is_success:
        return body
    code = str(body.get("error") or "")
    if answer.status_code >= 500:
        raise errors.ServerError(answer.status_code)
    if code == "invalid_client":
        raise InvalidClient(
            code,
            "GitLab does not accept the bot's OAuth application (check GITLAB_OAUTH_CLIENT_ID "
            "and GITLAB_OAUTH_CLIENT_SECRET) — use a personal access token instead",
            status=answer.status_code,
        )
    raise _ERRORS.get(code, OAuthError)(code or str(answer.status_code), status=answer.status_code)


def _seconds(value: object, default: float) -> float:
    try:
        return float(value) if isinstance(value, int | float | str) else default
    except ValueError:
        return default


def _tokens(body: dict[str, object]) -> OAuthTokens:
    seconds = _seconds(body.get("expires_in"), 7200.0)
    refresh = body.get("refresh_token")
    return OAuthTokens(
        access_token=str(body["access_token"]),
        refresh_token=str(refresh) if refresh else None,
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
        scopes=tuple(str(body.get("scope") or SCOPE).split()),
    )
