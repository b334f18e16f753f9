"""Merge queues: the `stoplight` status of a merge group's head commit, `success` at once.

A delivery queues a job for the commit; the job posts through the status ledger, so a
redelivered `checks_requested` posts nothing twice, and within the installation's write
budget, like every other write. GitHub failing is the job's retry.
"""

from __future__ import annotations

import logging

from stoplight.clients.github import WriteDeferred
from stoplight.config.repos import RepoConfigs
from stoplight.core.changes import MergeGroupChange
from stoplight.core.marks import Status
from stoplight.effects.plan import team_url
from stoplight.pipeline.context import InstallationContext
from stoplight.state import rebuild
from stoplight.state.installations import Installation, admission_of
from stoplight.state.keys import job_id
from stoplight.transport import jobs

log = logging.getLogger(__name__)

MERGE_GROUP_DESCRIPTION = "Merge queue entry: Stoplight does not hold merges"


def apply_merge_group_change(ctx: InstallationContext, change: MergeGroupChange) -> None:
    """Queue the status of a live installation's repository; others' groups are ignored."""
    rt, installation_id = ctx.runtime, ctx.installation_id
    with rt.redis.pipeline(transaction=False) as reads:
        Installation(rt.redis, installation_id).read_admission(reads, change.repo_id)
        admission = admission_of(*reads.execute())
    if admission.deleted or not admission.granted:
        log.info("merge group on %s ignored: not a repository of a live installation", change.repo)
        return
    rt.enqueue(
        jobs.post_merge_group_status(installation_id, change.repo, change.head_sha),
        job_id=job_id("merge-group", installation_id, change.repo, change.head_sha),
    )


def post_merge_group_status(ctx: InstallationContext, repo: str, sha: str) -> None:
    """Post `success` on the group's commit unless it shows it already; a write the budget
    puts off is scheduled for the moment it may go. While Redis's lost state is rebuilt,
    the commit's ledger is read from GitHub first (one read), as it may show it already."""
    rt, installation_id = ctx.runtime, ctx.installation_id
    team = RepoConfigs(rt.redis, installation_id).team_of_repository(repo).key
    status = Status(
        "success", MERGE_GROUP_DESCRIPTION, team_url(rt.settings.base_url, installation_id, team)
    )
    statuses = ctx.github.statuses
    if rebuild.rebuilding(rt.redis):
        statuses.learn(repo, sha)
    try:
        statuses.set(repo, sha, status)
    except WriteDeferred as deferred:
        log.info("merge group status on %s@%s waits until %s", repo, sha[:7], deferred.until)
        rt.schedule(
            deferred.until,
            jobs.post_merge_group_status(installation_id, repo, sha),
            job_id=job_id("merge-group-deferred", installation_id, repo, sha),
        )
