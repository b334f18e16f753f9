"""Deliveries answered 503 while Redis was down: sent again once it answers.

GitHub does not redeliver failed deliveries by itself. The web process remembers when the
outage began (in the process, not in Redis: Redis is what is down) and, as soon as Redis
answers again, queues one redelivery run for everything that failed since: at the first
delivery recorded again, or sooner, when a thread that looks every few seconds finds Redis
back (an org may send nothing for hours after the outage).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from redis.exceptions import RedisError

from stoplight.core.clock import Clock
from stoplight.transport import jobs
from stoplight.transport.jobs import REDELIVER_TIMEOUT_SECONDS
from stoplight.transport.lanes import Lanes

log = logging.getLogger(__name__)

# Deliveries GitHub sent shortly before the first 503 may have failed too.
OUTAGE_MARGIN = timedelta(minutes=1)
# How often the looking thread asks Redis, and for how long before it leaves it to the next
# delivery.
LOOK_EVERY_SECONDS = 3.0
LOOK_FOR_SECONDS = 3600.0


class StorageOutage:
    def __init__(self, clock: Clock, lanes: Lanes | None) -> None:
        self.clock = clock
        self.lanes = lanes
        self._since: datetime | None = None
        self._lock = threading.Lock()

    def failed(self) -> None:
        """A delivery was answered 503: remember when the outage began, and look for Redis."""
        with self._lock:
            if self._since is not None:
                return
            self._since = self.clock.now()
        threading.Thread(target=self._look_for_redis, name="outage", daemon=True).start()

    def _look_for_redis(self) -> None:
        deadline = time.monotonic() + LOOK_FOR_SECONDS
        while self._since is not None and time.monotonic() < deadline:
            time.sleep(LOOK_EVERY_SECONDS)
            try:
                if self.lanes is not None and self.lanes.redis.ping():
                    self.recovered()
            except RedisError:
                continue  # still away

    def recovered(self) -> None:
        """Redis answers again: have the deliveries failed meanwhile sent again."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None or self.lanes is None:
                return
            start = self._since - OUTAGE_MARGIN
            jobs.enqueue(
                self.lanes.shared,
                jobs.redeliver_since(start.timestamp()),
                job_id=f"redeliver-{int(start.timestamp())}",
                description=f"redeliver_since({start.isoformat()})",
                timeout=REDELIVER_TIMEOUT_SECONDS,
            )
            self._since = None  # only once the run is queued
        log.warning("storage is back: failed deliveries since %s will be redelivered", start)
