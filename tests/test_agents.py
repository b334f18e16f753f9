"""AI coding agents' PRs: recognised by their author, credited to the person who set the agent
to work, and named to people as `Copilot for <person>`."""

from __future__ import annotations

from typing import Any

import pytest

from stoplight.core.agents import credited_person
from stoplight.core.changes import PullSnapshot
from stoplight.core.pulls import Phase, PullRecord, Rules
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver
from tests.fakes import Pull


def github_user(login: str, user_id: int, kind: str = "User") -> dict[str, Any]:
    """A user object as webhooks carry it (the fields besides login and type are ignored)."""
    return {
        "login": login,
        "id": user_id,
        "node_id": f"{'BOT' if kind == 'Bot' else 'U'}_kgDO{user_id}",
        "type": kind,
        "site_admin": False,
        "html_url": f"https://github.com/{login}",
        "url": f"https://api.github.com/users/{login}",
    }


COPILOT = github_user("Copilot", 198982749, "Bot")
SWE_AGENT = github_user("copilot-swe-agent[bot]", 198982750, "Bot")
ALICE = github_user("alice", 7)


def copilot_pull(**fields: Any) -> Pull:
    """A PR by Copilot's coding agent: it assigns itself and the person who gave it the work,
    and asks that person for review."""
    values: dict[str, Any] = {
        "author": "Copilot",
        "author_type": "Bot",
        "assignees": [SWE_AGENT, ALICE],
        "reviewers": ["alice"],
        "title": "[WIP] Fix the checkout total rounding",
    }
    return Pull(**(values | fields))


def copilot_opened(pull: Pull, at) -> tuple[str, dict[str, Any]]:
    name, payload = pull.event("opened", at)
    payload["pull_request"]["user"] = COPILOT
    payload["pull_request"]["requested_reviewers"] = [ALICE]
    payload["sender"] = COPILOT
    return name, payload


def test_copilots_pr_goes_through_the_app_credited_to_its_person(rt, github, clock):
    pull = copilot_pull()
    deliver(rt, copilot_opened(pull, clock.now()))

    record = QueueStore(rt.redis, 42).pull("1001#1")
    assert record is not None
    assert (record.author, record.author_is_bot, record.person) == ("Copilot", True, "alice")
    assert (record.by_agent, record.byline) == (True, "Copilot for alice")
    assert record.phase is Phase.WAITING
    assert [state for _, state, _ in github.statuses()] == ["success"]
    # GitHub answers 404 for /users/Copilot: nothing may ask it about the agent's account.
    assert not [path for path in github.gets() if "/users/" in path]


@pytest.mark.parametrize(
    ("author", "assignees", "requested", "person"),
    [
        ("Copilot", ["alice"], ["bob"], "alice"),  # who assigned the work
        ("Copilot", [], ["bob", "carol"], "bob"),  # else the person it asked for review
        ("copilot-swe-agent[bot]", [], ["bob"], "bob"),
        ("Copilot", [], [], "Copilot"),  # GitHub names nobody
        ("devin-ai-integration[bot]", ["alice"], ["bob"], "devin-ai-integration[bot]"),
        ("alice", ["bob"], ["carol"], "alice"),  # a person's PR is theirs
    ],
)
def test_the_person_an_agents_pr_is_credited_to(author, assignees, requested, person):
    assert credited_person(author, assignees, requested) == person


def test_bots_among_the_assignees_and_reviewers_are_passed_over(rt, github, clock):
    pull = copilot_pull(assignees=[SWE_AGENT], reviewers=["carol"])
    _, payload = copilot_opened(pull, clock.now())
    payload["pull_request"]["requested_reviewers"] = [
        github_user("Copilot", 198982749, "Bot"),
        github_user("carol", 9),
    ]
    deliver(rt, ("pull_request", payload))
    assert QueueStore(rt.redis, 42).pull("1001#1").person == "carol"


def test_the_person_stays_credited_after_their_review_takes_them_off_the_reviewers(
    rt, github, clock
):
    pull = copilot_pull(assignees=[SWE_AGENT])
    deliver(rt, copilot_opened(pull, clock.now()))
    clock.advance(minutes=20)
    pull.reviewers = []  # alice reviewed: GitHub no longer lists her as requested
    deliver(rt, pull.review("alice", "commented", clock.now()))
    deliver(rt, pull.event("edited", clock.now()))
    assert QueueStore(rt.redis, 42).pull("1001#1").person == "alice"


@pytest.mark.parametrize(
    "author", ["Copilot", "devin-ai-integration[bot]", "google-labs-jules[bot]", "openhands-agent"]
)
def test_the_documented_agent_accounts_are_agents_by_default(author):
    assert Rules().is_agent(snapshot_by(author))


def snapshot_by(author: str) -> PullSnapshot:
    return PullSnapshot(
        repo_id=1001, repo="octo/shop", number=1, title="A change",
        url="https://github.com/octo/shop/pull/1", author=author,
        author_is_bot=author.endswith("[bot]"), head_sha="a" * 40, draft=False, open=True,
        updated_at="2026-11-02T09:00:00Z",
    )  # fmt: skip


def test_a_record_stored_before_persons_were_known_is_its_authors():
    stored = {
        "repo_id": 1001,
        "repo": "octo/shop",
        "number": 1,
        "title": "Old",
        "url": "https://github.com/octo/shop/pull/1",
        "author": "alice",
        "author_is_bot": False,
        "head_sha": "a" * 40,
        "draft": False,
        "open": True,
        "updated_at": "2026-11-02T09:00:00Z",
        "team": "octo/shop",
        "phase": "waiting",
    }
    record = PullRecord.model_validate(stored)
    assert (record.person, record.byline, record.by_agent) == ("alice", "alice", False)
