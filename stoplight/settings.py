"""Settings from the environment, with Probot's names. Reading them does no I/O but the env."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A REDIS_URL naming a Redis Cluster: redis+cluster://host:port[,host:port...]; any node
# will do, the client learns the others from it.
CLUSTER_SCHEME = "redis+cluster"


def is_cluster_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(f"{CLUSTER_SCHEME}://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    app_id: int | None = Field(default=None, validation_alias="APP_ID")
    private_key: SecretStr | None = Field(default=None, validation_alias="PRIVATE_KEY")
    private_key_path: Path | None = Field(default=None, validation_alias="PRIVATE_KEY_PATH")
    webhook_secret: SecretStr | None = Field(default=None, validation_alias="WEBHOOK_SECRET")
    webhook_path: str = Field(default="/api/github/webhooks", validation_alias="WEBHOOK_PATH")
    webhook_proxy_url: str | None = Field(default=None, validation_alias="WEBHOOK_PROXY_URL")
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default=3000, validation_alias="PORT")
    ghe_host: str | None = Field(default=None, validation_alias="GHE_HOST")
    ghe_protocol: str = Field(default="https", validation_alias="GHE_PROTOCOL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    # Sentinels (host:port, comma-separated) and the primary they watch: another way to say
    # a redis+sentinel:// REDIS_URL.
    redis_sentinels: str | None = Field(default=None, validation_alias="REDIS_SENTINELS")
    redis_sentinel_master: str = Field(default="mymaster", validation_alias="REDIS_SENTINEL_MASTER")
    # A Redis of its own for the lanes (delivery streams, delivery records, RQ's jobs), so
    # the state can live on a Redis Cluster, which RQ does not support; unset, REDIS_URL.
    redis_queue_url: str | None = Field(default=None, validation_alias="REDIS_QUEUE_URL")
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_webhook_url: SecretStr | None = Field(default=None, validation_alias="SLACK_WEBHOOK_URL")
    # Verifies the requests Slack sends when someone clicks a notice's button; unset, notices
    # have no buttons and /slack/actions does not exist.
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    # An app-level token (xapp-, scope connections:write): workers take Slack's interactions
    # over Socket Mode instead of Slack calling /slack/* (installs Slack cannot reach).
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    data_dir: Path = Field(default=Path(".stoplight"), validation_alias="DATA_DIR")
    base_url_setting: str | None = Field(
        default=None, validation_alias=AliasChoices("BASE_URL", "base_url")
    )
    log_level: str = Field(default="info", validation_alias="LOG_LEVEL")
    sync_interval_hours: float = Field(default=6, gt=0, validation_alias="SYNC_INTERVAL_HOURS")
    # A delivery's application that runs longer fails that try (a stuck handler must not hold
    # a worker for good); a day at most, so the budget stays an alarm, not a way to switch off.
    delivery_timeout_seconds: int = Field(
        default=60, gt=0, le=86_400, validation_alias="DELIVERY_TIMEOUT_SECONDS"
    )
    github_client_id: str | None = Field(default=None, validation_alias="GITHUB_CLIENT_ID")
    github_client_secret: SecretStr | None = Field(
        default=None, validation_alias="GITHUB_CLIENT_SECRET"
    )
    session_secret: SecretStr | None = Field(default=None, validation_alias="SESSION_SECRET")
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="LOG_FORMAT")
    metrics_username: str = Field(default="metrics", validation_alias="METRICS_USERNAME")
    metrics_password: SecretStr | None = Field(default=None, validation_alias="METRICS_PASSWORD")

    @field_validator("private_key", mode="before")
    @classmethod
    def _unescape_newlines(cls, value: object) -> object:
        # Hosting dashboards often store a PEM on one line with literal "\n".
        if isinstance(value, str):
            return value.replace("\\n", "\n")
        return value

    @field_validator("webhook_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        return value if value.startswith("/") else f"/{value}"

    @field_validator("slack_app_token")
    @classmethod
    def _app_level_token(cls, value: SecretStr | None) -> SecretStr | None:
        # A bot token here would only fail at Slack, in a worker's log.
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be a Slack app-level token (xapp-...)")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)

    @model_validator(mode="after")
    def _key_readable(self) -> Settings:
        if self.private_key is None and self.private_key_path is not None:
            try:
                pem = self.private_key_path.read_text()
            except OSError as error:
                raise ValueError(f"PRIVATE_KEY_PATH cannot be read: {error.strerror}") from None
            self.private_key = SecretStr(pem)
        return self

    @model_validator(mode="after")
    def _sentinels_as_url(self) -> Settings:
        if self.redis_sentinels and not self.redis_url:
            self.redis_url = f"redis+sentinel://{self.redis_sentinels.replace(' ', '')}/"
            self.redis_url += self.redis_sentinel_master
        return self

    @model_validator(mode="after")
    def _lanes_beside_a_cluster(self) -> Settings:
        if is_cluster_url(self.redis_url) and not self.redis_queue_url:
            raise ValueError(
                "REDIS_URL is a Redis Cluster: set REDIS_QUEUE_URL to a Redis (not a cluster) "
                "for the job lanes, which RQ cannot keep on a cluster"
            )
        if is_cluster_url(self.redis_queue_url):
            raise ValueError("REDIS_QUEUE_URL cannot be a Redis Cluster: RQ does not support one")
        return self

    @property
    def configured(self) -> bool:
        """True when the app can talk to GitHub: it has an id, a key and a webhook secret."""
        return bool(self.app_id and self.private_key and self.webhook_secret)

    @property
    def sign_in_enabled(self) -> bool:
        """True when people can sign in to the pages: the OAuth client and a cookie key are set."""
        return bool(self.github_client_id and self.github_client_secret and self.session_secret)

    @cached_property
    def github_api_url(self) -> str:
        if self.ghe_host:
            return f"{self.ghe_protocol}://{self.ghe_host}/api/v3"
        return "https://api.github.com"

    @cached_property
    def github_web_url(self) -> str:
        if self.ghe_host:
            return f"{self.ghe_protocol}://{self.ghe_host}"
        return "https://github.com"

    @cached_property
    def base_url(self) -> str:
        return (self.base_url_setting or f"http://{self.host}:{self.port}").rstrip("/")
