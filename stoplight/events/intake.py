"""Taking in a delivery: record its id and body and enqueue its job, together or not at all.

The web endpoint and `stoplight replay` both come through here. A delivery id seen before is
acknowledged and not processed again; a delivery that could not be recorded was never seen,
so GitHub's redelivery of it is processed.
"""

from __future__ import annotations

import functools
import logging
import re
import zlib
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import orjson
from redis import Redis
from redis.commands.core import Script
from rq.job import Job

from stoplight.events.routing import installation_id_of
from stoplight.pipeline.lanes import CHOOSE_LUA, Lanes, choice_arguments
from stoplight.pipeline.runtime import JOB_RETRY, JOB_TIMEOUT_SECONDS
from stoplight.state import keys
from stoplight.state.replies import binary, text

log = logging.getLogger(__name__)

# GitHub lets a delivery be redelivered for three days; remember ids a little longer.
DELIVERY_TTL = timedelta(days=4)
_TTL_SECONDS = int(DELIVERY_TTL.total_seconds())
EVENT_FIELD = "event"
# The body as received, kept by earlier versions; now zlib's level 1 of it, about a tenth of
# the bytes for Redis to copy, log to its append-only file and hold until a worker takes it.
BODY_FIELD = "body"
COMPRESSED_BODY_FIELD = "zbody"

# One round trip takes a delivery in: the event field marks its id as seen (a second delivery
# with the id records nothing and queues nothing), then the body is kept, its lane chosen and
# its RQ job saved and queued there, all or nothing.
_ACCEPT = f"""
local delivery_key, waiting, job_key, shared_queue, backlog_queue =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local event, body, ttl, delivery, now_ms, stale_before_ms, share, lifetime_ms =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local shared_name, backlog_name, job_id = ARGV[9], ARGV[10], ARGV[11]
if redis.call('HSETNX', delivery_key, '{EVENT_FIELD}', event) == 0 then return 0 end
redis.call('HSET', delivery_key, '{COMPRESSED_BODY_FIELD}', body)
redis.call('EXPIRE', delivery_key, ttl)
{CHOOSE_LUA}
redis.call('HSET', job_key, unpack(ARGV, 12))
redis.call('HSET', job_key, 'origin', shared and shared_name or backlog_name)
redis.call('RPUSH', shared and shared_queue or backlog_queue, job_id)
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
    """The JSON value of a delivery body; ValueError for a body that is not JSON, or one
    nested deeper than the parser goes."""
    return orjson.loads(body)


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
    """Record the delivery and enqueue its processing in one atomic script (one round trip).

    A delivery id seen before is acknowledged and queues nothing: its first job processes it.
    """
    if not valid_delivery_id(delivery_id):
        raise ValueError(f"delivery id {delivery_id[:100]!r} is not a GitHub delivery id")
    job = lanes.shared.create_job(
        "stoplight.jobs.process_delivery",
        args=(delivery_id, installation_id),
        description=f"process_delivery({event} {delivery_id})",
        retry=JOB_RETRY,
        timeout=JOB_TIMEOUT_SECONDS,
    )
    job.enqueued_at = now
    redis = lanes.redis
    recorded = _accept_script(redis)(
        [
            keys.delivery(delivery_id),
            keys.InstallationKeys(installation_id).waiting_deliveries,
            job.key,
            lanes.shared.key,
            lanes.backlog.key,
        ],
        [
            event,
            zlib.compress(body, 1),
            _TTL_SECONDS,
            *choice_arguments(delivery_id, now),
            lanes.shared.name,
            lanes.backlog.name,
            job.id,
            *_job_fields(job),
        ],
    )
    return Outcome.QUEUED if recorded else Outcome.DUPLICATE


@functools.lru_cache(maxsize=16)
def _accept_script(redis: Redis) -> Script:
    """The intake script, registered once per connection (its hash is not recomputed for
    every delivery)."""
    return redis.register_script(_ACCEPT)


def _job_fields(job: Job) -> list[str | bytes]:
    """The job's hash as RQ saves it, flattened for HSET."""
    fields: list[str | bytes] = []
    for name, value in job.to_dict().items():
        if value is not None:
            fields += [name, value if isinstance(value, bytes | str) else str(value)]
    return fields


def claim(redis: Redis, delivery_id: str, job_id: str) -> bool:
    """Whether this job is the one to process the delivery (or a retry of that job)."""
    claimed = redis.eval(_CLAIM, 1, keys.delivery(delivery_id), job_id)
    return bool(claimed)


def load(redis: Redis, delivery_id: str) -> tuple[str, bytes] | None:
    """The event name and body of a delivery not yet processed, or None."""
    event, compressed, body = redis.hmget(
        keys.delivery(delivery_id), EVENT_FIELD, COMPRESSED_BODY_FIELD, BODY_FIELD
    )
    if event is None:
        return None
    if compressed is not None:
        return text(event), zlib.decompress(binary(compressed))
    if body is not None:  # recorded by a version that stored bodies raw
        return text(event), binary(body)
    return None


def finish(redis: Redis, delivery_id: str) -> None:
    """Drop the body, keep the id: a redelivery is still recognised as a duplicate."""
    redis.hdel(keys.delivery(delivery_id), COMPRESSED_BODY_FIELD, BODY_FIELD)
