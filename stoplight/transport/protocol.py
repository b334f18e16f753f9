"""What the pipeline asks of the transport, as a small typed protocol: queue a job, schedule
one, claim a batch of deliveries, acknowledge it, set a delivery aside, or hand it to a job
that retries it. `DeliveryStreams` with RQ is the transport; `MemoryTransport` records what
is asked of it, for tests of the decisions alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from redis.client import Pipeline

from stoplight.transport.jobs import JOB_TIMEOUT_SECONDS, Job
from stoplight.transport.lanes import delivery_stream

# Applies one delivery: its id, event name and body.
DeliveryHandler = Callable[[str, str, bytes], None]


@dataclass(frozen=True)
class Entry:
    """One delivery as its lane's stream holds it."""

    lane: str
    entry_id: str
    delivery_id: str
    event: str
    installation_id: int
    compressed_body: bytes

    @property
    def stream(self) -> str:
        return delivery_stream(self.lane)

    @property
    def queued_at(self) -> float:
        """When intake added it: a stream entry's id starts with Redis's clock in ms."""
        return int(self.entry_id.split("-", 1)[0]) / 1000


@dataclass(frozen=True)
class Claimed:
    """An entry of a claimed batch: `attempt` numbers this try of its delivery (0: the
    delivery is another entry's or job's, a repeated delivery); `taken_at`, when the batch
    was claimed."""

    entry: Entry
    attempt: int
    taken_at: float


class Transport(Protocol):
    def enqueue(
        self,
        job: Job,
        *,
        job_id: str | None = None,
        timeout: int = JOB_TIMEOUT_SECONDS,
        pipeline: Pipeline | None = None,
    ) -> None:
        """Run `job` soon, with retries."""

    def schedule_at(
        self, at: datetime, job: Job, *, job_id: str, timeout: int = JOB_TIMEOUT_SECONDS
    ) -> None:
        """Run `job` at `at`; the same `job_id` again moves it."""

    def claim_batch(self, block_ms: int | None = None) -> list[Claimed]:
        """New deliveries, each claimed and its try counted; with `block_ms`, wait that long
        for one when there are none."""

    def acknowledge(self, batch: Sequence[Claimed]) -> None:
        """The batch is done with: its entries go."""

    def set_aside(self, claimed: Claimed, reason: str) -> None:
        """The delivery goes to the dead letters, never tried again unless someone asks."""

    def hand_over(self, claimed: Claimed) -> None:
        """The delivery failed: a job with retries tries it again."""
