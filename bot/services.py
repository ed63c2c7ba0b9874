"""The dependencies of the domain, built once per process and passed in (never global)."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.domain.accounts import Accounts
from bot.domain.approvals import Approvals
from bot.domain.channels import Channel, ChannelDirectory, ChannelUnavailable
from bot.domain.delivery_health import DeliveryHealth
from bot.domain.device_login import DeviceLogins
from bot.domain.mirrors import Operation
from bot.domain.rotations import Rotations
from bot.domain.subscriptions import Subscriptions
from bot.gitlab.client import GitLabClient, RetryPolicy, create_http_client
from bot.gitlab.http import GitLabHTTP
from bot.gitlab.oauth import GitLabOAuth
from bot.store.crypto import TokenCipher
from bot.store.db import create_engine, session_factory
from bot.store.request_budget import SharedRequestBudget, token_key


@dataclass(frozen=True)
class FollowTiming:
    """How a sync reply follows its mirror: poll interval and how long at most.
    GitLab may delay a sync by 5 minutes, so the default outlasts that."""

    interval: float = 5.0
    timeout: float = 420.0


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    gitlab_http: GitLabHTTP
    accounts: Accounts
    approvals: Approvals
    subscriptions: Subscriptions
    follow: FollowTiming
    # Who this process is among the replicas: lease holder, outbox claimer, User-Agent.
    replica_id: str
    # The service token's budget, shared by every replica: the monitor and `--refresh`.
    budget: SharedRequestBudget | None
    rotations: Rotations
    # Where `watch` checks channels: Slack's directory in the server, the console's own.
    channels: ChannelDirectory = field(default_factory=lambda: NoChannelDirectory())
    delivery_health: DeliveryHealth = field(default_factory=DeliveryHealth)
    retry: RetryPolicy | None = None  # every client's, the service token's included
    # With GITLAB_OAUTH_CLIENT_ID: `/mirror login` is GitLab's device login.
    device_logins: DeviceLogins | None = None
    _budgets: dict[str, SharedRequestBudget] = field(default_factory=dict)

    @property
    def approval_required(self) -> frozenset[Operation]:
        return frozenset(Operation(op) for op in self.settings.mirrorbot_approval_required)

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.settings.mirrorbot_admins

    def service_gitlab(self) -> GitLabClient | None:
        token = self.settings.gitlab_service_token
        if token is None:
            return None
        return GitLabClient(
            self.gitlab_http, token.get_secret_value(), self.retry, budget=self.budget
        )

    def budget_of(self, token: str) -> SharedRequestBudget:
        """A token's request budget, shared by every replica (the service token's is
        `budget`): background reads with a person's token, like group discovery, use it."""
        service = self.settings.gitlab_service_token
        if self.budget is not None and service is not None and token == service.get_secret_value():
            return self.budget
        if token_key(token) not in self._budgets:
            self._budgets[token_key(token)] = SharedRequestBudget(
                self.engine, token, self.settings.mirrorbot_gitlab_requests_per_minute
            )
        return self._budgets[token_key(token)]

    async def close(self) -> None:
        await self.gitlab_http.aclose()
        await self.engine.dispose()


class NoChannelDirectory:
    """Until a surface provides one: refuse, rather than subscribe a channel unchecked."""

    async def find(self, name: str) -> Channel | None:
        raise ChannelUnavailable("channels cannot be checked here")

    async def get(self, channel_id: str) -> Channel | None:
        raise ChannelUnavailable("channels cannot be checked here")

    async def is_member(self, channel_id: str, user_id: str) -> bool:
        raise ChannelUnavailable("channels cannot be checked here")


def build_services(
    settings: Settings, *, retry: RetryPolicy | None = None, follow: FollowTiming | None = None
) -> Services:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    replica_id = new_replica_id()
    gitlab_http = create_http_client(settings.gitlab_url, replica=replica_id)
    cipher = TokenCipher(settings.secret_keys)
    token = settings.gitlab_service_token
    oauth = (
        GitLabOAuth(
            gitlab_http,
            settings.gitlab_oauth_client_id,
            settings.gitlab_oauth_client_secret.get_secret_value()
            if settings.gitlab_oauth_client_secret
            else None,
        )
        if settings.gitlab_oauth_client_id
        else None
    )
    accounts = Accounts(sessions, cipher, gitlab_http, retry, oauth)
    timing = follow or FollowTiming()
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        gitlab_http=gitlab_http,
        accounts=accounts,
        device_logins=DeviceLogins(sessions, cipher, oauth, accounts, gitlab_http)
        if oauth
        else None,
        approvals=Approvals(sessions, cipher),
        subscriptions=Subscriptions(sessions),
        follow=timing,
        replica_id=replica_id,
        # A rotation's holder follows a sync for at most `timing.timeout`.
        rotations=Rotations(
            sessions, cipher, replica_id, lease=timedelta(seconds=timing.timeout + 60)
        ),
        budget=SharedRequestBudget(
            engine, token.get_secret_value(), settings.mirrorbot_gitlab_requests_per_minute
        )
        if token is not None
        else None,
        retry=retry,
    )


def new_replica_id() -> str:
    """Unique among the replicas of one database, and says which host and process it is."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(3)}"
