"""Block Kit rendering is pure and stays within Slack's limits, whatever the data."""

from datetime import UTC, datetime, timedelta

from bot.commands.results import StatusReport
from bot.domain.mirrors import ProjectMirrors
from bot.domain.subscriptions import MirrorObservation
from bot.gitlab.models import PushMirror
from bot.gitlab.refs import ProjectRef
from bot.slack.blocks.mirrors import mirror_details, mirror_list
from bot.slack.blocks.replies import status_report
from bot.slack.blocks.text import SlackMessage, slack_date

PATH = "group/" + "x" * 200
PROJECT = ProjectRef.of(7, PATH)


def mirror(n: int, **fields) -> PushMirror:
    return PushMirror.model_validate(
        {
            "id": n,
            "url": f"https://u:p@host{n}.example.org/" + "p" * 300,
            "enabled": True,
            "update_status": "failed" if n % 3 == 0 else "finished",
            "last_error": "fatal: " + "long error " * 500,
            **fields,
        }
    )


def assert_within_limits(message: SlackMessage) -> None:
    assert message.text
    assert len(message.blocks) <= 50
    for block in message.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
        assert len(block.get("block_id", "")) <= 255
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= 75
                assert len(element["value"]) <= 2000
                assert len(element["action_id"]) <= 255
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25


def test_a_project_with_80_mirrors_still_renders():
    listing = ProjectMirrors(PROJECT, [mirror(n) for n in range(1, 81)], None, "no pull mirror")
    for offset in (0, 20, 40, 60):
        assert_within_limits(mirror_list(listing, offset))


def test_failing_mirrors_come_first():
    listing = ProjectMirrors(PROJECT, [mirror(n) for n in range(1, 7)], None, None)
    ids = [
        b["block_id"]
        for b in mirror_list(listing).blocks
        if b["type"] == "actions" and b["block_id"].startswith("mirror-")
    ]
    assert ids[:2] == ["mirror-3", "mirror-6"]


def test_long_errors_are_shortened_and_credentials_never_shown():
    message = mirror_list(ProjectMirrors(PROJECT, [mirror(3)], None, None))
    text = str(message.blocks)
    assert "u:p@" not in text
    assert "…" in text


def test_details_within_limits():
    assert_within_limits(
        mirror_details(
            PROJECT, mirror(3, host_keys=[{"fingerprint_sha256": "SHA256:" + "a" * 43}] * 10)
        )
    )


def test_status_of_500_projects_stays_within_one_message():
    now = datetime.now(UTC)
    observations = [
        MirrorObservation(
            n,
            f"group/project-{n}",
            f"push:{n}",
            "https://h/x",
            True,
            "failed" if n % 10 == 0 else "finished",
            "fatal: Authentication failed",
            now,
            now,
        )
        for n in range(1, 1001)
    ]
    message = status_report(StatusReport(observations, 500, now - timedelta(seconds=30), False))
    assert_within_limits(message)
    assert "100 failing" in message.blocks[0]["text"]["text"]
    assert "more mirrors not shown" in str(message.blocks[-1])


def test_dates_are_shown_in_each_readers_time_zone():
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert slack_date(moment) == (
        f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|2026-03-01 12:30 UTC>"
    )


def test_an_approval_card_with_long_values_stays_within_limits():
    from bot.commands.results import PendingApprovals
    from bot.domain.approvals import Approval, Status
    from bot.domain.changes import describe_change
    from bot.domain.mirrors import Operation, OperationRequest
    from bot.slack.blocks.replies import approval_card, pending_approvals

    edit = OperationRequest(Operation.EDIT, 7, PATH, 3, {"mirror_branch_regex": "r" * 5000})
    now = datetime.now(UTC)
    approval = Approval(
        "id",
        "T",
        "C",
        None,
        "U",
        Operation.EDIT,
        7,
        PATH,
        3,
        "https://h.example.org/" + "p" * 3000,
        Status.PENDING,
        None,
        None,
        now,
        now + timedelta(hours=1),
        describe_change(edit, mirror(3)),
        (Operation.EDIT,),
    )
    assert_within_limits(approval_card(approval))
    assert_within_limits(pending_approvals(PendingApprovals([approval] * 60)))


def test_buttons_offer_only_what_can_be_done():
    project = ProjectRef.of(1, "g/p")
    disabled = PushMirror(id=3, url="https://h.example/x.git", enabled=False, update_status="none")
    listed = str(mirror_list(ProjectMirrors(project, [disabled], None, None)).blocks)
    assert "Sync now" not in listed and "Enable" in listed  # GitLab refuses to sync it
    details = str(mirror_details(project, disabled).blocks)
    assert "Details" not in details.replace("'Details of", "")  # no Details inside Details


def test_api_values_are_words():
    mirror = PushMirror(id=4, url="https://h.example/x.git", enabled=True, update_status="none")
    listed = str(mirror_list(ProjectMirrors(ProjectRef.of(1, "g/p"), [mirror], None, None)).blocks)
    assert "never synced" in listed and "· none" not in listed
