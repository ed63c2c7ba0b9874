from bot.gitlab.models import PullMirror, PushMirror, PushMirrorCreate, PushMirrorUpdate


def test_python_gitlab_fixture_without_newer_fields_parses():
    # The shape older GitLab versions return: no auth_method, keep_divergent_refs, host_keys.
    mirror = PushMirror.model_validate(
        {
            "enabled": True,
            "id": 1,
            "last_error": None,
            "last_successful_update_at": "2020-01-06T17:32:02.823Z",
            "last_update_at": "2020-01-06T17:32:02.823Z",
            "last_update_started_at": "2020-01-06T17:31:55.864Z",
            "only_protected_branches": True,
            "update_status": "none",
            "url": "https://*****:*****@gitlab.com/gitlab-org/security/gitlab.git",
        }
    )
    assert mirror.auth_method == "password"
    assert mirror.host_keys == []
    assert mirror.last_successful_update_at.year == 2020
    assert mirror.last_successful_update_at.tzinfo is not None


def test_unknown_fields_are_ignored():
    mirror = PushMirror.model_validate({"id": 3, "brand_new_field": {"x": 1}, "url": None})
    assert mirror.id == 3


def test_unscrubbed_urls_and_errors_from_gitlab_are_scrubbed_on_parse():
    mirror = PushMirror.model_validate(
        {
            "id": 1,
            "url": "https://bot:hunter2@h.example/x.git",
            "update_status": "failed",
            "last_error": "remote: https://bot:hunter2@h.example/x.git: Authentication failed",
        }
    )
    assert "hunter2" not in mirror.model_dump_json()
    assert mirror.is_failed


def test_to_retry_is_in_progress_not_failed():
    mirror = PushMirror.model_validate({"id": 1, "update_status": "to_retry"})
    assert mirror.is_in_progress and not mirror.is_failed


def test_public_key_only_for_ssh_urls_with_key_auth():
    ssh = PushMirror.model_validate(
        {"id": 1, "url": "ssh://git@h/x", "auth_method": "ssh_public_key"}
    )
    https_key = PushMirror.model_validate(
        {"id": 2, "url": "https://h/x", "auth_method": "ssh_public_key"}
    )
    assert ssh.has_public_key and not https_key.has_public_key


def test_pull_mirror_without_id_parses():
    mirror = PullMirror.model_validate(
        {
            "update_status": "none",
            "url": "https://gitlab.example.com/root/mirror.git",
            "enabled": True,
            "only_mirror_protected_branches": None,
        }
    )
    assert mirror.id is None


def test_only_attributes_that_were_set_are_sent():
    assert PushMirrorUpdate(enabled=False).to_params() == {"enabled": False}
    assert PushMirrorCreate(url="https://h/x").to_params() == {"url": "https://h/x"}
