"""The RQ worker that runs every job, with RQ's scheduler for timed re-evaluations.

A worker killed mid-job (SIGKILL, a lost machine) leaves its job in RQ's started registry
until the entry expires; the next maintenance of any worker then retries it (every job carries
retries). Entry lifetime plus maintenance interval plus the first retry stays under a minute.
"""

from __future__ import annotations

from rq import SimpleWorker
from rq.job import Job

from stoplight.runtime import JOB_TIMEOUT_SECONDS, Runtime
from stoplight.sync import ensure_sync_scheduled

# How often a worker looks for jobs whose worker died, and puts them back.
MAINTENANCE_SECONDS = 15
# Time past a job's timeout before it counts as abandoned: RQ's own death penalty ends a
# job at its timeout, so this only needs to cover the failure handling after it.
ABANDON_GRACE_SECONDS = 10


class StoplightWorker(SimpleWorker):
    # Jobs are small and many: running them in the worker process spares a fork per job.

    def get_heartbeat_ttl(self, job: Job) -> int:
        # RQ adds a fixed minute; a shorter grace keeps recovery from a dead worker fast.
        return int(job.timeout or JOB_TIMEOUT_SECONDS) + ABANDON_GRACE_SECONDS


def build_worker(rt: Runtime, name: str | None = None) -> StoplightWorker:
    return StoplightWorker(
        [rt.queue],
        connection=rt.redis,
        name=name,
        maintenance_interval=MAINTENANCE_SECONDS,
    )


def run_worker(rt: Runtime, *, burst: bool = False) -> None:
    if rt.github is not None:
        ensure_sync_scheduled(rt)
    build_worker(rt).work(with_scheduler=True, burst=burst, logging_level=rt.settings.log_level)
