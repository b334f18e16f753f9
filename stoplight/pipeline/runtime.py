"""What a process needs to do work: settings, Redis, the clock, GitHub, the job queue.

Two Redis clients, which are one unless REDIS_QUEUE_URL is set: `redis` for the state (it may
be a Redis Cluster) and `queue` for the lanes (delivery streams and records, RQ's jobs, the
effects passes' coordination), which RQ needs on a plain Redis.

Built once per process from the environment (or handed in by tests), never at import time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.client import Pipeline
from rq import Retry, get_current_job
from rq.registry import ScheduledJobRegistry

from stoplight.clients.github import GitHubApp
from stoplight.clients.pacing import GITHUB_BUDGET, WriteBudget
from stoplight.core.clock import Clock, SystemClock, from_timestamp
from stoplight.settings import Settings
from stoplight.state.connection import WORKER, connect
from stoplight.transport.lanes import Lanes

# Job-level retries for failures the client's quick retries could not absorb, and for jobs
# whose worker died (RQ retries an abandoned job only if it has retries left). Spaced out to
# five minutes, they outlast about three hours of GitHub or Slack failing; a job that fails
# longer ends in RQ's failed registry, and the scheduled sync restores what it missed.
# RQ takes the intervals from the end of the list as retries run out, so it has one for each.
_RETRY_INTERVALS = [2, 10, 30, 60, 120] + [300] * 35
JOB_RETRY = Retry(max=len(_RETRY_INTERVALS), interval=_RETRY_INTERVALS)
# Every job is short (an effects pass hands over to a fresh job well before this); a short
# timeout lets a dead worker's job be found and retried within a minute.
JOB_TIMEOUT_SECONDS = 25
# Redelivery is the long exception: after a long outage it lists and asks for thousands of
# deliveries, one request each. Cut short, each retry would start over from the listing.
REDELIVER_TIMEOUT_SECONDS = 30 * 60


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    queue: Redis
    clock: Clock
    lanes: Lanes
    github: GitHubApp | None

    @classmethod
    def create(
        cls,
        settings: Settings,
        redis: Redis | None = None,
        clock: Clock | None = None,
        *,
        budget: WriteBudget = GITHUB_BUDGET,
        sleep: Callable[[float], object] = time.sleep,
        queue: Redis | None = None,
    ) -> Runtime:
        if redis is None:
            if not settings.redis_url:
                raise RuntimeError("REDIS_URL is not set")
            redis = connect(settings.redis_url, WORKER)
        if queue is None:
            queue = connect(settings.redis_queue_url, WORKER) if settings.redis_queue_url else redis
        clock = clock or SystemClock()
        github = None
        if settings.app_id and settings.private_key:
            github = GitHubApp(settings, redis, clock, budget=budget, sleep=sleep)
        return cls(settings, redis, queue, clock, Lanes.on(queue), github)

    @property
    def redis_clients(self) -> list[Redis]:
        """The state's Redis and, when it is another, the lanes'."""
        return [self.redis] if self.queue is self.redis else [self.redis, self.queue]

    def enqueue(
        self,
        func: str,
        *args: object,
        job_id: str | None = None,
        timeout: int = JOB_TIMEOUT_SECONDS,
        pipeline: Pipeline | None = None,
    ) -> None:
        """Run `func` soon, in the lane of the job asking (see `stoplight.transport.lanes`);
        with `pipeline`, as part of the caller's transaction."""
        self.lanes.following(get_current_job()).enqueue_call(
            func,
            args=args,
            job_id=job_id,
            description=_describe(func, args),
            retry=JOB_RETRY,
            timeout=timeout,
            pipeline=pipeline,
        )

    def schedule(
        self,
        at: datetime,
        func: str,
        *args: object,
        job_id: str,
        timeout: int = JOB_TIMEOUT_SECONDS,
    ) -> None:
        """Run `func` at `at`; scheduling the same job id again moves it instead of adding one.

        Timed jobs all wait in the shared lane, so that one id is one schedule.
        """
        self.lanes.shared.enqueue_at(
            at,
            func,
            *args,
            job_id=job_id,
            description=_describe(func, args),
            retry=JOB_RETRY,
            job_timeout=timeout,
        )

    def read_schedule(self, pipe: Pipeline, job_id: str) -> None:
        """Queue on the caller's pipeline the read of when the timed job `job_id` is due;
        `scheduled_moment` takes its reply."""
        pipe.zscore(ScheduledJobRegistry(queue=self.lanes.shared).key, job_id)


def scheduled_moment(reply: float | None) -> datetime | None:
    """The moment a timed job is due, from `Runtime.read_schedule`'s reply; None if it is not
    in the schedule."""
    return from_timestamp(reply) if reply is not None else None


def job_id(kind: str, installation_id: int, *parts: str) -> str:
    """A stable RQ job id (letters, digits, dashes) for one kind of job on one subject."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()
    return f"{kind}-{installation_id}-{digest}"


def _describe(func: str, args: tuple[object, ...]) -> str:
    # An explicit description spares RQ a repr() of the arguments on every enqueue.
    name = func.rpartition(".")[2]
    return f"{name}({', '.join(str(arg) for arg in args)})"


_current: Runtime | None = None


def current() -> Runtime:
    """The process's runtime, built from the environment on first use."""
    global _current
    if _current is None:
        _current = Runtime.create(Settings())
    return _current


@contextmanager
def installed(runtime: Runtime) -> Iterator[Runtime]:
    """Make `runtime` the process's runtime for the duration (workers, tests)."""
    global _current
    previous, _current = _current, runtime
    try:
        yield runtime
    finally:
        _current = previous
