"""The simulator's worker and validation behave as GitLab's code does."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.simulator.validation import safe_url, url_blocked_reason
from bot.simulator.world import ApiError, Timing, World


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(clock: Clock) -> World:
    return World(
        Timing(
            update_seconds=10,
            retry_seconds=30,
            sync_backoff_seconds=300,
            protected_sync_backoff_seconds=60,
        ),
        clock=clock,
    )


def test_a_sync_goes_started_then_finished(world: World, clock: Clock):
    mirror = world.add_push_mirror(world.add_project("g/p"), "https://h.example/x", enabled=True)
    world.sync_push_mirror(mirror)
    assert mirror.update_status == "started"
    clock.tick(10)
    world.advance()
    assert mirror.update_status == "finished"
    assert mirror.last_successful_update_at == clock.now


def test_transient_errors_retry_up_to_three_tries_then_fail(world: World, clock: Clock):
    mirror = world.add_push_mirror(world.add_project("g/p"), "https://h.example/x", enabled=True)
    world.set_outcome(mirror, "connection reset", transient=True)
    world.sync_push_mirror(mirror)
    seen = []
    for _ in range(30):
        clock.tick(5)
        world.advance()
        seen.append(mirror.update_status)
    assert "to_retry" in seen
    assert seen[-1] == "failed"
    assert seen.index("failed") > seen.index("to_retry")
    assert mirror.last_error == "connection reset"


def test_a_hard_error_fails_at_once(world: World, clock: Clock):
    mirror = world.add_push_mirror(world.add_project("g/p"), "https://h.example/x", enabled=True)
    world.set_outcome(mirror, "Some refs have diverged and have not been updated on the remote")
    world.sync_push_mirror(mirror)
    clock.tick(10)
    world.advance()
    assert mirror.update_status == "failed"


def test_a_second_sync_soon_after_is_delayed_by_the_backoff(world: World, clock: Clock):
    mirror = world.add_push_mirror(world.add_project("g/p"), "https://h.example/x", enabled=True)
    world.sync_push_mirror(mirror)
    clock.tick(20)
    world.advance()
    world.sync_push_mirror(mirror)
    assert mirror.update_status == "finished"  # not started again yet
    clock.tick(300)
    world.advance()
    assert mirror.update_status in ("started", "finished")
    assert mirror.last_update_started_at > datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def test_sync_while_running_does_nothing(world: World, clock: Clock):
    mirror = world.add_push_mirror(world.add_project("g/p"), "https://h.example/x", enabled=True)
    world.sync_push_mirror(mirror)
    started = mirror.last_update_started_at
    clock.tick(1)
    world.sync_push_mirror(mirror)
    assert mirror.last_update_started_at == started


def test_sync_of_a_disabled_mirror_is_a_400(world: World):
    mirror = world.add_push_mirror(world.add_project("g/p"), "https://h.example/x")
    with pytest.raises(ApiError) as error:
        world.sync_push_mirror(mirror)
    assert error.value.status == 400
    assert error.value.body["message"].startswith("Cannot proceed with the push mirroring")


def test_a_push_updates_every_enabled_mirror(world: World):
    project = world.add_project("g/p")
    enabled = world.add_push_mirror(project, "https://a.example/x", enabled=True)
    disabled = world.add_push_mirror(project, "https://b.example/x", enabled=False)
    world.push(project)
    assert enabled.update_status == "started" and disabled.update_status == "none"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://h.example/x", "Only allowed schemes are http, https, ssh, git"),
        ("http://localhost/x", "Requests to localhost are not allowed"),
        ("http://127.0.0.2/t.git", "Requests to loopback addresses are not allowed"),
        ("https://192.168.1.1", "Requests to the local network are not allowed"),
        ("http://169.254.1.1/x", "Requests to the link local network are not allowed"),
        ("http://100.64.0.1/x", "Requests to the shared address space are not allowed"),
        ("http://[::ffff:10.0.0.1]/x", "Requests to the local network are not allowed"),
        ("http://$user:pw@h.example/x", "Username needs to start with an alphanumeric character"),
        ("https://h.example/x\nfoo", "URI is invalid"),
        ("https://unresolvable.invalid/x", None),
        ("git://h.example/x", None),
    ],
)
def test_url_blocker(url: str, reason: str | None):
    assert url_blocked_reason(url) == reason


def test_safe_url_keeps_git_user_and_masks_the_rest():
    assert safe_url("https://u:p@h/x.git") == "https://*****:*****@h/x.git"
    assert safe_url("https://token@h/x") == "https://*****@h/x"
    assert safe_url("ssh://git@h/x") == "ssh://git@h/x"


def test_real_clock_worker_settles():
    world = World(Timing(update_seconds=0.05, sync_backoff_seconds=0))
    mirror = world.add_push_mirror(world.add_project("g/p"), "https://h.example/x", enabled=True)
    world.sync_push_mirror(mirror)
    time.sleep(0.1)
    world.advance()
    assert mirror.update_status == "finished"
