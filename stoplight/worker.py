"""The RQ worker that runs every job, with RQ's scheduler for timed re-evaluations."""

from __future__ import annotations

from rq import SimpleWorker

from stoplight.runtime import Runtime

# How often a worker looks for jobs whose worker died, and puts them back: under a minute.
MAINTENANCE_SECONDS = 30


def build_worker(rt: Runtime, name: str | None = None) -> SimpleWorker:
    # Jobs are small and many: running them in the worker process spares a fork per job.
    return SimpleWorker(
        [rt.queue],
        connection=rt.redis,
        name=name,
        maintenance_interval=MAINTENANCE_SECONDS,
    )


def run_worker(rt: Runtime, *, burst: bool = False) -> None:
    build_worker(rt).work(with_scheduler=True, burst=burst, logging_level=rt.settings.log_level)
