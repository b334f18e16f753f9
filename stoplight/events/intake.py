"""Taking in a delivery: record its id and queue its body in a lane, together or not at all.

The web endpoint and `stoplight replay` both come through here. A delivery id seen before is
acknowledged and not processed again; a delivery that could not be recorded was never seen,
so GitHub's redelivery of it is processed.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import zlib
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import lz4.block
import orjson
import simdjson
from redis import Redis
from redis.commands.core import Script

from stoplight.events.routing import installation_id_of
from stoplight.state import keys
from stoplight.state.replies import binary, text
from stoplight.transport.lanes import CHOOSE_LUA, Lanes, choice_arguments

log = logging.getLogger(__name__)

# GitHub lets a delivery be redelivered for three days; remember ids a little longer.
DELIVERY_TTL = timedelta(days=4)
_TTL_SECONDS = int(DELIVERY_TTL.total_seconds())
EVENT_FIELD = "event"
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
_ACCEPT = f"""
local delivery_key, waiting, shared_stream, backlog_stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local event, body, ttl, installation = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local delivery, now_ms, stale_before_ms, share, lifetime_ms =
  ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
if redis.call('HSETNX', delivery_key, '{EVENT_FIELD}', event) == 0 then return 0 end
redis.call('EXPIRE', delivery_key, ttl)
{CHOOSE_LUA}
redis.call('XADD', shared and shared_stream or backlog_stream, '*',
  'delivery', delivery, 'event', event, 'installation', installation, 'body', body)
return 1
"""

CLAIM_FIELD = "claim"
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
    """The installation a parsed delivery names, or 0; only its lane depends on this."""
    return installation_id_of(payload) or 0


class NotAJSONObject(ValueError):
    pass


_parsers = threading.local()


def installation_in(body: bytes) -> int:
    """The installation a delivery body names (0 for none), checking on the way that the
    body is a JSON object: NotAJSONObject says why not.

    simdjson validates the whole document at several GB/s and reads one field without
    building Python objects for the rest; the worker parses the body fully.
    """
    parser: simdjson.Parser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    try:
        document = parser.parse(body)
    except (ValueError, RuntimeError) as error:  # RuntimeError: nested deeper than 1,024
        raise NotAJSONObject("body is not JSON (is the webhook content type JSON?)") from error
    if not isinstance(document, simdjson.Object):
        raise NotAJSONObject("body is not a JSON object")
    try:
        found = document.at_pointer("/installation/id")
    except (KeyError, ValueError, TypeError, IndexError):
        found = 0
    return found if isinstance(found, int) and not isinstance(found, bool) else 0


def accept(
    lanes: Lanes,
    delivery_id: str,
    event: str,
    body: bytes,
    *,
    installation_id: int,
    now: datetime,
) -> Outcome:
    """Record the delivery and queue it in its lane's stream in one atomic script (one round
    trip). A delivery id seen before is acknowledged and queues nothing.

    A full Redis refuses the script before it writes anything: redis-py raises the error.
    """
    if not valid_delivery_id(delivery_id):
        raise ValueError(f"delivery id {delivery_id[:100]!r} is not a GitHub delivery id")
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
    return Outcome.QUEUED if recorded else Outcome.DUPLICATE


def storage_full(error: Exception) -> bool:
    """Whether Redis refused a write because it reached `maxmemory`."""
    return "OOM command not allowed" in str(error)


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
