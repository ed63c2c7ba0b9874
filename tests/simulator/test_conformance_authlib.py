"""The simulator's OAuth endpoints against authlib's OAuth 2 client, which nobody here
wrote: the device-code token request, a refresh, and the errors RFC 8628 names."""

from __future__ import annotations

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from bot.simulator import GitLabSimulator
from tests.conftest import SampleGitLab

CLIENT_ID = "mirrorbot-app"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start_device_login(gitlab_sim: GitLabSimulator) -> dict[str, object]:
    answer = httpx.post(
        f"{gitlab_sim.url}/oauth/authorize_device", data={"client_id": CLIENT_ID, "scope": "api"}
    )
    assert answer.status_code == 200
    return dict(answer.json())


async def test_authlib_fetches_a_device_token_and_refreshes_it(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator
) -> None:
    sample.world.add_oauth_app(CLIENT_ID)
    device = start_device_login(gitlab_sim)
    assert device["verification_uri"] == f"{gitlab_sim.url}/oauth/device"
    assert device["verification_uri_complete"] == (
        f"{gitlab_sim.url}/oauth/device?user_code={device['user_code']}"
    )
    assert (device["expires_in"], device["interval"]) == (300, 5)
    token_url = f"{gitlab_sim.url}/oauth/token"
    async with AsyncOAuth2Client(
        client_id=CLIENT_ID, token_endpoint_auth_method="none", scope="api"
    ) as client:
        with pytest.raises(OAuthError) as pending:
            await client.fetch_token(
                token_url, grant_type=DEVICE_GRANT, device_code=device["device_code"]
            )
        assert pending.value.error == "authorization_pending"

        sample.world.approve_device(str(device["user_code"]), sample.alice)
        sample.world.oauth.device_grants[str(device["device_code"])].last_polled_at = None
        token = await client.fetch_token(
            token_url, grant_type=DEVICE_GRANT, device_code=device["device_code"]
        )
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 7200
        assert token["scope"] == "api"
        first_refresh = token["refresh_token"]

        user = await client.get(f"{gitlab_sim.url}/api/v4/user")
        assert user.json()["username"] == "alice"

        refreshed = await client.refresh_token(token_url, refresh_token=first_refresh)
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["refresh_token"] != first_refresh
        # Both old tokens stop working at once.
        with pytest.raises(OAuthError) as reused:
            await client.refresh_token(token_url, refresh_token=first_refresh)
        assert reused.value.error == "invalid_grant"
    async with httpx.AsyncClient() as plain:
        old = await plain.get(
            f"{gitlab_sim.url}/api/v4/user",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        assert old.status_code == 401 and old.json()["error"] == "invalid_token"
        new = await plain.get(
            f"{gitlab_sim.url}/api/v4/user",
            headers={"Authorization": f"Bearer {refreshed['access_token']}"},
        )
        assert new.json()["username"] == "alice"


@pytest.mark.parametrize("outcome", ["slow_down", "access_denied", "expired_token"])
async def test_authlib_sees_the_device_grant_errors_rfc_8628_names(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator, outcome: str
) -> None:
    sample.world.add_oauth_app(CLIENT_ID)
    if outcome == "expired_token":
        sample.world.timing.device_code_seconds = 0
    device = start_device_login(gitlab_sim)
    async with AsyncOAuth2Client(client_id=CLIENT_ID, token_endpoint_auth_method="none") as client:

        async def poll() -> str:
            with pytest.raises(OAuthError) as failed:
                await client.fetch_token(
                    f"{gitlab_sim.url}/oauth/token",
                    grant_type=DEVICE_GRANT,
                    device_code=device["device_code"],
                )
            return str(failed.value.error)

        if outcome == "slow_down":
            assert await poll() == "authorization_pending"
            assert await poll() == "slow_down"  # again within the 5 s interval
        elif outcome == "access_denied":
            sample.world.deny_device(str(device["user_code"]))
            assert await poll() == "access_denied"
        else:
            assert await poll() == "expired_token"


def test_a_confidential_application_needs_its_secret(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator
) -> None:
    sample.world.add_oauth_app(CLIENT_ID, secret="app-secret")
    wrong = httpx.post(
        f"{gitlab_sim.url}/oauth/authorize_device", data={"client_id": CLIENT_ID, "scope": "api"}
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    right = httpx.post(
        f"{gitlab_sim.url}/oauth/authorize_device",
        data={"scope": "api"},
        auth=(CLIENT_ID, "app-secret"),  # client_secret_basic, as authlib sends by default
    )
    assert right.status_code == 200


async def test_revoked_access_token_is_refused(
    sample: SampleGitLab, gitlab_sim: GitLabSimulator
) -> None:
    sample.world.add_oauth_app(CLIENT_ID)
    device = start_device_login(gitlab_sim)
    sample.world.approve_device(str(device["user_code"]), sample.alice)
    async with httpx.AsyncClient() as plain:
        token = (
            await plain.post(
                f"{gitlab_sim.url}/oauth/token",
                data={
                    "client_id": CLIENT_ID,
                    "grant_type": DEVICE_GRANT,
                    "device_code": device["device_code"],
                },
            )
        ).json()
    async with AsyncOAuth2Client(client_id=CLIENT_ID, token_endpoint_auth_method="none") as client:
        await client.revoke_token(f"{gitlab_sim.url}/oauth/revoke", token["access_token"])
    async with httpx.AsyncClient() as plain:
        answer = await plain.get(
            f"{gitlab_sim.url}/api/v4/user",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
