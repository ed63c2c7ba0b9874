"""The `--demo` sandbox: the built-in GitLab simulator with sample projects, two linked
demo users and a fresh SQLite database, so every command works with no Slack or GitLab."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bot.config import Settings, load_settings
from bot.simulator import GitLabSimulator, Timing, World
from bot.store.crypto import generate_key

DEMO_TEAM = "TDEMO"
DEMO_CHANNEL = "CDEMO"
ADA, GRACE = "UADA", "UGRACE"  # two maintainers, so one can approve the other's request
ADA_TOKEN = "glpat-demo-ada-000000000001"
GRACE_TOKEN = "glpat-demo-grace-00000000002"
SERVICE_TOKEN = "glpat-demo-monitor-0000003"
DEMO_OAUTH_CLIENT_ID = "mirrorbot-demo"
APPROVE_AFTER_SECONDS = 2.0
FAILING_ERROR = (
    "fatal: Authentication failed for "
    "'https://github.example.org/acme/api-mirror.git/'\nremote: Invalid username or "
    "password."
)


@dataclass(frozen=True)
class Demo:
    simulator: GitLabSimulator
    settings: Settings
    users: dict[str, str]  # Slack user id -> GitLab token

    @property
    def world(self) -> World:
        return self.simulator.world

    def approve_soon(self, user_code: str, slack_user_id: str) -> None:
        """What the person would do at GitLab: approve the device login, a moment later,
        as the GitLab user the console's Slack user is linked to."""
        token = self.users.get(slack_user_id)
        if token is None:
            return
        user = self.world.users[self.world.tokens[token].user_id]
        timer = threading.Timer(APPROVE_AFTER_SECONDS, self.world.approve_device, (user_code, user))
        timer.daemon = True
        timer.start()


def demo_world() -> World:
    world = World(
        Timing(
            update_seconds=2.0,
            retry_seconds=2.0,
            sync_backoff_seconds=0,
            protected_sync_backoff_seconds=0,
            pull_interval_seconds=0,
        )
    )
    ada, grace, monitor = (world.add_user(name) for name in ("ada", "grace", "monitor"))
    world.add_oauth_app(DEMO_OAUTH_CLIENT_ID)  # `login` is GitLab's device login
    world.timing.device_interval_seconds = 1.0
    for user, token in ((ada, ADA_TOKEN), (grace, GRACE_TOKEN), (monitor, SERVICE_TOKEN)):
        world.add_token(user, token)
    maintainers = {ada: 40, grace: 40, monitor: 40}
    world.add_group("demo")  # for `watch demo/` and `inventory demo`
    website = world.add_project("demo/website", maintainers)
    world.add_push_mirror(
        website,
        "https://mirror-bot:hunter2@github.example.org/acme/website.git",
        enabled=True,
        keep_divergent_refs=True,
    )
    world.add_push_mirror(
        website,
        "ssh://git@backup.example.org/acme/website.git",
        enabled=True,
        auth_method="ssh_public_key",
        only_protected_branches=True,
    )
    world.add_push_mirror(website, "https://archive.example.org/acme/website.git", enabled=False)
    world.set_pull_mirror(
        website,
        "https://upstream.example.org/acme/website.git",
        enabled=True,
        mirror_trigger_builds=True,
    )
    api = world.add_project("demo/api", maintainers)
    failing = world.add_push_mirror(
        api, "https://deploy:expired-token@github.example.org/acme/api-mirror.git", enabled=True
    )
    world.fail_now(failing, FAILING_ERROR)
    # The token in that mirror has expired: GitHub refuses it, and only it, so rotating the
    # mirror with any new token fixes it.
    world.reject_credentials("github.example.org", "expired-token")
    world.add_push_mirror(api, "https://gitlab.example.net/mirrors/api.git", enabled=True)
    # Healthy mirrors last succeeded a few minutes ago.
    earlier = world.clock() - timedelta(minutes=7)
    for project in (website, api):
        for mirror in project.push_mirrors.values():
            if mirror is not failing and mirror.enabled:
                world.succeed_at(mirror, earlier)
    if website.pull_mirror is not None:
        world.succeed_at(website.pull_mirror, earlier)
    return world


@contextmanager
def running_demo() -> Iterator[Demo]:
    with (
        tempfile.TemporaryDirectory(prefix="mirrorbot-demo-") as folder,
        GitLabSimulator(demo_world()) as simulator,
    ):
        settings = load_settings(
            _env_file=None,
            gitlab_url=simulator.url,
            gitlab_service_token=SERVICE_TOKEN,
            database_url=f"sqlite:///{Path(folder) / 'demo.db'}",
            mirrorbot_secret_key=generate_key(),
            mirrorbot_admins=ADA,
            mirrorbot_poll_interval=5,
            mirrorbot_remind_after=3600,
            gitlab_oauth_client_id=DEMO_OAUTH_CLIENT_ID,
        )
        yield Demo(simulator, settings, {ADA: ADA_TOKEN, GRACE: GRACE_TOKEN})
