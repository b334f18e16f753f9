"""Deliveries answered 503 while Redis was down: sent again once it answers.

GitHub does not redeliver failed deliveries by itself. The web process remembers when the
outage began (in the process, not in Redis: Redis is what is down) and, at the first delivery
recorded again, queues one redelivery run for everything that failed since.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from stoplight.core.clock import Clock
from stoplight.pipeline.lanes import Lanes
from stoplight.pipeline.runtime import JOB_RETRY, REDELIVER_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

# Deliveries GitHub sent shortly before the first 503 may have failed too.
OUTAGE_MARGIN = timedelta(minutes=1)


class StorageOutage:
    def __init__(self, clock: Clock, lanes: Lanes | None) -> None:
        self.clock = clock
        self.lanes = lanes
        self._since: datetime | None = None
        self._lock = threading.Lock()

    def failed(self) -> None:
        """A delivery was answered 503: remember when the outage began."""
        with self._lock:
            if self._since is None:
                self._since = self.clock.now()

    def recovered(self) -> None:
        """Redis answers again: have the deliveries failed meanwhile sent again."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None or self.lanes is None:
                return
            start = self._since - OUTAGE_MARGIN
            self.lanes.shared.enqueue_call(
                "stoplight.jobs.redeliver_since",
                args=(start.timestamp(),),
                job_id=f"redeliver-{int(start.timestamp())}",
                description=f"redeliver_since({start.isoformat()})",
                retry=JOB_RETRY,
                timeout=REDELIVER_TIMEOUT_SECONDS,
            )
            self._since = None  # only once the run is queued
        log.warning("storage is back: failed deliveries since %s will be redelivered", start)
