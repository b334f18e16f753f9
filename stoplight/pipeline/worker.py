"""A process's worker: the transport's loop (see `stoplight.transport.worker`) applying
deliveries through the pipeline, healing a Redis that lost its data, and started again after
an error.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable

from redis.exceptions import RedisError
from rq.exceptions import StopRequested

from stoplight.pipeline import deliveries
from stoplight.pipeline.heal import StateWatch
from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.sync import ensure_sync_scheduled
from stoplight.transport import applying
from stoplight.transport.protocol import DeliveryHandler
from stoplight.transport.streams import CLAIM_IDLE_MS, DeliveryStreams
from stoplight.transport.worker import StoplightWorker

log = logging.getLogger(__name__)

# A worker that stopped on an error starts again after a pause, doubled up to a minute while
# the trouble lasts, and back to the first once a worker has run this long.
RESTART_PAUSE_SECONDS = 1.0
RESTART_PAUSE_LIMIT_SECONDS = 60.0
RESTART_RESET_SECONDS = 120.0


def delivery_streams(
    rt: Runtime, consumer: str, claim_idle_ms: int = CLAIM_IDLE_MS
) -> DeliveryStreams:
    """The lanes' streams, read as `consumer`, each delivery applied by the pipeline."""
    return DeliveryStreams(
        rt.queue,
        consumer,
        _applier(rt),
        clock=rt.clock,
        metrics_redis=rt.redis,
        budget_seconds=rt.settings.delivery_timeout_seconds,
        claim_idle_ms=claim_idle_ms,
    )


def _applier(rt: Runtime) -> DeliveryHandler:
    """The pipeline's application of one delivery, found by name at each call, so that a
    replaced `apply_delivery` (a test's) is the one applied."""

    def apply(delivery_id: str, event: str, body: bytes) -> None:
        deliveries.apply_delivery(rt, delivery_id, event, body)

    return apply


def apply_handed_over(rt: Runtime, delivery_id: str, installation_id: int, job_id: str) -> None:
    """Apply a delivery RQ job `job_id` holds, through the pipeline."""
    applying.apply_handed_over(
        rt.queue,
        rt.redis,
        delivery_id,
        installation_id,
        job_id,
        _applier(rt),
        rt.settings.delivery_timeout_seconds,
        rt.clock,
    )


def build_worker(rt: Runtime, name: str | None = None) -> StoplightWorker:
    name = name or uuid.uuid4().hex  # as RQ names its workers; the streams know it too
    return StoplightWorker(
        rt.lanes.queues,
        rt.queue,
        streams=delivery_streams(rt, name),
        maintenance=functools.partial(StateWatch().check, rt),
        name=name,
    )


def run_worker(
    rt: Runtime,
    *,
    burst: bool = False,
    max_idle_seconds: float | None = None,
    sleep: Callable[[float], object] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Work until asked to stop (or, with `max_idle_seconds`, until idle that long). A worker
    stops on an error it did not expect, and a Redis away for longer than the connection's
    retries is one: a worker then starts afresh, after a pause that grows while Redis stays
    away, so a long outage costs a line a minute at most, and a worker is back within a
    pause of Redis."""
    pause = RESTART_PAUSE_SECONDS
    while True:
        started = monotonic()
        worker: StoplightWorker | None = None
        try:
            if rt.github is not None:
                ensure_sync_scheduled(rt)
            worker = build_worker(rt)
            finished = worker.work(
                burst=burst,
                logging_level=rt.settings.log_level,
                max_idle_seconds=max_idle_seconds,
                with_scheduler=True,
            )
        except RedisError as error:
            trouble = f"Redis does not answer ({error})"
        else:
            if finished:
                return  # burst or idle done, or a stop asked for
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
