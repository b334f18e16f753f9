"""The one client layer between the workers and Slack, on slack_sdk.

With `SLACK_BOT_TOKEN` and a channel, the bot posts through the Web API (`chat.postMessage`,
`chat.update`) at `SLACK_API_URL`; otherwise the incoming webhook `SLACK_WEBHOOK_URL` takes the
message; with neither there is no Slack. Every failure comes out as one of three errors, so the
caller can decide: wait as Slack asks, retry later, or give up and say why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from http.client import RemoteDisconnected
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import (
    BackoffRetryIntervalCalculator,
    ConnectionErrorRetryHandler,
    RetryHandler,
    RetryIntervalCalculator,
)
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient, WebhookResponse

from stoplight.settings import Settings

TIMEOUT_SECONDS = 10
# Quick in-process retries for a Slack hiccup; anything longer is the job's retry.
QUICK_RETRIES = 2
RETRY_INTERVAL: RetryIntervalCalculator = BackoffRetryIntervalCalculator(backoff_factor=0.5)
# Error codes that say "Slack's fault, try again"; any other refusal needs the operator.
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


@dataclass(frozen=True)
class Message:
    text: str  # plain-text fallback, shown in notifications
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Posted:
    """Where a message went. Only a bot's messages have a `ts`, so only they can be updated."""

    channel: str | None
    ts: str | None


class SlackError(Exception):
    pass


class SlackRateLimited(SlackError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited by Slack for {retry_after}s")
        self.retry_after = retry_after


class SlackUnavailable(SlackError):
    """A 5xx, a timeout or a dropped connection: worth trying again later."""


class SlackRejected(SlackError):
    """Slack refused for a reason no retry can fix (bad token, unknown channel)."""

    def __init__(self, reason: str, where: str) -> None:
        super().__init__(f"Slack refused the message ({reason}) for {where}")
        self.reason = reason
        self.where = where


def mode(settings: Settings) -> str | None:
    """How notices go out: 'bot', 'webhook', or None when Slack is not configured."""
    if settings.slack_bot_token:
        return "bot"
    if settings.slack_webhook_url:
        return "webhook"
    return None


def describe(settings: Settings) -> str:
    """One line for the start-up log; names no secret."""
    match mode(settings):
        case "bot":
            fallback = (
                " (webhook for teams without a channel)" if settings.slack_webhook_url else ""
            )
            return f"Slack notices: bot token, API at {settings.slack_api_url}{fallback}"
        case "webhook":
            return "Slack notices: incoming webhook"
        case _:
            return "Slack notices off: set SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL to turn them on"


def _retry_handlers() -> list[RetryHandler]:
    # 429 is left out on purpose: the caller reschedules instead of sleeping a worker.
    return [
        ConnectionErrorRetryHandler(
            max_retry_count=QUICK_RETRIES,
            interval_calculator=RETRY_INTERVAL,
            error_types=[URLError, ConnectionResetError, RemoteDisconnected, TimeoutError],
        ),
        ServerErrorRetryHandler(max_retry_count=QUICK_RETRIES, interval_calculator=RETRY_INTERVAL),
    ]


class SlackClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def can_update(self, channel: str | None) -> bool:
        return self.settings.slack_bot_token is not None and channel is not None

    def can_post(self, channel: str | None) -> bool:
        return self.can_update(channel) or self.settings.slack_webhook_url is not None

    def post(self, channel: str | None, message: Message) -> Posted:
        """Post to `channel` as the bot, or through the webhook when there is no bot or channel."""
        if self.can_update(channel):
            assert channel is not None
            response = self._call("chat_postMessage", channel, message)
            return Posted(channel=response["channel"], ts=response["ts"])
        self._send_webhook(message)
        return Posted(channel=None, ts=None)

    def update(self, posted: Posted, message: Message) -> None:
        assert posted.channel is not None and posted.ts is not None
        self._call("chat_update", posted.channel, message, ts=posted.ts)

    def _web(self) -> WebClient:
        assert self.settings.slack_bot_token is not None
        return WebClient(
            token=self.settings.slack_bot_token.get_secret_value(),
            base_url=self.settings.slack_api_url,
            timeout=TIMEOUT_SECONDS,
            retry_handlers=_retry_handlers(),
        )

    def _call(self, method: str, channel: str, message: Message, **extra: str) -> Mapping[str, Any]:
        try:
            response = getattr(self._web(), method)(
                channel=channel, text=message.text, blocks=message.blocks, **extra
            )
        except SlackApiError as error:
            raise _api_error(error, channel) from None
        except OSError as error:  # URLError and timeouts, after the quick retries
            raise SlackUnavailable(f"Slack unreachable: {error}") from None
        return response.data

    def _send_webhook(self, message: Message) -> None:
        if self.settings.slack_webhook_url is None:
            raise ValueError("no team channel and no SLACK_WEBHOOK_URL: check can_post() first")
        client = WebhookClient(
            self.settings.slack_webhook_url.get_secret_value(),
            timeout=TIMEOUT_SECONDS,
            retry_handlers=_retry_handlers(),
        )
        try:
            response = client.send(text=message.text, blocks=message.blocks)
        except OSError as error:
            raise SlackUnavailable(f"Slack webhook unreachable: {error}") from None
        _check_webhook(response, "the incoming webhook")


def reply_privately(response_url: str, text: str) -> None:
    """Answer the person who clicked a button, in a message only they see, through the
    `response_url` Slack sent with the click (valid for 30 minutes, no token needed)."""
    client = WebhookClient(response_url, timeout=TIMEOUT_SECONDS, retry_handlers=_retry_handlers())
    try:
        response = client.send(text=text, response_type="ephemeral", replace_original=False)
    except OSError as error:
        raise SlackUnavailable(f"Slack unreachable for a private reply: {error}") from None
    _check_webhook(response, "a private reply")


def _check_webhook(response: WebhookResponse, where: str) -> None:
    if response.status_code == 200:
        return
    if response.status_code == 429:
        raise SlackRateLimited(_retry_after(response.headers))
    if response.status_code >= 500:
        raise SlackUnavailable(f"Slack webhook answered {response.status_code}")
    raise SlackRejected(response.body or str(response.status_code), where)


def _api_error(error: SlackApiError, channel: str) -> SlackError:
    response = error.response
    if response.status_code == 429:
        return SlackRateLimited(_retry_after(response.headers))
    if response.status_code >= 500:
        return SlackUnavailable(f"Slack answered {response.status_code}")
    reason = str(response.get("error", response.status_code))
    if reason == "ratelimited":
        return SlackRateLimited(_retry_after(response.headers))
    if reason in TRANSIENT_ERRORS:
        return SlackUnavailable(f"Slack answered {reason}")
    return SlackRejected(reason, f"channel {channel}")


def _retry_after(headers: Mapping[str, Any]) -> int:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(int(raw), 1)
            except ValueError:
                break
    return 1
