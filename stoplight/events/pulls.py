"""pull_request deliveries: each becomes one PullChange."""

from __future__ import annotations

from collections.abc import Iterable

from stoplight.core.changes import Change, PullChange
from stoplight.events.payloads import PullRequestEvent
from stoplight.events.routing import Delivery, Router

router = Router()


@router.on(
    "pull_request.opened",
    "pull_request.reopened",
    "pull_request.closed",
    "pull_request.synchronize",
    "pull_request.ready_for_review",
    "pull_request.converted_to_draft",
    "pull_request.review_requested",
    "pull_request.review_request_removed",
    "pull_request.edited",
    "pull_request.labeled",
    "pull_request.unlabeled",
)
def pull_request_changed(delivery: Delivery) -> Iterable[Change]:
    event = PullRequestEvent.model_validate(delivery.payload)
    pull = event.pull_request.snapshot(event.repository)
    reviewer = event.requested_reviewer.login if event.requested_reviewer else None
    yield PullChange(
        action=event.action,
        pull=pull,
        at=pull.updated_at,
        reviewer=reviewer,
        label=event.label.name if event.label else None,
    )
