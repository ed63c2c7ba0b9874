"""What a change sets, as data the card and the console show; which approvals it needs."""

import json

from bot.domain.changes import approvals_needed, describe_change
from bot.domain.mirrors import Operation, OperationRequest
from bot.gitlab.models import PushMirror

MIRROR = PushMirror(id=4, url="https://*****:*****@h.example.org/x.git", enabled=True)


def request(operation: Operation, **attributes) -> OperationRequest:
    return OperationRequest(operation, 7, "group/app", 4, attributes)


def test_no_secret_of_a_pull_config_reaches_the_description():
    changes = describe_change(
        request(
            Operation.PULL_CONFIG,
            url="https://u:glpat-abcdefgh1234@up.example.org/a.git?private_token=s3cr3t",
            auth_user="puller",
            auth_password="hunter2",
            an_attribute_no_form_sets="s3cr3t-too",
        ),
        None,
    )
    shown = json.dumps([c.as_json() for c in changes])
    for secret in ("glpat-abcdefgh1234", "s3cr3t", "puller", "hunter2"):
        assert secret not in shown
    assert "https://*****:*****@up.example.org/a.git?*****" in shown


def test_an_edit_that_unticks_enabled_needs_the_approval_of_disable():
    unticked = request(Operation.EDIT, enabled=False)
    assert approvals_needed(unticked, MIRROR, {Operation.DISABLE}) == (Operation.DISABLE,)
    assert approvals_needed(unticked, MIRROR, {Operation.EDIT, Operation.DISABLE}) == (
        Operation.EDIT,
        Operation.DISABLE,
    )
    assert (
        approvals_needed(request(Operation.EDIT, enabled=True), MIRROR, {Operation.DISABLE}) == ()
    )
