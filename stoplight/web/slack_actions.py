"""`POST /slack/actions`, Slack's Interactivity Request URL: verified (`slack_requests`), then
the "I'll review" click is recorded and its job queued."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError

from stoplight.effects.notice_blocks import CLAIM_ACTION
from stoplight.pipeline.claims import Click, queue_click
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
        click = _claim_click(request.form.get("payload", ""))
        if click is not None:
            queue_click(context.lanes, click, uuid.uuid4().hex)
    except RedisError as error:
        log.error("Slack request not recorded, Redis unreachable: %s", error)
        return answer(503, "storage unavailable")
    except ValueError as error:
        return answer(400, str(error))
    return Response(status=200)


def _claim_click(raw: str) -> Click | None:
    """The "I'll review" click in a `block_actions` payload; None for any other interaction."""
    try:
        payload = json.loads(raw)
    except ValueError:
        raise ValueError("payload is not JSON") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    actions = [a for a in payload.get("actions") or [] if isinstance(a, dict)]
    action = next((a for a in actions if a.get("action_id") == CLAIM_ACTION), None)
    if action is None:
        return None
    installation, _, pull_key = str(action.get("value", "")).partition("|")
    user = payload["user"].get("id") if isinstance(payload.get("user"), dict) else None
    response_url = payload.get("response_url")
    if not installation.isdigit() or not pull_key or not user or not response_url:
        raise ValueError("the click names no installation, PR, user or response_url")
    return Click(int(installation), pull_key, str(user), str(response_url), _workspace(payload))


def _workspace(payload: dict[str, Any]) -> str:
    """The clicker's Slack team id: the payload's team, or their own (`user.team_id`)."""
    team, user = payload.get("team"), payload.get("user")
    found = team.get("id") if isinstance(team, dict) else None
    if not found and isinstance(user, dict):
        found = user.get("team_id")
    return str(found or "")
