"""The RQ worker that runs every job, with RQ's scheduler for timed re-evaluations.

A worker killed mid-job (SIGKILL, a lost machine) leaves its job in RQ's started registry
until the entry expires; the next maintenance of any worker then retries it (every job carries
retries). Entry lifetime plus maintenance interval plus the first retry stays under a minute.

A worker takes from the shared lane and the backlog lane in turn (see `stoplight.lanes`). It
moves a job out of its lane the way RQ does for a single queue, into the lane's intermediate
list, so a worker killed between taking a job and starting it leaves the job to be found.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker
from rq.exceptions import DequeueTimeout, NoSuchJobError
from rq.job import Job
from rq.utils import now as rq_now
from rq.worker import DequeueStrategy

from stoplight import metrics
from stoplight.lanes import SHARED
from stoplight.runtime import JOB_TIMEOUT_SECONDS, Runtime
from stoplight.sync import ensure_sync_scheduled

# How often a worker looks for jobs whose worker died, and puts them back.
MAINTENANCE_SECONDS = 15
# Time past a job's timeout before it counts as abandoned: RQ's own death penalty ends a
# job at its timeout, so this only needs to cover the failure handling after it.
ABANDON_GRACE_SECONDS = 10
# An idle worker waits on the shared lane, where new deliveries arrive, and looks at the
# backlog (where retries of backlog jobs come back) this often.
IDLE_LOOK_SECONDS = 1


class Lane(Queue):
    @classmethod
    def dequeue_any(
        cls,
        queues: Iterable[Queue],
        timeout: int | None,
        connection: Redis,
        job_class: type[Job] | None = None,
        serializer: Any = None,
        death_penalty_class: Any = None,
    ) -> tuple[Job, Queue] | None:
        """The first job waiting in `queues`, in their order; None at once when all are
        empty and `timeout` is None, else DequeueTimeout once a short wait finds nothing."""
        lanes = list(queues)
        fetch = (job_class or Job).fetch
        while True:
            taken = _take(lanes, timeout, connection)
            if taken is None:
                return None
            lane, job_id = taken
            try:
                return fetch(job_id, connection=connection, serializer=serializer), lane
            except NoSuchJobError:
                connection.lrem(lane.intermediate_queue_key, 1, job_id)


def _take(lanes: list[Queue], timeout: int | None, connection: Redis) -> tuple[Queue, str] | None:
    for lane in lanes:
        job_id = connection.lmove(lane.key, lane.intermediate_queue_key)
        if job_id is not None:
            return lane, job_id.decode()
    if timeout is None:
        return None
    shared = next((lane for lane in lanes if lane.name == SHARED), lanes[0])
    wait = min(timeout, IDLE_LOOK_SECONDS)
    job_id = connection.blmove(shared.key, shared.intermediate_queue_key, wait)
    if job_id is None:
        raise DequeueTimeout(wait, [lane.key for lane in lanes])
    return shared, job_id.decode()


class StoplightWorker(SimpleWorker):
    # Jobs are small and many: running them in the worker process spares a fork per job.

    def work(self, *args: Any, **kwargs: Any) -> bool:
        # After a job from one lane, the other lane goes first.
        kwargs.setdefault("dequeue_strategy", DequeueStrategy.ROUND_ROBIN)
        return super().work(*args, **kwargs)

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        # RQ clears the intermediate list only when a worker has one queue; Lane fills it always.
        super().prepare_job_execution(job, remove_from_intermediate_queue=True)
        if job.enqueued_at is not None:  # RQ stamps enqueue times with its own clock
            waited = (rq_now() - job.enqueued_at).total_seconds()
            metrics.JOB_LATENCY.observe(self.connection, waited, job.origin)

    def get_heartbeat_ttl(self, job: Job) -> int:
        # RQ adds a fixed minute; a shorter grace keeps recovery from a dead worker fast.
        return int(job.timeout or JOB_TIMEOUT_SECONDS) + ABANDON_GRACE_SECONDS


def build_worker(rt: Runtime, name: str | None = None) -> StoplightWorker:
    return StoplightWorker(
        [lane.name for lane in rt.lanes.queues],
        connection=rt.redis,
        queue_class=Lane,
        name=name,
        maintenance_interval=MAINTENANCE_SECONDS,
    )


def run_worker(rt: Runtime, *, burst: bool = False) -> None:
    if rt.github is not None:
        ensure_sync_scheduled(rt)
    build_worker(rt).work(with_scheduler=True, burst=burst, logging_level=rt.settings.log_level)
