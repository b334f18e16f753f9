"""Installation deliveries: the app installed, removed, suspended, or given repositories."""

from __future__ import annotations

import logging

from stoplight.core.changes import (
    InstallationChange,
)
from stoplight.pipeline.context import InstallationContext
from stoplight.pipeline.lights import refresh_team
from stoplight.state.installations import Installation
from stoplight.state.keys import job_id
from stoplight.transport import jobs

# As long as GitHub may redeliver a delivery sent before an uninstall.
# A sync reads many pages; it may take longer than other jobs (see sync.py).
log = logging.getLogger(__name__)

SYNC_TIMEOUT_SECONDS = 30 * 60


def apply_installation_change(ctx: InstallationContext, change: InstallationChange) -> None:
    rt, installation_id, store = ctx.runtime, ctx.installation_id, ctx.store
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
            refresh_team(ctx, team)
    if change.action in ("created", "unsuspend", "added") and ctx.github.reachable:
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
