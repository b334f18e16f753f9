"""The worker: one loop of its own over the lanes' delivery streams and RQ's lanes, with RQ's
scheduler for timed jobs and retries.

The loop applies a batch of deliveries, then runs one RQ job, in turn; an idle worker waits
on the streams for a moment before it looks at RQ's lanes again. RQ serves through its
public API: `SimpleWorker` runs a job (its registries, retries and results: `execute_job`),
registers the worker and cleans the registries; `RQScheduler` moves due jobs into their lane.
A worker takes from the shared lane and the backlog lane in turn (see
`stoplight.transport.lanes`), moving a job out of its lane the way RQ does for a single
queue, into the lane's intermediate list, so a worker killed between taking a job and
starting it leaves the job to be found.

A worker killed mid-job (SIGKILL, a lost machine) is noticed within seconds. While a job runs,
a heartbeat thread renews the job's entry in RQ's started registry every couple of seconds; the
entry of a dead worker's job lapses a few seconds later, and the next maintenance of any worker
(every few seconds) retries the job (every job carries retries). Retries and timed jobs go
through RQ's scheduler, which takes a lock per lane and keeps it for a minute after its holder
dies; a worker that sees the holder's heartbeat stand still frees the lock, and a worker that
sees a lane's lock free restarts its scheduler to take it (RQ's running scheduler would look
for free locks only every two minutes, and the lane's retries would wait that long).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from types import FrameType

from redis import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker
from rq.exceptions import NoSuchJobError, StopRequested
from rq.job import Job
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.scripts import release_lock
from rq.utils import now as rq_now
from rq.worker import WorkerStatus

from stoplight import metrics
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

# Maintenance the pipeline adds to the transport's (a Redis that lost its data is healed).
Maintenance = Callable[[], object]


class StoplightWorker(SimpleWorker):
    # Jobs are small and many: running them in the worker process spares a fork per job.

    def __init__(
        self,
        lanes: list[Queue],
        connection: Redis,
        streams: DeliveryStreams,
        maintenance: Maintenance,
        name: str | None = None,
    ) -> None:
        super().__init__(
            lanes, connection=connection, name=name, maintenance_interval=MAINTENANCE_SECONDS
        )
        self.delivery_streams = streams
        self.maintenance = maintenance
        self.stopping = False  # a stop was asked for (SIGINT, SIGTERM)
        self._busy = False  # a batch or a job runs: a stop waits for it
        self._next_lane = 0
        self.schedules: Schedules | None = None

    def work(  # type: ignore[override]  # a loop of its own, not RQ's
        self,
        burst: bool = False,
        logging_level: str = "INFO",
        max_idle_seconds: float | None = None,
        with_scheduler: bool = False,
    ) -> bool:
        """Work until asked to stop; in burst mode, until the streams and the lanes are all
        empty; with `max_idle_seconds`, until idle that long. False when it stopped on an
        error, which it logs (a Redis away for longer than the connection's retries)."""
        self.bootstrap(logging_level)
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        if with_scheduler:
            self.schedules = Schedules(self.connection, self.queues, logging_level, burst)
        try:
            self.delivery_streams.ensure_groups()
            if self.schedules is not None:
                self.schedules.start()
            self._loop(burst, max_idle_seconds)
        except StopRequested:
            pass
        except RedisTimeoutError:
            log.error("worker %s: Redis does not answer in time; it stops", self.name)
            return False
        except Exception:
            log.exception("worker %s: stopped on an error it did not expect", self.name)
            return False
        finally:
            self._busy = True  # a stop asked from here on is for after the teardown
            if self.schedules is not None:
                self.schedules.stop()
            self.teardown()
            self._busy = False
        return True

    def _loop(self, burst: bool, max_idle_seconds: float | None) -> None:
        idle_since = time.monotonic()
        block_ms: int | None = None
        while not self.stopping:
            if self.should_run_maintenance_tasks:
                self.check_for_suspension(burst)
                self.run_maintenance_tasks()
            if self.work_once(block_ms):
                idle_since, block_ms = time.monotonic(), None
                continue
            if burst:
                log.info("worker %s: the lanes are empty, it stops", self.name)
                return
            if max_idle_seconds is not None and time.monotonic() - idle_since >= max_idle_seconds:
                log.info("worker %s: idle for %s s, it stops", self.name, max_idle_seconds)
                return
            block_ms = IDLE_LOOK_MS

    def work_once(self, block_ms: int | None = None) -> bool:
        """Apply a batch of deliveries (waiting `block_ms` for one if there are none), then
        run one RQ job; whether there was anything to do."""
        applied = self._apply_deliveries(block_ms)
        return self._run_a_job() or applied

    def _apply_deliveries(self, block_ms: int | None) -> bool:
        batch = self.delivery_streams.claim_batch(block_ms)
        if not batch:
            return False
        with self._working():
            self.delivery_streams.apply_claimed(batch)
        return True

    def _run_a_job(self) -> bool:
        taken = take_job(self.connection, self._lanes_in_turn())
        if taken is None:
            return False
        job, lane = taken
        self._next_lane = (self.queues.index(lane) + 1) % len(self.queues)
        with self._working():
            self.execute_job(job, lane)
        return True

    def _lanes_in_turn(self) -> list[Queue]:
        """The lanes, the one after the last job's lane first."""
        return self.queues[self._next_lane :] + self.queues[: self._next_lane]

    @contextmanager
    def _working(self) -> Iterator[None]:
        """While a batch or a job runs, a stop waits for it."""
        self._busy = True
        try:
            yield
        finally:
            self._busy = False

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        """A first signal stops the worker once its batch or job is done (at once if idle);
        a second stops it cold, as RQ's does."""
        if self.stopping:
            log.warning("worker %s: a second signal, it stops at once", self.name)
            raise SystemExit(1)
        self.stopping = True
        log.info("worker %s: asked to stop (signal %s)", self.name, signum)
        if not self._busy:
            raise StopRequested

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        # RQ clears the intermediate list only when a worker has one queue; take_job fills it.
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
        self.maintenance()  # first: a Redis that lost its data is healed
        self.register_again_if_forgotten()
        self.heartbeat()
        if self.schedules is not None:
            self.schedules.keep_running()
        self.clean_registries()
        self.clean_group_registries()
        self.delivery_streams.reclaim()
        self.delivery_streams.forget_stopped_consumers()

    def register_again_if_forgotten(self) -> None:
        """A Redis that lost its data forgot this worker with the rest, and its heartbeats
        only touch its own key: without its place in RQ's worker registry, /readyz and
        `rq info` would see no worker for ever."""
        if self.connection.sismember(self.redis_workers_keys, self.key):
            return
        log.warning("Redis no longer knew worker %s: registered it again", self.name)
        self.connection.delete(self.key)  # what the heartbeats wrote since is no birth record
        self.register_birth()


def take_job(connection: Redis, lanes: list[Queue]) -> tuple[Job, Queue] | None:
    """The first job waiting in `lanes`, in their order, or None; it never waits (the worker
    waits on the delivery streams instead). The job moves to its lane's intermediate list."""
    while (taken := _take(lanes, connection)) is not None:
        lane, job_id = taken
        try:
            return Job.fetch(job_id, connection=connection), lane
        except NoSuchJobError:
            connection.lrem(lane.intermediate_queue_key, 1, job_id)
    return None


def _take(lanes: list[Queue], connection: Redis) -> tuple[Queue, str] | None:
    for lane in lanes:
        job_id = connection.lmove(lane.key, lane.intermediate_queue_key)
        if job_id is not None:
            return lane, text(job_id)
    return None


class Schedules:
    """RQ's scheduler for the lanes, in a process of its own, kept running and holding every
    lane's lock it can; in burst mode, due jobs are moved into their lanes once, at start."""

    def __init__(self, connection: Redis, lanes: list[Queue], logging_level: str, burst: bool):
        self.connection = connection
        self.lanes = [lane.name for lane in lanes]
        self.scheduler = RQScheduler(lanes, connection=connection, logging_level=logging_level)
        self.burst = burst
        self.watch = SchedulerWatch()
        self.process: BaseProcess | None = None

    def start(self) -> None:
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not self.burst:
            self.process = self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()

    def keep_running(self) -> None:
        """Free the locks of dead schedulers; take free locks, and start again a scheduler
        that died. A scheduler takes every free lock when it starts, so one that runs
        stops first (releasing the locks it holds, to take them again at once)."""
        if self.burst:
            return
        self.watch.free_dead_locks(self.connection, self.lanes)
        free = [lane for lane in self.lanes if not self.connection.exists(_lock(lane))]
        if free:
            log.info("scheduler locks of %s are free: this worker's scheduler takes them", free)
            self.stop()
        if free or not self.running:
            self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.pid is not None and self.process.is_alive():
            os.kill(self.process.pid, signal.SIGTERM)
        self.process.join()
        self.process = None


def _lock(lane: str) -> str:
    return RQScheduler.get_locking_key(lane)


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
        owners = {name: connection.get(_lock(name)) for name in queue_names}
        live = {text(owner) for owner in owners.values() if owner is not None}
        self._seen = {name: seen for name, seen in self._seen.items() if name in live}
        for name, owner in owners.items():
            if owner is None:
                continue
            scheduler = text(owner)
            beat = connection.hget(SCHEDULER_KEY_TEMPLATE % scheduler, "last_heartbeat")
            if self._stood_still(scheduler, beat) and release_lock(
                connection, _lock(name), scheduler
            ):
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
