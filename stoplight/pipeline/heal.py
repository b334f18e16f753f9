"""Noticing that Redis came back without its data, and rebuilding the state from GitHub.

A Redis restarted without its append-only file, failed over to an empty replica, or flushed
loses every key at once. A marker key, written once and never expiring, tells that apart
from a quiet hour: each worker looks for it at every maintenance, and one that finds it gone
writes it again (SET NX, so one worker wins) and queues one heal job. The job syncs every
installation from GitHub under the sync lock (the ledgers are seeded from what GitHub shows,
so no status or label is written twice), then asks GitHub to redeliver the deliveries that
failed since the marker was last seen: what the app may have answered 503 or not at all.
From the loss until the sync is done, effects passes wait (`stoplight.state.rebuild`).
With the lanes on a Redis of their own (REDIS_QUEUE_URL), each Redis holds a marker: losing
the lanes loses deliveries and jobs not yet applied, which the same heal recovers.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from stoplight.pipeline import fanout, redeliver, sync
from stoplight.pipeline.runtime import Runtime
from stoplight.state import keys, rebuild
from stoplight.transport import jobs
from stoplight.transport.jobs import REDELIVER_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

# Deliveries are redelivered from a little before the marker was last seen: the data may
# have gone just after that look.
SEEN_MARGIN = timedelta(minutes=1)
# A rebuild that finds a sync under way waits this long between looks at the sync lock.
BUSY_PAUSE_SECONDS = 5


class StateWatch:
    """One worker's memory of when it last saw Redis holding the app's data."""

    def __init__(self) -> None:
        self.last_seen: datetime | None = None

    def check(self, rt: Runtime) -> bool:
        """Look for the marker; when it is gone, write it and queue the heal. True when this
        worker queued it."""
        now = rt.clock.now()
        lost = [redis for redis in rt.redis_clients if not redis.exists(keys.STATE_MARKER)]
        # Every lost marker is written again; the worker whose SET NX wins one heals.
        written = [redis.set(keys.STATE_MARKER, now.isoformat(), nx=True) for redis in lost]
        if not any(written):
            self.last_seen = now
            return False
        rebuild.begin(rt.redis, now)
        since, self.last_seen = self.last_seen, now
        if since is None:
            # A first start on this Redis, or one with data from before the marker existed:
            # a sync is all that can be done, and it is harmless.
            log.info("no state marker in Redis: syncing every installation once")
        else:
            log.warning(
                "Redis lost its data (last seen at %s): syncing every installation from GitHub "
                "and asking for the deliveries that failed since",
                since.isoformat(timespec="seconds"),
            )
        started = since - SEEN_MARGIN if since else None
        rt.enqueue(
            jobs.heal_lost_state(started.timestamp() if started else None),
            job_id=f"heal-{int(now.timestamp())}",
            timeout=REDELIVER_TIMEOUT_SECONDS,
        )
        return True


def _rebuilt(rt: Runtime) -> None:
    """End the rebuild and set going the effects passes that waited for it."""
    rebuild.end(rt.redis)
    for installation_id, team in rebuild.take_waiters(rt.queue):
        fanout.request_effects(rt, installation_id, team)


def heal(rt: Runtime, since: datetime | None) -> None:
    """Rebuild the state from GitHub, then recover the deliveries that failed since `since`."""
    if rt.github is None:
        log.info("no GitHub App credentials yet: nothing to rebuild")
        _rebuilt(rt)
        return
    sync.ensure_sync_scheduled(rt)  # the schedule was in the lost data too
    report = sync.sync_all(rt)
    while report is None:  # a sync begun since the loss holds the lock: wait for it, then own
        time.sleep(BUSY_PAUSE_SECONDS)
        report = sync.sync_all(rt)
    _rebuilt(rt)
    log.info("state rebuilt from GitHub: %d installations", report.installations)
    if since is not None:
        redeliver.redeliver_since(rt, since)
