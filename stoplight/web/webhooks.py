"""The webhook endpoint: verify, record, queue, answer. Nothing else happens here.

It sits in front of Flask as WSGI middleware: a delivery is answered without a request
context, URL routing or a JSON response object, which took most of each delivery's time in
the web process. Every other request goes on to the Flask app.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import RedisError

from stoplight import metrics
from stoplight.events import intake
from stoplight.events.handlers import router
from stoplight.web.limits import MAX_BODY_BYTES

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from stoplight.web import WebContext

log = logging.getLogger(__name__)


def signature(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends with `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """Check `X-Hub-Signature-256` in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.encode())


@dataclass
class Answer:
    code: int
    outcome: str
    fields: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return orjson.dumps(self.fields)


class WebhookIntake:
    """WSGI middleware answering POST `path`; other requests go on to `app`."""

    def __init__(self, app: WSGIApplication, context: WebContext, path: str) -> None:
        self.app = app
        self.context = context
        self.path = path

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path:
            return self.app(environ, start_response)
        started = time.perf_counter()
        event = environ.get("HTTP_X_GITHUB_EVENT") or ""
        if environ.get("REQUEST_METHOD") != "POST":
            answer = Answer(405, "malformed", {"error": "deliveries are POSTed"})
        else:
            answer = self.receive(environ, event)
        body = answer.body()
        start_response(
            f"{answer.code} {HTTPStatus(answer.code).phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        known = router.handles_event(event)
        metrics.count_delivery(event, known, answer.outcome, time.perf_counter() - started)
        return [body]

    def receive(self, environ: WSGIEnvironment, event: str) -> Answer:
        secret = self.context.settings.webhook_secret
        if secret is None:
            return _refused("WEBHOOK_SECRET is not set: deliveries are refused")
        body = _read_body(environ)
        if body is None:
            return Answer(413, "too_large", {"error": "body over GitHub's 25 MB limit"})
        if not signature_matches(
            secret.get_secret_value().encode(), body, environ.get("HTTP_X_HUB_SIGNATURE_256")
        ):
            log.warning(
                "delivery refused: bad or missing signature from %s", environ.get("REMOTE_ADDR")
            )
            return Answer(401, "bad_signature", {"error": "signature does not match"})
        return self.record(environ, event, body)

    def record(self, environ: WSGIEnvironment, event: str, body: bytes) -> Answer:
        delivery_id = environ.get("HTTP_X_GITHUB_DELIVERY")
        if not event or not delivery_id:
            return _malformed("X-GitHub-Event and X-GitHub-Delivery headers are required")
        if not intake.valid_delivery_id(delivery_id):
            return _malformed("X-GitHub-Delivery is not a delivery id")
        try:
            installation_id = intake.installation_in(body)
        except intake.NotAJSONObject as error:
            return _malformed(str(error))
        if event == "ping":
            return Answer(200, "pong", {"status": "pong", "zen": _zen(body)})
        if not router.handles_event(event):
            reason = f"{event} is not an event stoplight uses"
            return Answer(200, "ignored", {"status": "ignored", "reason": reason})
        lanes = self.context.lanes
        if lanes is None:
            return _refused("no Redis configured")
        try:
            outcome = intake.accept(
                lanes,
                delivery_id,
                event,
                body,
                installation_id=installation_id,
                now=self.context.clock.now(),
            )
        except RedisError as error:
            return self._not_recorded(delivery_id, error)
        try:
            self.context.outage.recovered()
        except RedisError as error:  # the delivery is safe; the next one tries again
            log.error("redelivery after the outage not scheduled yet: %s", error)
        if outcome is intake.Outcome.DUPLICATE:
            return Answer(200, "duplicate", {"status": "duplicate", "delivery": delivery_id})
        return Answer(202, "queued", {"status": "queued", "delivery": delivery_id})

    def _not_recorded(self, delivery_id: str, error: RedisError) -> Answer:
        """A 503, so GitHub's delivery counts as failed; the outage's end redelivers it."""
        self.context.outage.failed()
        extra = {"delivery": delivery_id}
        if intake.storage_full(error):
            log.error(
                "delivery %s refused: Redis is full (maxmemory); start workers or add memory",
                delivery_id,
                extra=extra,
            )
            return Answer(
                503, "storage_full", {"error": "storage full; the delivery can be redelivered"}
            )
        log.error(
            "delivery %s not recorded, Redis unreachable: %s", delivery_id, error, extra=extra
        )
        return _refused("storage unavailable; the delivery can be redelivered")


def _read_body(environ: WSGIEnvironment) -> bytes | None:
    """The request body, or None when it is over the limit."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        if int(length) > MAX_BODY_BYTES:
            return None
        return bytes(stream.read(int(length)))
    body = bytes(stream.read(MAX_BODY_BYTES + 1))
    return None if len(body) > MAX_BODY_BYTES else body


def _zen(body: bytes) -> str:
    payload: dict[str, Any] = orjson.loads(body)
    return str(payload.get("zen", ""))


def _malformed(error: str) -> Answer:
    return Answer(400, "malformed", {"error": error})


def _refused(error: str) -> Answer:
    return Answer(503, "unavailable", {"error": error})


def install(app: Any, context: WebContext, path: str) -> None:
    """Put the endpoint in front of Flask's own WSGI app."""
    wsgi: Callable[..., Iterable[bytes]] = app.wsgi_app
    app.wsgi_app = WebhookIntake(wsgi, context, path)
