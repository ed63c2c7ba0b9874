"""Settings from the environment (or a `.env` file), validated once at start-up.

A missing or malformed value must stop the program with one line naming the variable,
never a pydantic traceback: `load_settings` turns validation errors into `ConfigError`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Operation names that `MIRRORBOT_APPROVAL_REQUIRED` may list (SPEC section 5).
APPROVABLE_OPERATIONS = (
    "delete",
    "disable",
    "enable",
    "sync",
    "add",
    "edit",
    "pull-config",
    "pull-sync",
    "rotate",  # not in the default: it replaces a broken mirror with a working one
)
DEFAULT_APPROVAL_REQUIRED = ("delete", "disable", "pull-config")
DEFAULT_DATABASE_URL = "sqlite:///mirrorbot.db"
SLACK_DEFAULT_API_URL = "https://slack.com/api/"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]
# The one setting whose empty value says something: no operation needs approval (SPEC 5).
_EMPTY_MEANS_NONE = frozenset({"mirrorbot_approval_required"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = SLACK_DEFAULT_API_URL
    gitlab_url: str = "https://gitlab.com"
    gitlab_service_token: SecretStr | None = None
    gitlab_webhook_secret: SecretStr | None = None
    # A GitLab OAuth application: with it, `/mirror login` uses the device authorization
    # grant; without it, people paste a personal access token. A public (non-confidential)
    # application has no secret.
    gitlab_oauth_client_id: str | None = None
    gitlab_oauth_client_secret: SecretStr | None = None
    database_url: str = DEFAULT_DATABASE_URL
    mirrorbot_secret_key: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    mirrorbot_admins: CommaList = Field(default_factory=list)
    mirrorbot_approval_required: CommaList = Field(
        default_factory=lambda: list(DEFAULT_APPROVAL_REQUIRED)
    )
    mirrorbot_poll_interval: int = Field(default=60, gt=0)
    mirrorbot_remind_after: int = Field(default=86400, gt=0)
    # How long processed webhook events, delivered Slack messages, resolved alerts and
    # stale checks are kept (the audit log is kept for good).
    mirrorbot_retention_days: int = Field(default=7, gt=0)
    # An enabled mirror whose last success is older than this many days is stale (inventory,
    # digest).
    mirrorbot_stale_after: int = Field(default=7, gt=0)
    # The monitor's share of GitLab's rate limit (GitLab.com allows 2,000 per minute per
    # user) and how many projects it reads at once.
    mirrorbot_gitlab_requests_per_minute: int = Field(default=1500, gt=0)
    mirrorbot_monitor_concurrency: int = Field(default=10, gt=0, le=200)
    # A project's push mirrors, or its pull mirror, that the monitor found absent are looked
    # for again every Nth scan (1: every scan, as before); a webhook's checks always look.
    mirrorbot_recheck_every: int = Field(default=10, gt=0, le=1000)
    # Seconds the monitor's leader holds its lease between renewals: when it dies,
    # another replica takes over within this plus one poll interval.
    mirrorbot_leader_lease: int = Field(default=30, ge=3)
    mirrorbot_log_format: Literal["text", "json"] = "text"
    mirrorbot_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _empty_is_missing(cls, values: object) -> object:
        """An empty value is a missing one (SPEC 5): `GITLAB_WEBHOOK_SECRET=` from a
        template with a hole in it must not become the secret "", which anyone knows."""
        if not isinstance(values, dict):
            return values
        return {
            name: value
            for name, value in values.items()
            if name in _EMPTY_MEANS_NONE or not (isinstance(value, str) and not value.strip())
        }

    @field_validator("mirrorbot_admins", "mirrorbot_approval_required", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("mirrorbot_secret_key", mode="before")
    @classmethod
    def _fernet_keys(cls, value: object) -> object:
        keys = _split_commas(value)
        if isinstance(keys, list):
            for key in keys:
                try:
                    Fernet(key)
                except (ValueError, TypeError):
                    # Never echo the key itself: it is a secret.
                    raise ValueError(
                        "each key must be a Fernet key (32 url-safe base64-encoded bytes); "
                        'make one with: python -c "from cryptography.fernet import Fernet; '
                        'print(Fernet.generate_key().decode())"'
                    ) from None
        return keys

    @field_validator("mirrorbot_approval_required")
    @classmethod
    def _known_operations(cls, value: list[str]) -> list[str]:
        unknown = [op for op in value if op not in APPROVABLE_OPERATIONS]
        if unknown:
            raise ValueError(
                f"unknown operation {', '.join(unknown)}; "
                f"choose from {', '.join(APPROVABLE_OPERATIONS)}"
            )
        return value

    @field_validator("gitlab_url", "slack_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "sqlite+", "postgresql", "postgres:")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value

    @property
    def gitlab_api_url(self) -> str:
        return f"{self.gitlab_url}/api/v4"

    @property
    def secret_keys(self) -> list[str]:
        return [key.get_secret_value() for key in self.mirrorbot_secret_key]

    def secret_values(self) -> list[str]:
        """Every configured secret, so the log filter can mask them wherever they appear."""
        values = [
            secret.get_secret_value()
            for secret in (
                self.slack_bot_token,
                self.slack_signing_secret,
                self.slack_app_token,
                self.gitlab_service_token,
                self.gitlab_webhook_secret,
                self.gitlab_oauth_client_secret,
            )
            if secret is not None
        ]
        return values + self.secret_keys

    def require(self, *names: str) -> None:
        """Raise `ConfigError` for the first of `names` (env var names) that is unset."""
        for name in names:
            value = getattr(self, name.lower())
            if value is None or value == [] or value == "":
                raise ConfigError(f"{name} is not set: {_REQUIRED_HINTS.get(name, 'set it')}")


_REQUIRED_HINTS = {
    "SLACK_BOT_TOKEN": "the bot token (xoxb-…) from the Slack app's OAuth page",
    "SLACK_SIGNING_SECRET": "the signing secret from the Slack app's Basic Information page",
    "SLACK_APP_TOKEN": "an app-level token (xapp-…) with connections:write, for Socket Mode",
    "GITLAB_SERVICE_TOKEN": "a GitLab token with read_api on the watched projects, for the monitor",
    "GITLAB_WEBHOOK_SECRET": "the secret token configured on the GitLab webhook",
    "MIRRORBOT_SECRET_KEY": "one or more comma-separated Fernet keys that encrypt stored tokens",
}


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise `ConfigError` naming the first bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "configuration"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None
