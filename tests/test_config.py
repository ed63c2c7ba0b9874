import pytest

from bot.config import ConfigError, load_settings
from bot.store.crypto import generate_key


def test_defaults(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings(_env_file=None)
    assert settings.database_url.startswith("sqlite:///")
    assert settings.mirrorbot_approval_required == ["delete", "disable", "pull-config"]
    assert settings.mirrorbot_poll_interval == 60
    assert settings.mirrorbot_remind_after == 86400
    assert settings.mirrorbot_retention_days == 7


def test_comma_separated_lists(monkeypatch):
    keys = [generate_key(), generate_key()]
    monkeypatch.setenv("MIRRORBOT_SECRET_KEY", ",".join(keys))
    monkeypatch.setenv("MIRRORBOT_ADMINS", "U1, U2")
    monkeypatch.setenv("MIRRORBOT_APPROVAL_REQUIRED", "")
    settings = load_settings(_env_file=None)
    assert settings.secret_keys == keys
    assert settings.mirrorbot_admins == ["U1", "U2"]
    assert settings.mirrorbot_approval_required == []


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MIRRORBOT_POLL_INTERVAL", "soon", "MIRRORBOT_POLL_INTERVAL: "),
        ("MIRRORBOT_POLL_INTERVAL", "0", "greater than 0"),
        ("MIRRORBOT_REMIND_AFTER", "-5", "MIRRORBOT_REMIND_AFTER"),
        ("MIRRORBOT_RETENTION_DAYS", "0", "greater than 0"),
        ("MIRRORBOT_SECRET_KEY", "not-a-key", "Fernet key"),
        ("MIRRORBOT_APPROVAL_REQUIRED", "delete,nuke", "unknown operation nuke"),
        ("GITLAB_URL", "gitlab.example.com", "GITLAB_URL: expected an http"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
    ],
)
def test_a_malformed_setting_is_one_line_naming_it(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None)
    message = str(error.value)
    assert message.startswith(name)
    assert expected in message
    assert "\n" not in message


def test_the_secret_key_is_never_echoed(monkeypatch):
    monkeypatch.setenv("MIRRORBOT_SECRET_KEY", "my-very-secret-but-invalid-key")
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None)
    assert "my-very-secret" not in str(error.value)


def test_require_names_the_missing_variable():
    settings = load_settings(_env_file=None)
    with pytest.raises(ConfigError, match=r"^GITLAB_WEBHOOK_SECRET is not set"):
        settings.require("GITLAB_WEBHOOK_SECRET")


def test_an_empty_value_is_a_missing_one(monkeypatch):
    for name in ("GITLAB_WEBHOOK_SECRET", "SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("MIRRORBOT_SECRET_KEY", " ")
    monkeypatch.setenv("MIRRORBOT_POLL_INTERVAL", "")
    monkeypatch.setenv("GITLAB_URL", "  ")
    settings = load_settings(_env_file=None)
    assert settings.gitlab_webhook_secret is None
    assert settings.slack_signing_secret is None and settings.slack_bot_token is None
    assert settings.secret_keys == []
    assert settings.mirrorbot_poll_interval == 60 and settings.gitlab_url == "https://gitlab.com"
    with pytest.raises(ConfigError, match=r"^SLACK_SIGNING_SECRET is not set"):
        settings.require("SLACK_SIGNING_SECRET")


def test_an_empty_approval_list_still_means_no_approvals(monkeypatch):
    monkeypatch.setenv("MIRRORBOT_APPROVAL_REQUIRED", "")
    assert load_settings(_env_file=None).mirrorbot_approval_required == []
