"""pull_request_review deliveries: approvals and change requests move a PR in and out."""

from __future__ import annotations

from collections.abc import Iterable

from stoplight.core.changes import Change, ReviewChange
from stoplight.events.payloads import PullRequestReviewEvent
from stoplight.events.routing import Delivery, Router

router = Router()


@router.on("pull_request_review.submitted", "pull_request_review.dismissed")
def review_changed(delivery: Delivery) -> Iterable[Change]:
    event = PullRequestReviewEvent.model_validate(delivery.payload)
    state = "dismissed" if event.action == "dismissed" else event.review.state
    pull = event.pull_request.snapshot(event.repository)
    yield ReviewChange(
        action=event.action,
        pull=pull,
        reviewer=event.review.user.login,
        reviewer_is_bot=event.review.user.is_bot,
        state=state,
        commit_id=event.review.commit_id,
        at=event.review.submitted_at or pull.updated_at,
    )
