"""`POST /slack/actions`, Slack's Interactivity Request URL: verify, refuse replays, queue.

Only with `SLACK_SIGNING_SECRET` set is the route there. A request counts only when Slack's
`X-Slack-Signature` matches `v0:{timestamp}:{body}` with a timestamp within 5 minutes, and that
signature was not seen before; anything else is a 401 that changes nothing. The answer goes
back at once (Slack waits 3 seconds): GitHub and Slack are called by the click's job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid

from flask import Blueprint, Flask, Response, current_app, request
from pydantic import SecretStr
from redis import Redis
from redis.exceptions import RedisError
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier

from stoplight.core.clock import Clock
from stoplight.pipeline.claims import accept_interaction
from stoplight.state import keys

log = logging.getLogger(__name__)
bp = Blueprint("slack_actions", __name__)

# Slack's window for a request's timestamp; a seen signature is remembered as long.
SIGNATURE_WINDOW_SECONDS = 5 * 60


def install(app: Flask, signing_secret: SecretStr | None) -> None:
    """The route exists only when Slack's requests can be verified."""
    if signing_secret:
        app.register_blueprint(bp)


class _AppClock(SignatureClock):
    """slack_sdk's clock on the app's (injected) one."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def now(self) -> float:
        return self.clock.now().timestamp()


@bp.post("/slack/actions")
def actions() -> Response:
    context = current_app.extensions["stoplight"]
    secret = context.settings.slack_signing_secret
    body = request.get_data()
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    verifier = SignatureVerifier(secret.get_secret_value(), _AppClock(context.clock))
    if not timestamp.isdigit() or not verifier.is_valid(body, timestamp, signature):
        log.warning("Slack request refused: bad, missing or old signature")
        return _answer(401, "signature does not match")
    if context.lanes is None:
        return _answer(503, "no Redis configured")
    try:
        if not _first_time(context.lanes.redis, signature, timestamp):
            log.warning("Slack request refused: a replay of one already received")
            return _answer(401, "request already received")
        accept_interaction(
            context.lanes, _payload(request.form.get("payload", "")), uuid.uuid4().hex
        )
    except RedisError as error:
        log.error("Slack request not recorded, Redis unreachable: %s", error)
        return _answer(503, "storage unavailable")
    except ValueError as error:
        return _answer(400, str(error))
    return Response(status=200)


def _first_time(redis: Redis, signature: str, timestamp: str) -> bool:
    """Remember this signed request for as long as its signature is valid; False if it was
    seen already."""
    digest = hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()
    return bool(redis.set(keys.slack_request_seen(digest), 1, nx=True, ex=SIGNATURE_WINDOW_SECONDS))


def _payload(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError("payload is not JSON") from None


def _answer(code: int, error: str) -> Response:
    return Response(json.dumps({"error": error}), status=code, content_type="application/json")
