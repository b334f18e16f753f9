"""The RQ worker that runs every job, with RQ's scheduler for timed re-evaluations.

A worker killed mid-job (SIGKILL, a lost machine) is noticed within seconds. While a job runs,
a heartbeat thread renews the job's entry in RQ's started registry every couple of seconds; the
entry of a dead worker's job lapses a few seconds later, and the next maintenance of any worker
(every few seconds) retries the job (every job carries retries). Retries and timed jobs go
through RQ's scheduler, which takes a lock per lane and keeps it for a minute after its holder
dies; a worker that sees the holder's heartbeat stand still frees the lock, and a worker that
sees a lane's lock free restarts its scheduler to take it (RQ's running scheduler would look
for free locks only every two minutes, and the lane's retries would wait that long).

Deliveries wait in the lanes' streams (see `stoplight.transport.streams`): between RQ jobs
the worker applies a batch of them, and an idle worker waits on the streams for a moment
before it looks at RQ's lanes again. A worker takes from the shared lane and the backlog lane
in turn (see `stoplight.transport.lanes`). It moves a job out of its lane the way RQ does for
a single queue, into the lane's intermediate list, so a worker killed between taking a job
and starting it leaves the job to be found.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import NoSuchJobError, StopRequested
from rq.job import Job
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock
from rq.utils import now as rq_now
from rq.worker import DequeueStrategy, WorkerStatus

from stoplight import metrics
from stoplight.ops.heal import StateWatch
from stoplight.ops.sync import ensure_sync_scheduled
from stoplight.pipeline.runtime import Runtime
from stoplight.state.replies import text
from stoplight.transport.beats import repeating
from stoplight.transport.streams import DeliveryStreams

log = logging.getLogger(__name__)

# How often a worker looks for jobs whose worker died, and puts them back.
MAINTENANCE_SECONDS = 3
# A running job's entry in the started registry is renewed this often, and lapses (the job
# counts as abandoned) this long after the last renewal.
JOB_HEARTBEAT_SECONDS = 2
JOB_HEARTBEAT_TTL = 6
# RQ's scheduler beats every second; one whose beat stood still this long is dead.
SCHEDULER_SILENT_SECONDS = 6
# An idle worker waits for deliveries on the streams, and looks at RQ's lanes this often.
IDLE_LOOK_MS = 500
# A worker that stopped on an error starts again after a pause, doubled up to a minute while
# the trouble lasts, and back to the first once a worker has run this long.
RESTART_PAUSE_SECONDS = 1.0
RESTART_PAUSE_LIMIT_SECONDS = 60.0
RESTART_RESET_SECONDS = 120.0


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
        """The first job waiting in `queues`, in their order, or None; it never waits (the
        worker waits on the delivery streams instead)."""
        lanes = list(queues)
        fetch = (job_class or Job).fetch
        while (taken := _take(lanes, connection)) is not None:
            lane, job_id = taken
            try:
                return fetch(job_id, connection=connection, serializer=serializer), lane
            except NoSuchJobError:
                connection.lrem(lane.intermediate_queue_key, 1, job_id)
        return None


def _take(lanes: list[Queue], connection: Redis) -> tuple[Queue, str] | None:
    for lane in lanes:
        job_id = connection.lmove(lane.key, lane.intermediate_queue_key)
        if job_id is not None:
            return lane, text(job_id)
    return None


class StoplightWorker(SimpleWorker):
    # Jobs are small and many: running them in the worker process spares a fork per job.

    def __init__(self, rt: Runtime, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rt = rt
        self.stopping = False  # a stop was asked for (SIGINT, SIGTERM)
        self.scheduler_watch = SchedulerWatch()
        self.state_watch = StateWatch()
        self.delivery_streams = DeliveryStreams(rt, self.name)

    def request_stop(self, signum: int, frame: Any) -> None:
        # RQ raises StopRequested or sets a flag, as the worker is idle or busy: either way
        # this worker is done, and `run_worker` must not start another.
        self.stopping = True
        super().request_stop(signum, frame)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        # After a job from one lane, the other lane goes first.
        kwargs.setdefault("dequeue_strategy", DequeueStrategy.ROUND_ROBIN)
        self.delivery_streams.ensure_groups()
        return super().work(*args, **kwargs)

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Apply a batch of deliveries, then take an RQ job, in turn; idle, wait for
        deliveries briefly and look again. In burst mode (no `timeout`), None once the
        streams and the lanes are all empty; None too once a stop is requested."""
        streams = self.delivery_streams
        entries = streams.read()
        while True:
            if entries:
                self.set_state(WorkerStatus.BUSY)  # a warm stop waits for the batch
                streams.apply(entries)
            if self._stop_requested:
                return None
            taken = super().dequeue_job_and_maintain_ttl(None)
            if taken is not None:
                return taken
            if not entries and timeout is None:
                return None
            entries = streams.read(block_ms=None if entries else IDLE_LOOK_MS)

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        # RQ clears the intermediate list only when a worker has one queue; Lane fills it always.
        super().prepare_job_execution(job, remove_from_intermediate_queue=True)
        if job.enqueued_at is not None:  # RQ stamps enqueue times with its own clock
            waited = (rq_now() - job.enqueued_at).total_seconds()
            metrics.JOB_LATENCY.observe(self.connection, waited, job.origin)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # RQ's SimpleWorker covers a whole job's timeout plus a minute; the heartbeat thread
        # renews a short entry instead, so a dead worker's job is found within seconds.
        return JOB_HEARTBEAT_TTL

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        renew = functools.partial(self.maintain_heartbeats, job, execution)
        with repeating(JOB_HEARTBEAT_SECONDS, renew, f"heartbeat of job {job.id}"):
            self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def run_maintenance_tasks(self) -> None:
        self.state_watch.check(self.rt)  # first: a Redis that lost its data is healed
        self.register_again_if_forgotten()
        if self.scheduler is not None:
            lanes = [q.name for q in self.queues]
            self.scheduler_watch.free_dead_locks(self.connection, lanes)
            self.take_free_scheduler_locks(lanes)
        super().run_maintenance_tasks()
        self.delivery_streams.reclaim()
        self.delivery_streams.forget_stopped_consumers()

    def take_free_scheduler_locks(self, lanes: list[str]) -> None:
        """A lane whose scheduler lock nobody holds has its timed jobs and retries wait: a
        scheduler takes every free lock when it starts, so this worker's starts again."""
        assert self.scheduler is not None
        free = [
            lane for lane in lanes if not self.connection.exists(RQScheduler.get_locking_key(lane))
        ]
        if not free:
            return
        log.info("scheduler locks of %s are free: this worker's scheduler takes them", free)
        self.stop_scheduler()  # it releases the locks it holds, to take them again at once
        self.scheduler.acquire_locks(auto_start=True)

    def register_again_if_forgotten(self) -> None:
        """A Redis that lost its data forgot this worker with the rest, and its heartbeats
        only touch its own key: without its place in RQ's worker registry, /readyz and
        `rq info` would see no worker for ever."""
        if self.connection.sismember(self.redis_workers_keys, self.key):
            return
        log.warning("Redis no longer knew worker %s: registered it again", self.name)
        self.connection.delete(self.key)  # what the heartbeats wrote since is no birth record
        self.register_birth()


class SchedulerWatch:
    """Frees the scheduler lock of a dead scheduler, which RQ would hold for a minute.

    A scheduler's heartbeat is a time its own host writes each second; the watch compares
    that value between maintenance runs on this host's monotonic clock, so clocks of
    different hosts never meet.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._seen: dict[str, tuple[bytes | str | None, float]] = {}

    def free_dead_locks(self, connection: Redis, queue_names: list[str]) -> None:
        owners = {name: connection.get(RQScheduler.get_locking_key(name)) for name in queue_names}
        live = {text(owner) for owner in owners.values() if owner is not None}
        self._seen = {name: seen for name, seen in self._seen.items() if name in live}
        for name, owner in owners.items():
            if owner is None:
                continue
            lock = RQScheduler.get_locking_key(name)
            scheduler = text(owner)
            beat = connection.hget(SCHEDULER_KEY_TEMPLATE % scheduler, "last_heartbeat")
            if self._stood_still(scheduler, beat) and release_lock(connection, lock, scheduler):
                log.warning(
                    "scheduler %s stopped beating: its lock on %s is freed", scheduler, name
                )

    def _stood_still(self, scheduler: str, beat: bytes | str | None) -> bool:
        now = self.monotonic()
        seen = self._seen.get(scheduler)
        if seen is None or seen[0] != beat:
            self._seen[scheduler] = (beat, now)
            return False
        return now - seen[1] >= SCHEDULER_SILENT_SECONDS


def build_worker(rt: Runtime, name: str | None = None) -> StoplightWorker:
    return StoplightWorker(
        rt,
        [lane.name for lane in rt.lanes.queues],
        connection=rt.queue,
        queue_class=Lane,
        name=name,
        maintenance_interval=MAINTENANCE_SECONDS,
    )


def run_worker(
    rt: Runtime,
    *,
    burst: bool = False,
    sleep: Callable[[float], object] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Work until asked to stop. RQ's work loop quits on any error it did not expect, and a
    Redis away for longer than the connection's retries is one: a worker then starts afresh,
    after a pause that grows while Redis stays away, so a long outage costs a line a minute
    at most, and a worker is back within a pause of Redis."""
    pause = RESTART_PAUSE_SECONDS
    while True:
        started = monotonic()
        worker: StoplightWorker | None = None
        try:
            if rt.github is not None:
                ensure_sync_scheduled(rt)
            worker = build_worker(rt)
            worker.work(with_scheduler=True, burst=burst, logging_level=rt.settings.log_level)
        except RedisError as error:
            trouble = f"Redis does not answer ({error})"
        else:
            trouble = "the worker stopped on an error"
        if burst or (worker is not None and worker.stopping):
            return
        log.warning("%s: a new worker starts in %.0f s", trouble, pause)
        if monotonic() - started > RESTART_RESET_SECONDS:
            pause = RESTART_PAUSE_SECONDS  # it ran a good while: the trouble is new
        try:
            sleep(pause)
        except StopRequested:  # a signal meanwhile: the stopped worker's handler raises it
            return
        pause = min(pause * 2, RESTART_PAUSE_LIMIT_SECONDS)
