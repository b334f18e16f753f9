"""Installation deliveries: the app installed, removed, suspended, or given repositories."""

from __future__ import annotations

import logging

from stoplight.core.changes import (
    InstallationChange,
)
from stoplight.pipeline.lights import refresh_team
from stoplight.pipeline.runtime import Runtime, job_id
from stoplight.state.installations import Installation
from stoplight.state.review_queue import QueueStore
from stoplight.transport import jobs

# As long as GitHub may redeliver a delivery sent before an uninstall.
# A sync reads many pages; it may take longer than other jobs (see sync.py).
log = logging.getLogger(__name__)

SYNC_TIMEOUT_SECONDS = 30 * 60


def apply_installation_change(
    rt: Runtime, installation_id: int, change: InstallationChange
) -> None:
    store = QueueStore(rt.redis, installation_id)
    installation = Installation(rt.redis, installation_id)
    if change.action == "deleted":
        installation.forget()
        log.info("installation %s deleted: its state is gone", installation_id)
        return
    installation.grant(
        added=(repo.id for repo in change.added), removed=(repo.id for repo in change.removed)
    )
    for repo in change.removed:
        for team in store.forget_repository(repo.full_name, rt.clock.now()):
            refresh_team(rt, installation_id, team)
    if change.action in ("created", "unsuspend", "added") and rt.github is not None:
        # New repositories come with open PRs no delivery will tell about: read them.
        rt.enqueue(
            jobs.sync_installation(installation_id),
            job_id=job_id("sync", installation_id),
            timeout=SYNC_TIMEOUT_SECONDS,
        )
    log.info(
        "installation %s %s: +%d repositories, -%d",
        installation_id,
        change.action,
        len(change.added),
        len(change.removed),
    )
