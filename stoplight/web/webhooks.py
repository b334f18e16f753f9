"""The webhook endpoint: verify, record, enqueue, answer. Nothing else happens here."""

from __future__ import annotations

import hashlib
import hmac
import logging

from flask import Blueprint, Response, current_app, jsonify, request
from redis.exceptions import RedisError

from stoplight import metrics
from stoplight.events import intake
from stoplight.events.handlers import router

log = logging.getLogger(__name__)


def signature(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends with `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """Check `X-Hub-Signature-256` in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.encode())


def _answer(code: int, /, **fields: str) -> tuple[Response, int]:
    return jsonify(fields), code


def blueprint(path: str) -> Blueprint:
    bp = Blueprint("webhooks", __name__)
    bp.add_url_rule(path, "receive", metrics.measured_intake(receive), methods=["POST"])
    return bp


def receive() -> tuple[Response, int]:
    context = current_app.extensions["stoplight"]
    secret = context.settings.webhook_secret
    if secret is None:
        return _answer(503, error="WEBHOOK_SECRET is not set: deliveries are refused")
    body = request.get_data(cache=False)
    if not signature_matches(
        secret.get_secret_value().encode(), body, request.headers.get("X-Hub-Signature-256")
    ):
        log.warning("delivery refused: bad or missing signature from %s", request.remote_addr)
        return _answer(401, error="signature does not match X-Hub-Signature-256")
    event = request.headers.get("X-GitHub-Event")
    delivery_id = request.headers.get("X-GitHub-Delivery")
    if not event or not delivery_id:
        return _answer(400, error="X-GitHub-Event and X-GitHub-Delivery headers are required")
    if not intake.valid_delivery_id(delivery_id):
        return _answer(400, error="X-GitHub-Delivery is not a delivery id")
    try:
        payload = intake.parse_body(body)
    except ValueError:
        return _answer(400, error="body is not JSON (is the webhook content type JSON?)")
    if not isinstance(payload, dict):
        return _answer(400, error="body is not a JSON object")
    if event == "ping":
        return _answer(200, status="pong", zen=str(payload.get("zen", "")))
    if not router.handles_event(event):
        return _answer(200, status="ignored", reason=f"{event} is not an event stoplight uses")
    if context.lanes is None:
        return _answer(503, error="no Redis configured")
    try:
        outcome = intake.accept(
            context.lanes,
            delivery_id,
            event,
            body,
            installation_id=intake.installation_of(payload),
            now=context.clock.now(),
        )
    except RedisError as error:
        log.error(
            "delivery %s not recorded, Redis unreachable: %s",
            delivery_id,
            error,
            extra={"delivery": delivery_id},
        )
        context.outage.failed()
        return _answer(503, error="storage unavailable; the delivery can be redelivered")
    try:
        context.outage.recovered()
    except RedisError as error:  # the delivery is safe; the next one tries again
        log.error("redelivery after the outage not scheduled yet: %s", error)
    if outcome is intake.Outcome.DUPLICATE:
        return _answer(200, status="duplicate", delivery=delivery_id)
    return _answer(202, status="queued", delivery=delivery_id)
