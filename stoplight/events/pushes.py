"""push deliveries: a change to the configuration file on the default branch reloads it."""

from __future__ import annotations

from collections.abc import Iterable

from stoplight.config.schema import CONFIG_PATH
from stoplight.core.changes import Change, ConfigChange
from stoplight.events.payloads import PushEvent
from stoplight.events.routing import Delivery, Router

router = Router()


@router.on("push")
def pushed(delivery: Delivery) -> Iterable[Change]:
    event = PushEvent.model_validate(delivery.payload)
    if event.ref != f"refs/heads/{event.repository.default_branch}":
        return
    if any(commit.touches(CONFIG_PATH) for commit in event.commits):
        yield ConfigChange(repo=event.repository.full_name)
