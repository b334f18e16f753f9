"""`POST /slack/commands`, the request URL of Slack's `/stoplight`: verified (`slack_requests`),
then answered by `pipeline.slack_commands`, which Socket Mode calls with the same fields."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError

from stoplight.pipeline.slack_commands import answer_command
from stoplight.web.slack_requests import answer, refusal

log = logging.getLogger(__name__)
bp = Blueprint("slack_commands", __name__)


@bp.post("/slack/commands")
def commands() -> Response:
    refused = refusal()
    if refused is not None:
        return refused
    context = current_app.extensions["stoplight"]
    if context.redis is None:
        return answer(503, "no Redis configured")
    form = {name: request.form.get(name, "") for name in request.form}
    try:
        reply = answer_command(
            context.redis, context.lanes, context.settings, context.clock.now(), form
        )
    except RedisError as error:
        log.error("/stoplight not answered, Redis unreachable: %s", error)
        return answer(503, "storage unavailable")
    except ValueError as error:
        return answer(400, str(error))
    if reply is None:  # its job answers through the response_url
        return Response(status=200)
    return Response(json.dumps(reply), status=200, content_type="application/json")
