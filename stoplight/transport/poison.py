"""A delivery gets 3 tries, each within a time budget; the third that fails sets it aside
(see `stoplight.transport.dead_letters`), so that it is not tried for ever.

A try is counted in the delivery's intake record before it starts. A worker that dies while
applying it (SIGKILL, the kernel's OOM killer) so leaves the count behind, and whoever takes
the delivery up next (a worker reclaiming the stream entry, or RQ retrying the abandoned job)
finds a count past MAX_ATTEMPTS with no try left to run: the last ones ended with their worker.
The count lives with the delivery, not in its stream entry's delivery counter (XPENDING),
because a delivery changes hands: after a raise its entry is acknowledged and an RQ job tries
it again, and a retried dead letter is a new entry whose tries start afresh.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Protocol

import lz4.block
import orjson
from redis import Redis

from stoplight import metrics
from stoplight.transport import dead_letters, records

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
WORKER_DIED = "worker died while applying it"
# RQ's own timeout on a delivery's job is a backstop: the budget inside the job comes first.
JOB_GRACE_SECONDS = 10
_REASON_LENGTH = 500


class SetAside(Protocol):
    """What a dead letter keeps of a delivery: a stream entry, or one an RQ job held."""

    @property
    def delivery_id(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def installation_id(self) -> int: ...
    @property
    def compressed_body(self) -> bytes: ...


class TookTooLong(BaseException):
    """A delivery's application ran past its time budget.

    Not an Exception, so that no `except Exception` on the way (one repository's
    configuration failing to reload, say, while the others go on) swallows it and runs on.
    """


@contextmanager
def time_budget(seconds: int) -> Iterator[None]:
    """Raise TookTooLong in the block once it has run for `seconds`.

    SIGALRM interrupts pure-Python work too (a loop that never calls out), which a watching
    thread could not. Signals are for the main thread, where workers apply deliveries; in an
    RQ job, whose own timeout is the same timer, the job's alarm is put back afterwards, and
    a job whose alarm comes first keeps it (a job queued by a version without the budget).
    """
    outer = signal.getitimer(signal.ITIMER_REAL)[0]
    if threading.current_thread() is not threading.main_thread() or 0 < outer <= seconds:
        yield
        return
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _expire(seconds))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


def _expire(seconds: int) -> Callable[[int, FrameType | None], None]:
    def expired(signum: int, frame: FrameType | None) -> None:
        raise TookTooLong(f"took longer than {seconds} s")

    return expired


def job_timeout_seconds(budget_seconds: int) -> int:
    """RQ's timeout for a job that applies a delivery within `budget_seconds`."""
    return budget_seconds + JOB_GRACE_SECONDS


def out_of_tries(attempt: int) -> bool:
    """Whether a try numbered `attempt` comes after MAX_ATTEMPTS that never ended: a try
    that raised or ran out of time sets the delivery aside itself when it is the last."""
    return attempt > MAX_ATTEMPTS


def reason_of(error: BaseException) -> str:
    if isinstance(error, TookTooLong):
        return str(error)
    return f"{type(error).__name__}: {error}"[:_REASON_LENGTH]


def set_aside(
    queue: Redis,
    metrics_redis: Redis,
    delivery: SetAside,
    attempt: int,
    reason: str,
    at: datetime,
) -> None:
    """Put the delivery in the dead-letter list, count it, say so, and drop its body from its
    intake record (the id stays, so GitHub redelivering it is a repeat)."""
    letter = dead_letters.DeadLetter(
        delivery_id=delivery.delivery_id,
        event=delivery.event,
        installation_id=delivery.installation_id,
        repo=_repository_in(delivery.compressed_body),
        reason=reason,
        attempts=min(attempt, MAX_ATTEMPTS),
        at=at,
    )
    dead_letters.keep(queue, letter, delivery.compressed_body)
    records.finish(queue, delivery.delivery_id)
    # Intake records only the events the app handles, so the event is a bounded label.
    metrics.DEAD_LETTERS.inc(metrics_redis, delivery.event)
    log.error(
        "delivery %s (%s, %s) set aside after %d tries: %s; `stoplight deadletters --retry %s` "
        "puts it back",
        letter.delivery_id,
        letter.event,
        letter.repo or f"installation {letter.installation_id}",
        letter.attempts,
        reason,
        letter.delivery_id,
    )


def _repository_in(compressed_body: bytes) -> str | None:
    """The repository a delivery names, as far as its body can be read: a poison body may be
    anything."""
    try:
        payload = orjson.loads(records.decompress(compressed_body))
    except (ValueError, lz4.block.LZ4BlockError):
        return None
    repository = payload.get("repository") if isinstance(payload, dict) else None
    repo = repository.get("full_name") if isinstance(repository, dict) else None
    return repo if isinstance(repo, str) else None
