"""Taking in a delivery: record its id and body and enqueue its job, together or not at all.

The web endpoint and `stoplight replay` both come through here. A delivery id seen before is
acknowledged and not processed again; a delivery that could not be recorded was never seen,
so GitHub's redelivery of it is processed.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from redis import Redis

from stoplight.events.routing import installation_id_of
from stoplight.pipeline.lanes import Lanes
from stoplight.pipeline.runtime import JOB_RETRY, JOB_TIMEOUT_SECONDS
from stoplight.state import keys
from stoplight.state.replies import binary, text

log = logging.getLogger(__name__)

# GitHub lets a delivery be redelivered for three days; remember ids a little longer.
DELIVERY_TTL = timedelta(days=4)
_TTL_SECONDS = int(DELIVERY_TTL.total_seconds())
EVENT_FIELD = "event"
BODY_FIELD = "body"

# The event field marks an id as seen; a second delivery with the id records nothing.
_RECORD = f"""
if redis.call('HSETNX', KEYS[1], '{EVENT_FIELD}', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], '{BODY_FIELD}', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# The first job to ask owns the delivery; its own retries keep it.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'claim', ARGV[1]) == 1 then return 1 end
return redis.call('HGET', KEYS[1], 'claim') == ARGV[1] and 1 or 0
"""


class Outcome(Enum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


DELIVERY_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def valid_delivery_id(delivery_id: str) -> bool:
    """GitHub's delivery ids are GUIDs; anything else is refused before it reaches Redis."""
    return DELIVERY_ID.fullmatch(delivery_id) is not None


def parse_body(body: bytes) -> Any:
    """The JSON value of a delivery body; ValueError for a body that is not JSON.

    A body nested deeper than the parser recurses is refused like any other malformed body.
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def installation_of(payload: dict[str, Any]) -> int:
    """The installation a delivery names, or 0; only its job lane depends on this."""
    return installation_id_of(payload) or 0


def accept(
    lanes: Lanes,
    delivery_id: str,
    event: str,
    body: bytes,
    *,
    installation_id: int,
    now: datetime,
) -> Outcome:
    """Record the delivery and enqueue its processing in one transaction.

    The job is enqueued even for an id seen before (the transaction cannot branch on the
    record); such a job finds the delivery claimed by the first one and does nothing.
    """
    if not valid_delivery_id(delivery_id):
        raise ValueError(f"delivery id {delivery_id[:100]!r} is not a GitHub delivery id")
    lane = lanes.for_delivery(installation_id, delivery_id, now)
    with lanes.redis.pipeline(transaction=True) as pipe:
        # RQ's enqueue calls multi() on a pipeline not yet marked as in one, and redis-py
        # refuses that once a command is buffered.
        pipe.multi()
        pipe.eval(_RECORD, 1, keys.delivery(delivery_id), event, body, _TTL_SECONDS)
        lane.enqueue_call(
            "stoplight.jobs.process_delivery",
            args=(delivery_id, installation_id),
            description=f"process_delivery({event} {delivery_id})",
            retry=JOB_RETRY,
            timeout=JOB_TIMEOUT_SECONDS,
            pipeline=pipe,
        )
        recorded = pipe.execute()[0]
    return Outcome.QUEUED if recorded else Outcome.DUPLICATE


def claim(redis: Redis, delivery_id: str, job_id: str) -> bool:
    """Whether this job is the one to process the delivery (or a retry of that job)."""
    claimed = redis.eval(_CLAIM, 1, keys.delivery(delivery_id), job_id)
    return bool(claimed)


def load(redis: Redis, delivery_id: str) -> tuple[str, bytes] | None:
    """The event name and body of a delivery not yet processed, or None."""
    event, body = redis.hmget(keys.delivery(delivery_id), EVENT_FIELD, BODY_FIELD)
    if event is None or body is None:
        return None
    return text(event), binary(body)


def finish(redis: Redis, delivery_id: str) -> None:
    """Drop the body, keep the id: a redelivery is still recognised as a duplicate."""
    redis.hdel(keys.delivery(delivery_id), BODY_FIELD)
