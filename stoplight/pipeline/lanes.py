"""Two job lanes, so one installation's flood of deliveries cannot starve the others' jobs.

Workers take jobs from the shared lane and the backlog lane in turn. A delivery goes to the
shared lane while fewer than `SHARE` of its installation's deliveries wait there; the rest of
a burst waits in the backlog. A delivery from a quiet installation so waits behind at most
`SHARE` deliveries of each busy installation (and as many backlog jobs), however many the
busy ones sent. Work a job sets off follows it into its lane; timed jobs wait in the shared
lane's schedule.

Which lane is a choice of speed, never of correctness: handlers take deliveries in any order,
and a count left behind by a lost job is forgotten after `STALE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis
from rq import Queue
from rq.job import Job

from stoplight.state import keys

SHARED = "stoplight"
BACKLOG = "stoplight-backlog"
# Deliveries of one installation allowed to wait in the shared lane at once.
SHARE = 10
# A delivery counted as waiting for longer than this is taken to be gone.
STALE = timedelta(minutes=10)
_STALE_MS = int(STALE.total_seconds() * 1000)

# Lua that sets `shared` to whether a delivery goes to the shared lane, counting it there.
# `waiting`: the installation's waiting deliveries (sorted set, by ms); `delivery`, `now_ms`,
# `stale_before_ms`, `share`, `lifetime_ms`: its id, the time, and the settings below. Intake
# runs it inside its own script, so recording a delivery stays one round trip.
CHOOSE_LUA = """
redis.call('ZREMRANGEBYSCORE', waiting, '-inf', stale_before_ms)
local shared = true
if not redis.call('ZSCORE', waiting, delivery) then
  if redis.call('ZCARD', waiting) >= tonumber(share) then
    shared = false
  else
    redis.call('ZADD', waiting, now_ms, delivery)
    redis.call('PEXPIRE', waiting, lifetime_ms)
  end
end
"""


def choice_arguments(delivery_id: str, now: datetime) -> list[str | int]:
    """The values CHOOSE_LUA reads after `waiting`, in order."""
    now_ms = int(now.timestamp() * 1000)
    return [delivery_id, now_ms, now_ms - _STALE_MS, SHARE, _STALE_MS]


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

    def leave(self, installation_id: int, delivery_id: str) -> None:
        """The delivery's job has started: it no longer waits."""
        self.redis.zrem(keys.InstallationKeys(installation_id).waiting_deliveries, delivery_id)

    def following(self, job: Job | None) -> Queue:
        """The lane for work `job` sets off: the backlog's work stays in the backlog."""
        if job is not None and job.origin == self.backlog.name:
            return self.backlog
        return self.shared
