"""Reviews by bots (AI reviewers, Copilot): kept and shown, but their verdicts count for the
queue only when the team lists the bot in `trusted_review_bots`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from stoplight.config import schema
from stoplight.core.agents import is_bot
from stoplight.core.pulls import Phase
from stoplight.pipeline import sync
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver, run_jobs
from tests.fakes import START, Pull
from tests.test_sync import GitHubReads, _review, _wipe_queue_state

RABBIT = "coderabbitai[bot]"


@pytest.fixture
def store(rt) -> QueueStore:
    return QueueStore(rt.redis, 42)


def opened(rt, clock) -> Pull:
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=5)
    return pull


def bot_review(login: str, state: str, commit: str, at: datetime) -> dict[str, Any]:
    """A review as GitHub's REST list gives it, by a bot account."""
    return {**_review(login, state, commit, at), "user": {"login": login, "type": "Bot"}}


def test_a_bots_approval_leaves_the_pr_waiting_and_its_wait_unbroken(rt, github, clock, store):
    pull = opened(rt, clock)
    deliver(rt, pull.review(RABBIT, "approved", clock.now(), reviewer_type="Bot"))

    record = store.pull("1001#1")
    assert (record.phase, record.wait_since) == (Phase.WAITING, START)
    assert store.measures("octo/shop").waiting == 1
    kept = record.reviews[RABBIT]
    assert (kept.state, kept.bot) == ("approved", True)  # kept, to be shown for what it is


def test_a_bots_request_for_changes_leaves_the_pr_waiting(rt, github, clock, store):
    pull = opened(rt, clock)
    deliver(rt, pull.review(RABBIT, "changes_requested", clock.now(), reviewer_type="Bot"))
    assert store.pull("1001#1").phase is Phase.WAITING


def test_copilot_reviews_are_a_bots_and_untrusted_by_default(rt, github, clock, store):
    pull = opened(rt, clock)
    # Copilot reviews as `Copilot`, no `[bot]` suffix; a payload without the type still tells.
    deliver(rt, pull.review("Copilot", "changes_requested", clock.now(), reviewer_type="Bot"))
    assert store.pull("1001#1").phase is Phase.WAITING
    deliver(rt, pull.review("Copilot", "approved", clock.now(), reviewer_type="User"))
    assert store.pull("1001#1").phase is Phase.WAITING
    assert is_bot("Copilot") and is_bot("renovate[bot]") and is_bot("ci", "Bot")
    assert not is_bot("alice")


def test_a_trusted_bots_approval_and_change_request_count(rt, github, clock, store):
    github.put_config("octo/shop", 'trusted_review_bots: ["coderabbitai[bot]"]\n')
    pull = opened(rt, clock)
    deliver(rt, pull.review(RABBIT, "approved", clock.now(), reviewer_type="Bot"))
    assert store.pull("1001#1").phase is Phase.APPROVED
    deliver(rt, pull.review(RABBIT, "changes_requested", clock.now(), reviewer_type="Bot"))
    assert store.pull("1001#1").phase is Phase.CHANGES_REQUESTED
    # Trusting one bot trusts no other.
    other = Pull(number=2, head_sha="b" * 40)
    deliver(rt, other.event("opened", clock.now()))
    deliver(rt, other.review("Copilot", "approved", clock.now(), reviewer_type="Bot"))
    assert store.pull("1001#2").phase is Phase.WAITING


def test_a_persons_approval_after_a_bots_ends_the_wait(rt, github, clock, store):
    pull = opened(rt, clock)
    deliver(rt, pull.review(RABBIT, "approved", clock.now(), reviewer_type="Bot"))
    clock.advance(minutes=30)
    deliver(rt, pull.review("bob", "approved", clock.now()))
    record = store.pull("1001#1")
    assert record.phase is Phase.APPROVED
    assert set(record.reviews) == {RABBIT, "bob"}


def test_a_sync_reads_which_reviewers_are_bots(rt, github, clock, store):
    reads = GitHubReads(github, {42: ["octo/shop"]})
    pull = opened(rt, clock)
    bots = [
        bot_review("Copilot", "APPROVED", pull.head_sha, clock.now()),
        bot_review(RABBIT, "CHANGES_REQUESTED", pull.head_sha, clock.now()),
    ]
    reads.add(pull, clock.now(), bots)

    _wipe_queue_state(rt, 42)
    sync.sync_all(rt)
    run_jobs(rt)
    record = store.pull("1001#1")
    assert record.phase is Phase.WAITING
    assert {login: review.bot for login, review in record.reviews.items()} == {
        "Copilot": True,
        RABBIT: True,
    }

    clock.advance(minutes=5)  # a person approves: GitHub lists the PR as updated
    reads.add(pull, clock.now(), [*bots, _review("bob", "APPROVED", pull.head_sha, clock.now())])
    sync.sync_all(rt)
    run_jobs(rt)
    assert store.pull("1001#1").phase is Phase.APPROVED


def test_trusted_review_bots_is_a_list_of_logins_and_none_by_default():
    assert schema.DEFAULT_CONFIG.rules().trusted_review_bots == frozenset()
    loaded = schema.load('trusted_review_bots: ["coderabbitai[bot]", Copilot]\n')
    assert isinstance(loaded, schema.Config)
    assert loaded.rules().trusted_review_bots == frozenset({RABBIT, "Copilot"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'trusted_review_bots: [Copilot, "rabbit bot"]',
            "trusted_review_bots[1]: 'rabbit bot' is not a GitHub login such as octocat",
        ),
        ("trusted_review_bots: Copilot", "trusted_review_bots: input should be a valid list"),
        (
            "trusted_review_bots: [[Copilot]]",
            "trusted_review_bots[0]: ['Copilot'] is not a GitHub login",
        ),
    ],
)
def test_a_bad_trusted_review_bot_is_named_by_its_dotted_path(text, expected):
    loaded = schema.load(text)
    assert isinstance(loaded, schema.Invalid)
    assert loaded.message.startswith("Invalid .github/stoplight.yml: ")
    assert expected in loaded.message
