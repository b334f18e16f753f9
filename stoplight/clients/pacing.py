"""A budget of GitHub writes per installation, shared by every worker process through Redis.

GitHub's secondary limits ask for a second between content-creating requests, about 80 a
minute and 500 an hour per installation; a throttled installation may be shut out for an
hour. One Lua script decides each write atomically, so processes never race past the budget,
and a pause GitHub asks for (Retry-After, a primary limit's reset) stops every write of that
installation until it ends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis

from stoplight.core.clock import Clock, from_timestamp
from stoplight.state import keys

# KEYS: writes (ZSET member -> ms), paused-until (ms)
# ARGV: now ms, member, min gap ms, per minute, per hour
# Returns 0 when the write may go now (and records it), else the ms it may be tried again.
_ACQUIRE = """
local now = tonumber(ARGV[1])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return paused end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
local last = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if last[2] and now - tonumber(last[2]) < tonumber(ARGV[3]) then
  return tonumber(last[2]) + tonumber(ARGV[3])
end
local function window(span, limit)
  local count = redis.call('ZCOUNT', KEYS[1], now - span + 1, '+inf')
  if count < limit then return 0 end
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], now - span + 1, '+inf',
    'WITHSCORES', 'LIMIT', count - limit, 1)
  return tonumber(oldest[2]) + span
end
local later = math.max(window(60000, tonumber(ARGV[4])), window(3600000, tonumber(ARGV[5])))
if later > 0 then return later end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], 3600000)
return 0
"""

# KEYS: paused-until; ARGV: until ms, now ms. A pause only ever grows. The key outlives the
# pause by an hour rather than expiring at it: the moment is the app's clock, not Redis's.
_PAUSE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if wanted > current then
  redis.call('SET', KEYS[1], wanted, 'PX', math.max(wanted - tonumber(ARGV[2]), 0) + 3600000)
end
return math.max(current, wanted)
"""


@dataclass(frozen=True)
class WriteBudget:
    min_gap: timedelta = timedelta(seconds=1)
    per_minute: int = 80
    per_hour: int = 500


# What GitHub documents for content-creating requests.
GITHUB_BUDGET = WriteBudget()


class Pacer:
    def __init__(self, redis: Redis, clock: Clock, budget: WriteBudget = GITHUB_BUDGET) -> None:
        self.clock = clock
        self.budget = budget
        self._acquire = redis.register_script(_ACQUIRE)
        self._pause = redis.register_script(_PAUSE)

    def acquire(self, installation_id: int) -> datetime | None:
        """Take one write from the budget: None when it may go now, else when to try again."""
        installation = keys.InstallationKeys(installation_id)
        answer = int(
            self._acquire(
                keys=[installation.writes, installation.writes_paused],
                args=[
                    _ms(self.clock.now()),
                    uuid.uuid4().hex,
                    int(self.budget.min_gap.total_seconds() * 1000),
                    self.budget.per_minute,
                    self.budget.per_hour,
                ],
            )
        )
        return None if answer == 0 else from_timestamp(answer / 1000)

    def pause(self, installation_id: int, until: datetime) -> datetime:
        """No write for this installation before `until` (or a later pause already set)."""
        paused = keys.InstallationKeys(installation_id).writes_paused
        return from_timestamp(
            int(self._pause(keys=[paused], args=[_ms(until), _ms(self.clock.now())])) / 1000
        )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
