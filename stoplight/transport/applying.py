"""Applying deliveries with their tries counted: a claimed batch from the streams, or one
delivery an RQ job holds after it failed there (see `stoplight.transport.poison` for the
tries and the time budget).

Only the decisions are here (apply, set aside, hand over); what they do to queues is the
transport's, so they are tested with a recorder as well as on Redis.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis

from stoplight import logs
from stoplight.core.clock import Clock
from stoplight.transport import poison, records
from stoplight.transport.lanes import applying_from
from stoplight.transport.protocol import Claimed, DeliveryHandler, Transport

log = logging.getLogger(__name__)


def apply_batch(
    transport: Transport, batch: Sequence[Claimed], apply: DeliveryHandler, budget_seconds: int
) -> None:
    """Apply each delivery of the batch that is this batch's to apply, then acknowledge the
    batch: a delivery that raised is handed to a job, or set aside at its last try."""
    for claimed in batch:
        if claimed.attempt:
            _apply_one(transport, claimed, apply, budget_seconds)
        else:
            log.info("delivery %s is another's: a repeated delivery", claimed.entry.delivery_id)
    transport.acknowledge(batch)


def _apply_one(
    transport: Transport, claimed: Claimed, apply: DeliveryHandler, budget_seconds: int
) -> None:
    entry = claimed.entry
    bound = logs.bound(delivery=entry.delivery_id, installation=entry.installation_id)
    with bound, applying_from(entry.lane):
        if poison.out_of_tries(claimed.attempt):
            transport.set_aside(claimed, poison.WORKER_DIED)
            return
        try:
            body = records.decompress(entry.compressed_body)
            with poison.time_budget(budget_seconds):
                apply(entry.delivery_id, entry.event, body)
        except (Exception, poison.TookTooLong) as error:
            if claimed.attempt >= poison.MAX_ATTEMPTS:
                transport.set_aside(claimed, poison.reason_of(error))
                return
            log.exception("delivery %s failed; a job will retry it", entry.delivery_id)
            transport.hand_over(claimed)


@dataclass(frozen=True)
class HandedOver:
    """A delivery an RQ job holds, as a dead letter would keep it."""

    delivery_id: str
    event: str
    installation_id: int
    compressed_body: bytes


def apply_handed_over(
    queue: Redis,
    metrics_redis: Redis,
    delivery_id: str,
    installation_id: int,
    job_id: str,
    apply: DeliveryHandler,
    budget_seconds: int,
    clock: Clock,
) -> None:
    """Apply a delivery job `job_id` holds (or an RQ job of a version before streams); a raise
    before its last try leaves it to RQ's retry of the job."""
    if not records.claim(queue, delivery_id, job_id):
        log.info("delivery %s is another job's: a repeated delivery", delivery_id)
        return
    loaded = records.load(queue, delivery_id)
    if loaded is None:
        log.info("delivery %s already processed", delivery_id)
        return
    event, body = loaded
    held = HandedOver(delivery_id, event, installation_id, records.compress(body))
    attempt = records.count_attempt(queue, delivery_id)
    if poison.out_of_tries(attempt):
        poison.set_aside(queue, metrics_redis, held, attempt, poison.WORKER_DIED, clock.now())
        return
    try:
        with poison.time_budget(budget_seconds):
            apply(delivery_id, event, body)
    except (Exception, poison.TookTooLong) as error:
        if attempt < poison.MAX_ATTEMPTS:
            raise  # RQ tries it again later
        poison.set_aside(queue, metrics_redis, held, attempt, poison.reason_of(error), clock.now())
        return
    records.finish(queue, delivery_id)
