"""merge_group deliveries: a merge queue asks for checks on the commit it built.

Stoplight levels the flow into review, not merges: a PR's own status is what holds it (where
`stoplight` is a required check, a held PR's `pending` keeps it out of the queue), so a group
gets `success` at once. `destroyed` (the group merged, was dequeued, or fell with an earlier
entry) needs nothing: it is acknowledged, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from stoplight.core.changes import Change, MergeGroupChange
from stoplight.events.payloads import MergeGroupEvent
from stoplight.events.routing import Delivery, Router

router = Router()


@router.on("merge_group.checks_requested")
def checks_requested(delivery: Delivery) -> Iterable[Change]:
    event = MergeGroupEvent.model_validate(delivery.payload)
    yield MergeGroupChange(
        repo_id=event.repository.id,
        repo=event.repository.full_name,
        head_sha=event.merge_group.head_sha,
    )
