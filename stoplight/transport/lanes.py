"""Two job lanes, so one installation's flood of deliveries cannot starve the others' jobs.

Each lane is a Redis Stream of deliveries, which workers read in batches through a consumer
group, and an RQ queue for the work deliveries set off (effects passes, notices, syncs).
Workers take from the shared lane and the backlog lane in turn. A delivery goes to the
shared lane while fewer than `SHARE` of its installation's deliveries wait there; the rest of
a burst waits in the backlog. A delivery from a quiet installation so waits behind at most
`SHARE` deliveries of each busy installation (and as many backlog jobs), however many the
busy ones sent. Work a job sets off follows it into its lane; timed jobs wait in the shared
lane's schedule.

Which lane is a choice of speed, never of correctness: handlers take deliveries in any order,
and a count left behind by a lost job is forgotten after `STALE`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis
from rq import Queue
from rq.job import Job

from stoplight.state import keys

SHARED = "stoplight"
BACKLOG = "stoplight-backlog"
# The consumer group every worker reads the lanes' delivery streams in.
WORKERS_GROUP = "workers"
# Deliveries of one installation allowed to wait in the shared lane at once.
SHARE = 10
# A delivery counted as waiting for longer than this is taken to be gone.
STALE = timedelta(minutes=10)
_STALE_MS = int(STALE.total_seconds() * 1000)

# Lua defining `in_shared_lane(waiting, delivery, now_ms, stale_before_ms, share,
# lifetime_ms)`: whether a delivery goes to the shared lane, counting it there. `waiting`:
# the installation's waiting deliveries (sorted set, by ms); the others: the delivery's id,
# the time, and the settings below (`choice_arguments`). Intake calls it inside its own
# script, so recording a delivery stays one round trip.
CHOOSE_LUA = """
local function in_shared_lane(waiting, delivery, now_ms, stale_before_ms, share, lifetime_ms)
  redis.call('ZREMRANGEBYSCORE', waiting, '-inf', stale_before_ms)
  if redis.call('ZSCORE', waiting, delivery) then return true end
  if redis.call('ZCARD', waiting) >= tonumber(share) then return false end
  redis.call('ZADD', waiting, now_ms, delivery)
  redis.call('PEXPIRE', waiting, lifetime_ms)
  return true
end
"""


def choice_arguments(delivery_id: str, now: datetime) -> list[str | int]:
    """The arguments `in_shared_lane` takes after `waiting`, in order."""
    now_ms = int(now.timestamp() * 1000)
    return [delivery_id, now_ms, now_ms - _STALE_MS, SHARE, _STALE_MS]


def delivery_stream(lane: str) -> str:
    """The key of a lane's stream of deliveries."""
    return f"stoplight:deliveries:{lane}"


# The lane of the delivery a worker is applying outside any RQ job, for `Lanes.following`.
_delivery_lane: ContextVar[str | None] = ContextVar("delivery_lane", default=None)


@contextmanager
def applying_from(lane: str) -> Iterator[None]:
    """Work set off while a delivery of `lane` is applied follows it into that lane."""
    token = _delivery_lane.set(lane)
    try:
        yield
    finally:
        _delivery_lane.reset(token)


@dataclass(frozen=True)
class Lanes:
    shared: Queue
    backlog: Queue

    @classmethod
    def on(cls, redis: Redis) -> Lanes:
        shared, backlog = Queue(SHARED, connection=redis), Queue(BACKLOG, connection=redis)
        return cls(shared, backlog)

    @property
    def redis(self) -> Redis:
        return self.shared.connection

    @property
    def queues(self) -> list[Queue]:
        return [self.shared, self.backlog]

    @property
    def streams(self) -> list[str]:
        """The lanes' delivery streams, in the order workers read them."""
        return [delivery_stream(lane.name) for lane in self.queues]

    def waiting_deliveries(self) -> dict[str, int]:
        """Deliveries each lane holds, not yet applied (taken or not), by lane name."""
        with self.redis.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xlen(stream)
            lengths = pipe.execute()
        return {lane.name: int(n) for lane, n in zip(self.queues, lengths, strict=True)}

    def leave(self, installation_id: int, delivery_id: str) -> None:
        """The delivery's job has started: it no longer waits."""
        self.redis.zrem(keys.InstallationKeys(installation_id).waiting_deliveries, delivery_id)

    def following(self, job: Job | None) -> Queue:
        """The lane for work `job` (or the delivery being applied) sets off: the backlog's
        work stays in the backlog."""
        origin = job.origin if job is not None else _delivery_lane.get()
        return self.backlog if origin == self.backlog.name else self.shared
