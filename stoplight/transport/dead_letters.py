"""Deliveries set aside after failing 3 times (see `stoplight.transport.poison`): kept with
what is known of them and why, never tried again unless someone asks
(`stoplight deadletters --retry ID`).

Each is kept with its body, so that it can be put back. The list keeps the newest `KEPT`:
a bug that fails every delivery of one kind would otherwise fill Redis with them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from redis import Redis

from stoplight.core.text import printable
from stoplight.state import keys
from stoplight.state.replies import binary, members
from stoplight.transport import records
from stoplight.transport.lanes import Lanes

KEPT = 1000

# Keep one delivery and forget the oldest beyond `kept`, in one step: a list read between the
# two never shows more than it keeps. KEYS: records, bodies, order; ARGV: delivery id, record,
# compressed body, when (seconds), how many to keep.
_KEEP = """
local records, bodies, order = KEYS[1], KEYS[2], KEYS[3]
redis.call('HSET', records, ARGV[1], ARGV[2])
redis.call('HSET', bodies, ARGV[1], ARGV[3])
redis.call('ZADD', order, ARGV[4], ARGV[1])
for _, old in ipairs(redis.call('ZRANGE', order, 0, -tonumber(ARGV[5]) - 1)) do
  redis.call('HDEL', records, old)
  redis.call('HDEL', bodies, old)
  redis.call('ZREM', order, old)
end
"""
_KEYS = (keys.DEAD_LETTERS, keys.DEAD_LETTER_BODIES, keys.DEAD_LETTER_ORDER)
_COLUMNS = ("ID", "EVENT", "REPO", "TRIES", "WHEN (UTC)", "REASON")


@dataclass(frozen=True)
class DeadLetter:
    delivery_id: str
    event: str
    installation_id: int  # 0: the payload names none
    repo: str | None
    reason: str
    attempts: int
    at: datetime

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, record: dict[str, object]) -> DeadLetter:
        repo = record["repo"]
        return cls(
            delivery_id=str(record["delivery_id"]),
            event=str(record["event"]),
            installation_id=int(str(record["installation_id"])),
            repo=None if repo is None else str(repo),
            reason=str(record["reason"]),
            attempts=int(str(record["attempts"])),
            at=datetime.fromisoformat(str(record["at"])),
        )


def keep(redis: Redis, letter: DeadLetter, compressed_body: bytes) -> None:
    """Add the delivery to the list (again, if it was set aside before and retried)."""
    redis.eval(
        _KEEP,
        len(_KEYS),
        *_KEYS,
        letter.delivery_id,
        json.dumps(letter.as_json()),
        compressed_body,
        letter.at.timestamp(),
        KEPT,
    )


def listed(redis: Redis) -> list[DeadLetter]:
    """The deliveries set aside, newest first."""
    ids = members(redis, keys.DEAD_LETTER_ORDER)[::-1]
    records = redis.hmget(keys.DEAD_LETTERS, ids) if ids else []
    return [DeadLetter.from_json(json.loads(record)) for record in records if record is not None]


def retry(lanes: Lanes, delivery_id: str, now: datetime) -> DeadLetter | None:
    """Put a delivery set aside back on its lane's stream as a fresh delivery, with no tries
    counted, and take it off the list; None if no such delivery is set aside."""
    redis = lanes.redis
    with redis.pipeline(transaction=False) as pipe:
        pipe.hget(keys.DEAD_LETTERS, delivery_id)
        pipe.hget(keys.DEAD_LETTER_BODIES, delivery_id)
        record, body = pipe.execute()
    if record is None or body is None:
        return None
    letter = DeadLetter.from_json(json.loads(record))
    # Its intake record says the id was seen and counts its tries: without it, intake takes
    # the delivery as new and its tries start from nothing.
    redis.delete(keys.delivery(delivery_id))
    records.record_and_queue(
        lanes,
        delivery_id,
        letter.event,
        records.decompress(binary(body)),
        installation_id=letter.installation_id,
        now=now,
    )
    # Only once it is queued again: a retry cut short leaves the delivery listed, not lost.
    with redis.pipeline() as pipe:
        pipe.hdel(keys.DEAD_LETTERS, delivery_id)
        pipe.hdel(keys.DEAD_LETTER_BODIES, delivery_id)
        pipe.zrem(keys.DEAD_LETTER_ORDER, delivery_id)
        pipe.execute()
    return letter


def table(letters: Sequence[DeadLetter]) -> str:
    """The deliveries as aligned columns for a terminal, the reason last (it runs long)."""
    rows = [_COLUMNS, *(_row(letter) for letter in letters)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
    return "\n".join(lines)


def _row(letter: DeadLetter) -> tuple[str, ...]:
    where = letter.repo or (
        f"installation {letter.installation_id}" if letter.installation_id else "-"
    )
    cells = (
        letter.delivery_id,
        letter.event,
        where,
        str(letter.attempts),
        letter.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        " ".join(letter.reason.split()),  # an exception's message may span lines
    )
    return tuple(printable(cell) for cell in cells)  # ids and reasons come from outside
