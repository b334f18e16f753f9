"""Taking in a delivery: record its id and body and enqueue its job, together or not at all.

The web endpoint and `stoplight replay` both come through here. A delivery id seen before is
acknowledged and not processed again; a delivery that could not be recorded was never seen,
so GitHub's redelivery of it is processed.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from enum import Enum

from redis import Redis, WatchError
from rq import Queue

from stoplight import keys
from stoplight.runtime import JOB_RETRY, JOB_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

# GitHub lets a delivery be redelivered for three days; remember ids a little longer.
DELIVERY_TTL = timedelta(days=4)
EVENT_FIELD = "event"
BODY_FIELD = "body"


class Outcome(Enum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


DELIVERY_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def valid_delivery_id(delivery_id: str) -> bool:
    """GitHub's delivery ids are GUIDs; anything else is refused before it reaches Redis."""
    return DELIVERY_ID.fullmatch(delivery_id) is not None


def accept(redis: Redis, queue: Queue, delivery_id: str, event: str, body: bytes) -> Outcome:
    """Record the delivery and enqueue its processing in one transaction."""
    if not valid_delivery_id(delivery_id):
        raise ValueError(f"delivery id {delivery_id[:100]!r} is not a GitHub delivery id")
    key = keys.delivery(delivery_id)
    with redis.pipeline() as pipe:
        try:
            pipe.watch(key)
            if pipe.exists(key):
                return Outcome.DUPLICATE
            pipe.multi()
            pipe.hset(key, mapping={EVENT_FIELD: event, BODY_FIELD: body})
            pipe.expire(key, DELIVERY_TTL)
            queue.enqueue_call(
                "stoplight.jobs.process_delivery",
                args=(delivery_id,),
                job_id=f"delivery-{delivery_id}",
                description=f"process_delivery({event} {delivery_id})",
                retry=JOB_RETRY,
                timeout=JOB_TIMEOUT_SECONDS,
                pipeline=pipe,
            )
            pipe.execute()
        except WatchError:
            return Outcome.DUPLICATE  # the same id arrived twice at once; the other one won
    return Outcome.QUEUED


def load(redis: Redis, delivery_id: str) -> tuple[str, bytes] | None:
    """The event name and body of a delivery not yet processed, or None."""
    event, body = redis.hmget(keys.delivery(delivery_id), EVENT_FIELD, BODY_FIELD)
    if event is None or body is None:
        return None
    return event.decode(), body


def finish(redis: Redis, delivery_id: str) -> None:
    """Drop the body, keep the id: a redelivery is still recognised as a duplicate."""
    redis.hdel(keys.delivery(delivery_id), BODY_FIELD)
