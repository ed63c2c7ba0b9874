"""Who the bot is in its one workspace: Slack's `auth.test`, asked once and shared.

Bolt's single-team authorization asks on the first request, so every request of a first
burst asks at the same moment and waits for its answer. This asks at start-up, and again
only while it has no answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.web.async_client import AsyncWebClient


class BotIdentity(AsyncAuthorize):
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._known: AuthorizeResult | None = None
        self._asking = asyncio.Lock()

    async def __call__(self, **request: Any) -> AuthorizeResult:
        """Bolt's `authorize` hook, for every request; a `SlackApiError` is Bolt's "cannot
        authorize", answered to the person."""
        return await self.ask()

    async def ask(self) -> AuthorizeResult:
        if self._known is None:
            async with self._asking:
                if self._known is None:
                    answer = await self._client.auth_test()
                    self._known = AuthorizeResult.from_auth_test_response(
                        auth_test_response=answer, bot_token=self._client.token
                    )
        return self._known
