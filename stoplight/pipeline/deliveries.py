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
from stoplight.pipeline.apply import apply_change
from stoplight.pipeline.context import InstallationContext
from stoplight.pipeline.runtime import Runtime

log = logging.getLogger(__name__)


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
