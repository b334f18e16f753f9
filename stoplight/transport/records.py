"""A delivery's record: its id marked as seen, who owns it, its tries, and its body while an RQ
job holds it. Recording a delivery and queueing it in its lane's stream are one script.

Each script is given what it uses: the Lua functions below take their keys and values as
parameters, and a script that composes them passes its own explicitly.
"""

from __future__ import annotations

import functools
import zlib
from datetime import datetime, timedelta

import lz4.block
from redis import Redis
from redis.commands.core import Script

from stoplight.state import keys
from stoplight.state.replies import binary, text
from stoplight.transport.lanes import CHOOSE_LUA, Lanes, choice_arguments

# GitHub lets a delivery be redelivered for three days; remember ids a little longer.
DELIVERY_TTL = timedelta(days=4)
_TTL_SECONDS = int(DELIVERY_TTL.total_seconds())
EVENT_FIELD = "event"
CLAIM_FIELD = "claim"
ATTEMPTS_FIELD = "attempts"
# A delivery's body waits in its lane's stream, LZ4-compressed: a tenth to a fifth of the
# bytes for Redis to copy, log and hold, for a tenth of zlib's CPU. A delivery handed over to
# an RQ job keeps it in its own hash; versions before streams kept it there raw or zlib'd.
BODY_FIELD = "body"
COMPRESSED_BODY_FIELD = "zbody"
LZ4_BODY_FIELD = "lz4body"
_BODY_FIELDS = (LZ4_BODY_FIELD, COMPRESSED_BODY_FIELD, BODY_FIELD)

# One round trip takes a delivery in: the event field marks its id as seen (a second delivery
# with the id records nothing and queues nothing), then its lane is chosen and the delivery
# added to the lane's stream, all or nothing. The first write decides: Redis refuses a script
# at its first write when memory is full, and lets a script that has written finish.
_ACCEPT = (
    CHOOSE_LUA
    + f"""
local delivery_key, waiting, shared_stream, backlog_stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local event, body, ttl, installation, delivery = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HSETNX', delivery_key, '{EVENT_FIELD}', event) == 0 then return 0 end
redis.call('EXPIRE', delivery_key, ttl)
local shared = in_shared_lane(waiting, delivery, ARGV[6], ARGV[7], ARGV[8], ARGV[9])
redis.call('XADD', shared and shared_stream or backlog_stream, '*',
  'delivery', delivery, 'event', event, 'installation', installation, 'body', body)
return 1
"""
)

# Lua defining `claimed(delivery_key, owner)`: the first owner to ask (a stream entry, or an
# RQ job) owns the delivery, and its own retries keep it; 0 for a delivery not recorded.
# Workers claim a whole batch with it in their own script.
CLAIM_LUA = f"""
local function claimed(delivery_key, owner)
  if redis.call('EXISTS', delivery_key) == 0 then return 0 end
  if redis.call('HSETNX', delivery_key, '{CLAIM_FIELD}', owner) == 1 then return 1 end
  return redis.call('HGET', delivery_key, '{CLAIM_FIELD}') == owner and 1 or 0
end
"""
_CLAIM = CLAIM_LUA + "return claimed(KEYS[1], ARGV[1])"


def record_and_queue(
    lanes: Lanes,
    delivery_id: str,
    event: str,
    body: bytes,
    *,
    installation_id: int,
    now: datetime,
) -> bool:
    """Record the delivery and add it to its lane's stream in one atomic script (one round
    trip); False, queueing nothing, for an id recorded before."""
    recorded = _accept_script(lanes.redis)(
        [
            keys.delivery(delivery_id),
            keys.InstallationKeys(installation_id).waiting_deliveries,
            *lanes.streams,
        ],
        [
            event,
            compress(body),
            _TTL_SECONDS,
            installation_id,
            *choice_arguments(delivery_id, now),
        ],
    )
    return bool(recorded)


@functools.lru_cache(maxsize=16)
def _accept_script(redis: Redis) -> Script:
    """The intake script, registered once per connection (its hash is not recomputed for
    every delivery)."""
    return redis.register_script(_ACCEPT)


def compress(body: bytes) -> bytes:
    return lz4.block.compress(body)


def decompress(body: bytes) -> bytes:
    return lz4.block.decompress(body)


def claim(redis: Redis, delivery_id: str, job_id: str) -> bool:
    """Whether this job is the one to process the delivery (or a retry of that job)."""
    claimed = redis.eval(_CLAIM, 1, keys.delivery(delivery_id), job_id)
    return bool(claimed)


def count_attempt(redis: Redis, delivery_id: str) -> int:
    """Count a try of the delivery before it starts; the number of this try."""
    return int(redis.hincrby(keys.delivery(delivery_id), ATTEMPTS_FIELD, 1))


def load(redis: Redis, delivery_id: str) -> tuple[str, bytes] | None:
    """The event name and body of a delivery handed to an RQ job and not yet processed."""
    event, *bodies = redis.hmget(keys.delivery(delivery_id), EVENT_FIELD, *_BODY_FIELDS)
    if event is None:
        return None
    lz4_body, zlib_body, raw_body = (None if b is None else binary(b) for b in bodies)
    if lz4_body is not None:
        return text(event), decompress(lz4_body)
    if zlib_body is not None:  # recorded by a version that kept bodies in the hash
        return text(event), zlib.decompress(zlib_body)
    if raw_body is not None:  # recorded by a version that stored bodies raw
        return text(event), raw_body
    return None


def hand_over(redis: Redis, delivery_id: str, compressed_body: bytes, job_id: str) -> None:
    """A delivery a stream entry could not apply passes to RQ job `job_id`, with its body."""
    redis.hset(
        keys.delivery(delivery_id), mapping={LZ4_BODY_FIELD: compressed_body, CLAIM_FIELD: job_id}
    )


def finish(redis: Redis, delivery_id: str) -> None:
    """Drop the body, keep the id: a redelivery is still recognised as a duplicate."""
    redis.hdel(keys.delivery(delivery_id), *_BODY_FIELDS)
