"""push deliveries: a change to the configuration file on the default branch reloads it."""

from __future__ import annotations

from collections.abc import Iterable

from stoplight.changes import Change, ConfigChange
from stoplight.config import CONFIG_PATH
from stoplight.handlers.payloads import PushEvent
from stoplight.router import Delivery, Router

router = Router()


@router.on("push")
def pushed(delivery: Delivery) -> Iterable[Change]:
    event = PushEvent.model_validate(delivery.payload)
    if event.ref != f"refs/heads/{event.repository.default_branch}":
        return
    if any(commit.touches(CONFIG_PATH) for commit in event.commits):
        yield ConfigChange(repo=event.repository.full_name)
