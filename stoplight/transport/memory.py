"""A transport in memory that records what is asked of it: the decisions of the pipeline and
of `stoplight.transport.applying` tested without Redis or RQ."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from redis.client import Pipeline

from stoplight.transport import jobs
from stoplight.transport.jobs import JOB_TIMEOUT_SECONDS, Job
from stoplight.transport.protocol import Claimed, Entry, Transport
from stoplight.transport.streams import BATCH


@dataclass(frozen=True)
class Queued:
    job: Job
    job_id: str | None
    at: datetime | None  # None: soon


@dataclass
class MemoryTransport(Transport):
    waiting: list[Entry] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)  # by delivery id
    owners: dict[str, str] = field(default_factory=dict)  # delivery id -> its entry's id
    queued: list[Queued] = field(default_factory=list)
    acknowledged: list[Entry] = field(default_factory=list)
    set_aside_for: dict[str, str] = field(default_factory=dict)  # delivery id -> reason
    handed_over: list[Entry] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        self.waiting.append(entry)

    def enqueue(
        self,
        job: Job,
        *,
        job_id: str | None = None,
        timeout: int = JOB_TIMEOUT_SECONDS,
        pipeline: Pipeline | None = None,
    ) -> None:
        self.queued.append(Queued(job, job_id, None))

    def schedule_at(
        self, at: datetime, job: Job, *, job_id: str, timeout: int = JOB_TIMEOUT_SECONDS
    ) -> None:
        self.queued = [queued for queued in self.queued if queued.job_id != job_id]
        self.queued.append(Queued(job, job_id, at))

    def claim_batch(self, block_ms: int | None = None) -> list[Claimed]:
        """Up to a batch of the waiting entries, claimed as the streams claim them: the first
        entry of a delivery owns it, and each claim by its owner counts a try."""
        batch, self.waiting = self.waiting[:BATCH], self.waiting[BATCH:]
        return [Claimed(entry, self._claim(entry), taken_at=0.0) for entry in batch]

    def _claim(self, entry: Entry) -> int:
        owner = self.owners.setdefault(entry.delivery_id, entry.entry_id)
        if owner != entry.entry_id:
            return 0
        self.tries[entry.delivery_id] = self.tries.get(entry.delivery_id, 0) + 1
        return self.tries[entry.delivery_id]

    def acknowledge(self, batch: Sequence[Claimed]) -> None:
        self.acknowledged += [claimed.entry for claimed in batch]

    def set_aside(self, claimed: Claimed, reason: str) -> None:
        self.set_aside_for[claimed.entry.delivery_id] = reason

    def hand_over(self, claimed: Claimed) -> None:
        self.handed_over.append(claimed.entry)
        entry = claimed.entry
        self.enqueue(jobs.process_delivery(entry.delivery_id, entry.installation_id))
