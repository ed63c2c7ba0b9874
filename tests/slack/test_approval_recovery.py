"""Approvals are never stuck: a run a crash interrupted is resolved when the bot starts.

A crash between the approving UPDATE and the end of the run leaves the request `approved`
with a running lease (`running_until`). The tests make that state with the domain's own
`approve` and then let the lease run out, as the time a crashed replica stays down would.
"""

import asyncio
import json
from datetime import timedelta

from sqlalchemy import update

from bot.domain.approvals import Approvals
from bot.store.crypto import TokenCipher, generate_key
from bot.store.db import create_engine, session_factory, transaction
from bot.store.models import ApprovalRequest, utcnow
from tests.conftest import ALICE_TOKEN, BOB_TOKEN
from tests.slack.conftest import Harness, start_harness
from tests.slack.test_approval_cards import request_id_on


def card_of(h: Harness, request_id: str) -> dict:
    return next(
        c.body
        for c in h.posts()
        if request_id in json.dumps(c.body) and c.body.get("channel") == "COPS"
    )


def age_lease(h: Harness, request_id: str) -> None:
    """The lease has run out: as long as a crashed replica stays down."""

    async def age() -> None:
        engine = create_engine(h.settings.database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                await session.execute(
                    update(ApprovalRequest)
                    .where(ApprovalRequest.id == request_id)
                    .values(running_until=utcnow() - timedelta(seconds=1))
                )
        finally:
            await engine.dispose()

    asyncio.run(age())


def crash_mid_run(h: Harness, request_id: str, approver_gitlab_id: int, *, lease_over: bool):
    """Approve as the bot does, then stop as a crash would: no run, no finish. With
    `lease_over`, the lease has run out (the replica is gone); else it is still running."""

    async def crash() -> None:
        engine = create_engine(h.settings.database_url)
        approvals = Approvals(session_factory(engine), TokenCipher(h.settings.secret_keys))
        try:
            await approvals.approve(request_id, "UBOB", approver_gitlab_id)
        finally:
            await engine.dispose()

    asyncio.run(crash())
    if lease_over:
        age_lease(h, request_id)


def status_of(h: Harness, request_id: str) -> str:
    async def read() -> str:
        engine = create_engine(h.settings.database_url)
        try:
            approvals = Approvals(session_factory(engine), TokenCipher(h.settings.secret_keys))
            approval = await approvals.get(request_id)
            assert approval is not None
            return approval.status.value
        finally:
            await engine.dispose()

    return asyncio.run(read())


def request(h: Harness, operation: str, mirror_id: int) -> str:
    h.command(f"{operation} group/app {mirror_id}", channel="COPS")
    return request_id_on(h.wait_post(f"asks to *{operation} push mirror* {mirror_id}"))


def test_an_interrupted_run_is_resolved_at_start_the_card_updated_and_the_requester_told(
    sample, gitlab_sim, slack, database_url
):
    key = generate_key()
    first = start_harness(sample, gitlab_sim, slack, database_url, key)
    first.link("UALICE", ALICE_TOKEN)
    first.link("UBOB", BOB_TOKEN)
    bob_id = sample.bob.id
    ssh, https = sample.ssh_mirror, sample.https_mirror
    done = sample.world.add_push_mirror(sample.app, "https://c.example.org/c.git", enabled=True)
    undone = sample.world.add_push_mirror(sample.app, "https://d.example.org/d.git", enabled=True)
    # Four requests, all approved; the one still running comes first, so a resolver that
    # ignored leases would take it before the others.
    running = request(first, "delete", ssh.id)
    deleted = request(first, "delete", https.id)
    disabled = request(first, "disable", done.id)
    not_disabled = request(first, "disable", undone.id)
    first.server.stop()  # the replica that ran them is gone

    crash_mid_run(first, running, bob_id, lease_over=False)  # another live replica runs it
    for request_id in (deleted, disabled, not_disabled):
        crash_mid_run(first, request_id, bob_id, lease_over=True)
    # GitLab had done two of them before the crash; the last one never reached it.
    del sample.app.push_mirrors[https.id]
    done.enabled = False
    slack.clear()

    second = start_harness(sample, gitlab_sim, slack, database_url, key)
    try:
        for shows in (
            f":white_check_mark: *executed* — approved by <@UBOB>, ran with "
            f"<@UALICE>'s GitLab token: GitLab shows push mirror {https.id} deleted",
            f":white_check_mark: *executed* — approved by <@UBOB>, ran with "
            f"<@UALICE>'s GitLab token: GitLab shows push mirror {done.id} disabled",
            f":x: *failed* — approved by <@UBOB>, ran with <@UALICE>'s GitLab "
            f"token: GitLab shows push mirror {undone.id} still enabled; nothing was changed",
        ):
            assert second.wait_post(shows, method="chat.update")["channel"] == "COPS"
        second.wait(lambda: len(told(second)) == 3)
        assert all("was interrupted while it ran" in t for t in told(second))
        assert sum("went through" in t for t in told(second)) == 2
        assert [status_of(second, r) for r in (deleted, disabled, not_disabled)] == [
            "executed",
            "executed",
            "failed",
        ]
        # The run that another replica still holds is left alone.
        assert status_of(second, running) == "approved"
        running_card = f"*delete push mirror* {ssh.id} "
        assert not [c for c in second.posts("chat.update") if running_card in json.dumps(c.body)]
        assert ssh.id in sample.app.push_mirrors
        # Nothing was run again.
        assert second.gitlab.requests.matching("DELETE") == []
        assert second.gitlab.requests.matching("PUT") == []
        assert undone.enabled is True
        # Once that lease runs out too, the running server's periodic sweep resolves it.
        age_lease(second, running)
        second.wait_post(f"GitLab still shows push mirror {ssh.id}", method="chat.update")
        assert status_of(second, running) == "failed"
    finally:
        second.server.stop()


def told(h: Harness) -> list[str]:
    """Direct messages to the requester (channel = their user id)."""
    return [json.dumps(c.body) for c in h.posts() if c.body.get("channel") == "UALICE"]
