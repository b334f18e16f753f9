"""Slack's requests to the app (`/slack/actions`, `/slack/commands`): one check for all of them.

Only with `SLACK_SIGNING_SECRET` set are the routes there. A request counts only when Slack's
`X-Slack-Signature` matches `v0:{timestamp}:{body}` with a timestamp within 5 minutes, and that
signature was not seen before; anything else is a 401 that changes nothing. Each route answers
at once (Slack waits 3 seconds): GitHub and Slack are called by jobs.
"""

from __future__ import annotations

import hashlib
import json
import logging

from flask import Flask, Response, current_app, request
from pydantic import SecretStr
from redis import Redis
from redis.exceptions import RedisError
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier

from stoplight.core.clock import Clock
from stoplight.state import keys

log = logging.getLogger(__name__)

# Slack's window for a request's timestamp; a seen signature is remembered as long.
SIGNATURE_WINDOW_SECONDS = 5 * 60


def install(app: Flask, signing_secret: SecretStr | None) -> None:
    """The routes exist only when Slack's requests can be verified."""
    from stoplight.web import slack_actions, slack_commands

    if signing_secret:
        app.register_blueprint(slack_actions.bp)
        app.register_blueprint(slack_commands.bp)


class _AppClock(SignatureClock):
    """slack_sdk's clock on the app's (injected) one."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> float:
        return self.clock.now().timestamp()


def refusal() -> Response | None:
    """None when this request is Slack's: signed with the secret, recent, and the first of its
    signature (which is then remembered); otherwise the answer that refuses it."""
    context = current_app.extensions["stoplight"]
    secret = context.settings.slack_signing_secret
    body = request.get_data()
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    verifier = SignatureVerifier(secret.get_secret_value(), _AppClock(context.clock))
    if not timestamp.isdigit() or not verifier.is_valid(body, timestamp, signature):
        log.warning("Slack request refused: bad, missing or old signature")
        return answer(401, "signature does not match")
    if context.lanes is None:
        return answer(503, "no Redis configured")
    try:
        first = _first_time(context.lanes.redis, signature, timestamp)
    except RedisError as error:
        log.error("Slack request not recorded, Redis unreachable: %s", error)
        return answer(503, "storage unavailable")
    if not first:
        log.warning("Slack request refused: a replay of one already received")
        return answer(401, "request already received")
    return None


def _first_time(redis: Redis, signature: str, timestamp: str) -> bool:
    """Remember this signed request for as long as its signature is valid; False if it was
    seen already."""
    digest = hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()
    return bool(redis.set(keys.slack_request_seen(digest), 1, nx=True, ex=SIGNATURE_WINDOW_SECONDS))


def answer(code: int, error: str) -> Response:
    return Response(json.dumps({"error": error}), status=code, content_type="application/json")
