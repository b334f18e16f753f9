"""Late and out-of-order deliveries never overwrite newer state."""

from __future__ import annotations

from stoplight.core.light import Level
from stoplight.core.pulls import Phase
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver
from tests.fakes import Pull


def record(rt, pull: Pull):
    return QueueStore(rt.redis, pull.repo.installation_id).pull(f"{pull.repo.id}#{pull.number}")


def test_late_opened_with_the_old_head_leaves_the_newer_push(rt, github, clock):
    pull = Pull(head_sha="a" * 40)
    opened = pull.event("opened", clock.now())
    clock.advance(minutes=5)
    pull.head_sha = "b" * 40
    deliver(rt, pull.event("synchronize", clock.now()))
    deliver(rt, opened)
    assert record(rt, pull).head_sha == "b" * 40
    assert {sha for sha, _, _ in github.statuses()} == {"b" * 40}


def test_late_review_of_an_old_head_does_not_approve_the_new_one(rt, github, clock):
    pull = Pull(head_sha="a" * 40)
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=5)
    review_of_a = pull.review("bob", "approved", clock.now(), commit_id="a" * 40)
    clock.advance(minutes=5)
    pull.head_sha = "b" * 40
    deliver(rt, pull.event("synchronize", clock.now()))
    deliver(rt, review_of_a)
    assert record(rt, pull).head_sha == "b" * 40
    assert record(rt, pull).phase is Phase.WAITING


def test_late_older_review_does_not_replace_the_reviewers_newer_one(rt, github, clock):
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=1)
    asked_changes = pull.review("bob", "changes_requested", clock.now())
    clock.advance(minutes=1)
    deliver(rt, pull.review("bob", "approved", clock.now()))
    deliver(rt, asked_changes)
    assert record(rt, pull).phase is Phase.APPROVED


def test_dismissal_delivered_before_its_review_keeps_the_review_dismissed(rt, github, clock):
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=1)
    approved = pull.review("bob", "approved", clock.now())
    dismissed = pull.review("bob", "dismissed", clock.now(), action="dismissed")
    deliver(rt, dismissed)
    deliver(rt, approved)
    assert record(rt, pull).phase is Phase.WAITING


def test_late_review_request_does_not_undo_a_later_approval(rt, github, clock):
    pull = Pull(reviewers=["bob"])
    deliver(rt, pull.event("opened", clock.now()))
    requested = pull.event(
        "review_requested", clock.now(), requested_reviewer={"login": "bob", "type": "User"}
    )
    clock.advance(minutes=3)
    deliver(rt, pull.review("bob", "approved", clock.now()))
    deliver(rt, requested)
    assert record(rt, pull).phase is Phase.APPROVED


def test_review_delivered_before_a_newer_re_request_does_not_count(rt, github, clock):
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=1)
    approved = pull.review("bob", "approved", clock.now())
    clock.advance(minutes=1)
    deliver(
        rt,
        pull.event(
            "review_requested", clock.now(), requested_reviewer={"login": "bob", "type": "User"}
        ),
    )
    deliver(rt, approved)
    assert record(rt, pull).phase is Phase.WAITING


def test_late_synchronize_after_close_keeps_it_closed(rt, github, clock):
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=1)
    pull.head_sha = "c" * 40
    pushed = pull.event("synchronize", clock.now())
    clock.advance(minutes=1)
    pull.state = "closed"
    deliver(rt, pull.event("closed", clock.now()))
    deliver(rt, pushed)
    assert record(rt, pull).phase is Phase.CLOSED
    store = QueueStore(rt.redis, 42)
    assert store.measures("octo/shop").waiting == 0
    assert store.light("octo/shop").level is Level.GREEN
