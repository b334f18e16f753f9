"""`POST /slack/actions`, Slack's Interactivity Request URL: verified (`slack_requests`), then
the "I'll review" click is recorded and its job queued."""

from __future__ import annotations

import json
import logging
import uuid

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError

from stoplight.pipeline.claims import accept_interaction
from stoplight.web.slack_requests import answer, refusal

log = logging.getLogger(__name__)
bp = Blueprint("slack_actions", __name__)


@bp.post("/slack/actions")
def actions() -> Response:
    refused = refusal()
    if refused is not None:
        return refused
    context = current_app.extensions["stoplight"]
    try:
        accept_interaction(
            context.lanes, _payload(request.form.get("payload", "")), uuid.uuid4().hex
        )
    except RedisError as error:
        log.error("Slack request not recorded, Redis unreachable: %s", error)
        return answer(503, "storage unavailable")
    except ValueError as error:
        return answer(400, str(error))
    return Response(status=200)


def _payload(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError("payload is not JSON") from None
