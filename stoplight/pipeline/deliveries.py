"""The admit stage: a delivery claimed, loaded and parsed, and its handlers' change records
handed to the apply stage (apply.py), in the installation's context.

A delivery that fails three times is set aside (poison.py). Each step takes the runtime
explicitly, so tests drive it with a fake clock and real Redis.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from stoplight import logs
from stoplight.events import intake
from stoplight.events.handlers import router
from stoplight.events.routing import Delivery
from stoplight.pipeline import poison
from stoplight.pipeline.apply import apply_change
from stoplight.pipeline.context import InstallationContext
from stoplight.pipeline.runtime import Runtime

log = logging.getLogger(__name__)


def process_delivery(rt: Runtime, delivery_id: str, job_id: str) -> None:
    if not intake.claim(rt.queue, delivery_id, job_id):
        log.info("delivery %s is another job's: a repeated delivery", delivery_id)
        return
    loaded = intake.load(rt.queue, delivery_id)
    if loaded is None:
        log.info("delivery %s already processed", delivery_id)
        return
    event, body = loaded
    attempt = poison.count_attempt(rt, delivery_id)
    if poison.out_of_tries(attempt):
        poison.set_aside(rt, delivery_id, event, intake.compress(body), attempt, poison.WORKER_DIED)
        return
    try:
        with poison.time_budget(rt.settings.delivery_timeout_seconds):
            apply_delivery(rt, delivery_id, event, body)
    except (Exception, poison.TookTooLong) as error:
        if attempt < poison.MAX_ATTEMPTS:
            raise  # RQ tries it again later
        poison.set_aside(
            rt, delivery_id, event, intake.compress(body), attempt, poison.reason_of(error)
        )
        return
    intake.finish(rt.queue, delivery_id)


def apply_delivery(rt: Runtime, delivery_id: str, event: str, body: bytes) -> None:
    """Parse a delivery, turn it into change records and apply each; a delivery that is not
    one stoplight can use is logged and dropped."""
    name = event
    try:
        payload = intake.parse_body(body)
        if not isinstance(payload, dict):
            raise ValueError("body is not a JSON object")
        delivery = Delivery(id=delivery_id, event=event, payload=payload)
        name = delivery.name
        installation_id = delivery.installation_id
        if installation_id is None:
            raise ValueError("installation.id: missing")
        changes = router.dispatch(delivery)
    except (ValidationError, ValueError) as error:
        log.warning("delivery %s (%s) ignored: %s", delivery_id, name, _brief(error))
    else:
        if not changes:
            log.info("delivery %s (%s): nothing stoplight uses", delivery_id, name)
            return
        ctx = InstallationContext.of(rt, installation_id)
        for change in changes:
            with logs.about(change):
                apply_change(ctx, change)


def _brief(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()[:3]
        )
    return str(error)
