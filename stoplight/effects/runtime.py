"""What the Slack effects (notices, the digest) need of the process they run in: among it
the Slack writer, which tests replace with a recorder.

The pipeline's `Runtime` is one; naming only what is used keeps effects below the pipeline:
they ask for follow-up jobs without knowing the lanes that carry them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from redis import Redis
from redis.client import Pipeline

from stoplight.core.clock import Clock
from stoplight.effects.writers import SlackWriter
from stoplight.settings import Settings
from stoplight.transport.jobs import Job


class EffectsRuntime(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def redis(self) -> Redis:
        """The state's Redis: records of what was posted, claims, the team's queue."""

    @property
    def queue(self) -> Redis:
        """The jobs' Redis, where `read_schedule` reads."""

    @property
    def clock(self) -> Clock: ...

    @property
    def slack(self) -> SlackWriter: ...

    def enqueue(self, job: Job, *, job_id: str | None = None) -> None:
        """Run `job` soon."""

    def schedule(self, at: datetime, job: Job, *, job_id: str) -> None:
        """Run `job` at `at`; the same `job_id` again moves it."""

    def read_schedule(self, pipe: Pipeline, job_id: str) -> None:
        """Queue on `pipe` the read of when the timed job `job_id` is due."""
