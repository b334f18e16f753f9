"""A PR's transitions (`core/pulls.py`), tested directly: no Redis, no HTTP, no clock but values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stoplight.core.admission import Entrance, entering
from stoplight.core.changes import PullChange, PullSnapshot, ReviewChange
from stoplight.core.light import Level
from stoplight.core.pulls import Phase, PullRecord, Rules, admit, advance

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
HEAD, NEXT_HEAD = "a" * 40, "b" * 40
RULES = Rules()
TEAM = "octo/shop"


def snapshot(at: datetime, **fields: object) -> PullSnapshot:
    values: dict[str, object] = {
        "repo_id": 1001,
        "repo": "octo/shop",
        "number": 1,
        "title": "Add checkout",
        "url": "https://github.com/octo/shop/pull/1",
        "author": "alice",
        "author_is_bot": False,
        "head_sha": HEAD,
        "draft": False,
        "open": True,
        "updated_at": at,
        "additions": 40,
        "deletions": 10,
    }
    return PullSnapshot.model_validate({**values, **fields})


def pull(action: str, at: datetime, **fields: object) -> PullChange:
    return PullChange.model_validate({"action": action, "pull": snapshot(at, **fields), "at": at})


def review(state: str, at: datetime, commit_id: str = HEAD, head: str = HEAD) -> ReviewChange:
    return ReviewChange(
        action="submitted",
        pull=snapshot(at, head_sha=head),
        reviewer="bob",
        state=state,
        commit_id=commit_id,
        at=at,
    )


def run(*changes: PullChange | ReviewChange, red: bool = False) -> PullRecord:
    rule = entering(Entrance(Level.RED if red else Level.GREEN), RULES)
    record = None
    for change in changes:
        record = advance(record, change, TEAM, RULES, change.at, entering=rule)
    assert record is not None
    return record


def test_an_opened_pr_waits_from_the_moment_it_opened():
    record = run(pull("opened", T0))
    assert (record.phase, record.wait_since, record.lines) == (Phase.WAITING, T0, 50)


def test_approval_on_the_head_ends_the_wait_and_a_push_starts_a_new_one():
    pushed_at = T0 + timedelta(hours=3)
    approved = run(pull("opened", T0), review("approved", T0 + timedelta(hours=1)))
    assert (approved.phase, approved.wait_since) == (Phase.APPROVED, None)
    pushed = advance(
        approved, pull("synchronize", pushed_at, head_sha=NEXT_HEAD), TEAM, RULES, pushed_at
    )
    assert (pushed.phase, pushed.wait_since) == (Phase.WAITING, pushed_at)


def test_an_approval_of_an_older_commit_does_not_end_the_wait():
    record = run(
        pull("opened", T0),
        pull("synchronize", T0 + timedelta(minutes=5), head_sha=NEXT_HEAD),
        review("approved", T0 + timedelta(minutes=10), commit_id=HEAD, head=NEXT_HEAD),
    )
    assert record.phase is Phase.WAITING


def test_changes_requested_then_dismissed_waits_again():
    requested = run(pull("opened", T0), review("changes_requested", T0 + timedelta(hours=1)))
    assert requested.phase is Phase.CHANGES_REQUESTED
    dismissed = advance(requested, review("dismissed", T0 + timedelta(hours=2)), TEAM, RULES, T0)
    assert dismissed.phase is Phase.WAITING


def test_a_late_snapshot_never_overwrites_a_newer_one():
    closed = run(pull("opened", T0), pull("closed", T0 + timedelta(hours=1), open=False))
    late = advance(closed, pull("edited", T0 + timedelta(minutes=30)), TEAM, RULES, T0)
    assert late.phase is Phase.CLOSED


def test_drafts_do_not_wait_and_ready_for_review_starts_the_wait():
    ready_at = T0 + timedelta(hours=2)
    record = run(pull("opened", T0, draft=True), pull("ready_for_review", ready_at))
    assert (record.phase, record.wait_since) == (Phase.WAITING, ready_at)
    assert run(pull("opened", T0, draft=True)).phase is Phase.DRAFT


def test_while_red_a_new_pr_is_held_unless_it_carries_the_expedite_label():
    assert run(pull("opened", T0), red=True).phase is Phase.HELD
    expedited = run(pull("opened", T0, labels=("stoplight:expedite",)), red=True)
    assert expedited.phase is Phase.WAITING
    held = run(pull("opened", T0), red=True)
    assert admit(held, T0 + timedelta(hours=1)).wait_since == T0 + timedelta(hours=1)


def test_an_author_the_team_ignores_never_joins_the_queue():
    rules = Rules(ignore_authors=frozenset({"dependabot[bot]"}))
    record = advance(None, pull("opened", T0, author="dependabot[bot]"), TEAM, rules, T0)
    assert record.phase is Phase.IGNORED
