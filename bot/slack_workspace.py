"""Which Slack workspace the bot token belongs to (`auth.test`), for the CLI and `check`."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings


class SlackCheckError(Exception):
    """Slack cannot be reached or refuses the bot token; the message says which."""


def slack_api_base(settings: Settings) -> str:
    return settings.slack_api_url.rstrip("/") + "/"


async def resolve_team_id(settings: Settings) -> str:
    """The team id of the bot token's workspace, via `auth.test`."""
    if settings.slack_bot_token is None:
        raise SlackCheckError(
            "SLACK_BOT_TOKEN is not set: pass --team TEAM_ID, or set the bot token so the "
            "workspace can be looked up"
        )
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=slack_api_base(settings),
        timeout=10,
    )
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        raise SlackCheckError(
            f"SLACK_BOT_TOKEN: Slack refused the bot token ({exc.response.get('error')})"
        ) from None
    except (SlackClientError, OSError) as exc:
        raise SlackCheckError(
            f"SLACK_API_URL: cannot reach Slack at {settings.slack_api_url} ({type(exc).__name__})"
        ) from None
    return str(response["team_id"])
