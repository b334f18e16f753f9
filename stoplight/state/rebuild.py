"""Whether the state is being rebuilt from GitHub after Redis lost its data.

From the loss until the rebuild's sync is done, the ledgers that tell an effects pass what
GitHub shows are empty or partial: a pass then would post statuses and labels GitHub already
shows. So passes wait while the state marker is gone (no worker has noticed yet) or the
rebuild flag is set (`stoplight.pipeline.heal` sets it when it queues the rebuild, and clears it
when the sync is done, then sets the waiting passes going).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from redis import Redis

from stoplight.state import keys
from stoplight.state.replies import text

# Effects wait at most this long for a rebuild, should its job be lost; a sync of 50
# repositories and 500 PRs takes well under a minute.
REBUILDING_SECONDS = 15 * 60


def rebuilding(redis: Redis) -> bool:
    with redis.pipeline(transaction=False) as pipe:
        pipe.exists(keys.STATE_MARKER)
        pipe.exists(keys.REBUILDING)
        marked, under_way = pipe.execute()
    return not marked or bool(under_way)


def mark_scratch(redis: Redis, now: datetime) -> None:
    """A Redis made for one run (a backtest's, a recomputation's) has lost nothing: mark it
    as holding the state, as a worker's first look would."""
    redis.set(keys.STATE_MARKER, now.isoformat())


def begin(redis: Redis, now: datetime) -> None:
    redis.set(keys.REBUILDING, now.isoformat(), ex=REBUILDING_SECONDS)


def end(redis: Redis) -> None:
    redis.delete(keys.REBUILDING)


def wait(queue: Redis, installation_id: int, team: str) -> None:
    """Note on the lanes' Redis that the team's effects wait for the rebuild."""
    queue.sadd(keys.REBUILD_WAITERS, f"{installation_id}/{team}")


def take_waiters(queue: Redis) -> list[tuple[int, str]]:
    """The (installation id, team) of every effects pass that waited, forgotten as taken."""
    # SPOP with a count replies with a list of members; redis-py types it loosely.
    members = cast(list[bytes | str], queue.spop(keys.REBUILD_WAITERS, count=2**31 - 1) or [])
    waiters = [text(member).partition("/") for member in members]
    return sorted((int(installation), team) for installation, _, team in waiters)
