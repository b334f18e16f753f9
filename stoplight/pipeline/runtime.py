"""What a process needs to do work: settings, Redis, the clock, GitHub, Slack, the job queue.

Two Redis clients, which are one unless REDIS_QUEUE_URL is set: `redis` for the state (it may
be a Redis Cluster) and `queue` for the lanes (delivery streams and records, RQ's jobs, the
effects passes' coordination), which RQ needs on a plain Redis.

Built once per process from the environment (or handed in by tests), never at import time.
What one installation needs (its stores, its GitHub) is `pipeline.context.InstallationContext`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.client import Pipeline
from rq import get_current_job
from rq.registry import ScheduledJobRegistry

from stoplight.clients.github import GitHubApp
from stoplight.clients.pacing import GITHUB_BUDGET, WriteBudget
from stoplight.clients.slack import SlackClient
from stoplight.core.clock import Clock, SystemClock
from stoplight.effects.writers import SlackWriter
from stoplight.settings import Settings
from stoplight.state.connection import WORKER, connect
from stoplight.transport import jobs
from stoplight.transport.jobs import JOB_TIMEOUT_SECONDS, Job
from stoplight.transport.lanes import Lanes


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    queue: Redis
    clock: Clock
    lanes: Lanes
    github: GitHubApp | None  # None: no credentials (see `InstallationContext.of`)
    # A writer handed in (a test's recorder); else Slack as the settings say when it is used.
    slack_writer: SlackWriter | None = None

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
    def slack(self) -> SlackWriter:
        # Built on use, as a SlackClient is only its settings: it follows the runtime's.
        return self.slack_writer if self.slack_writer is not None else SlackClient(self.settings)

    @property
    def redis_clients(self) -> list[Redis]:
        """The state's Redis and, when it is another, the lanes'."""
        return [self.redis] if self.queue is self.redis else [self.redis, self.queue]

    def enqueue(
        self,
        job: Job,
        *,
        job_id: str | None = None,
        timeout: int = JOB_TIMEOUT_SECONDS,
        pipeline: Pipeline | None = None,
    ) -> None:
        """Run `job` soon, in the lane of the job asking (see `stoplight.transport.lanes`);
        with `pipeline`, as part of the caller's transaction."""
        lane = self.lanes.following(get_current_job())
        jobs.enqueue(lane, job, job_id=job_id, timeout=timeout, pipeline=pipeline)

    def schedule(
        self, at: datetime, job: Job, *, job_id: str, timeout: int = JOB_TIMEOUT_SECONDS
    ) -> None:
        """Run `job` at `at`; scheduling the same job id again moves it instead of adding one.

        Timed jobs all wait in the shared lane, so that one id is one schedule.
        """
        jobs.schedule_at(self.lanes.shared, at, job, job_id=job_id, timeout=timeout)

    def read_schedule(self, pipe: Pipeline, job_id: str) -> None:
        """Queue on the caller's pipeline the read of when the timed job `job_id` is due;
        `stoplight.state.replies.scheduled_moment` takes its reply."""
        pipe.zscore(ScheduledJobRegistry(queue=self.lanes.shared).key, job_id)


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
