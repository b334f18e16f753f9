"""The rule that decides whether a PR that becomes ready enters review or is held."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stoplight.config import schema
from stoplight.core.admission import Entrance, HoldReason, hold_reason, pull_hold_reason
from stoplight.core.changes import PullSnapshot
from stoplight.core.light import Level
from stoplight.core.pulls import AgentRules, Rules

AT = datetime(2026, 12, 1, 9, tzinfo=UTC)


def snapshot(number: int, author: str = "alice", *, person: str = "", labels=()) -> PullSnapshot:
    return PullSnapshot(
        repo_id=1001, repo="octo/shop", number=number, title=f"PR {number}",
        url=f"https://github.com/octo/shop/pull/{number}", author=author,
        author_is_bot=author.endswith("[bot]"), head_sha=f"{number:040x}", draft=False,
        open=True, updated_at=AT, labels=tuple(labels), person=person,
    )  # fmt: skip


def rules_of(text: str) -> Rules:
    config = schema.load(text)
    assert isinstance(config, schema.Config), config
    return config.rules()


@pytest.mark.parametrize(
    ("level", "agent", "expected"),
    [
        (Level.GREEN, False, None),
        (Level.GREEN, True, None),
        (Level.YELLOW, False, None),  # people's PRs enter at yellow
        (Level.YELLOW, True, HoldReason.AGENT_LIGHT),  # agents' wait from yellow on
        (Level.RED, False, HoldReason.RED),
        (Level.RED, True, HoldReason.RED),  # red is the reason, for agents too
    ],
)
def test_agents_wait_from_yellow_and_people_from_red(level, agent, expected):
    assert hold_reason(Entrance(level), Rules(), agent=agent, person="alice") == expected


def test_at_most_max_waiting_agent_prs_wait_at_once():
    rules = Rules(agents=AgentRules(max_waiting=2))
    one, two = Entrance(Level.GREEN, agents_waiting=1), Entrance(Level.GREEN, agents_waiting=2)
    assert hold_reason(one, rules, agent=True, person="alice") is None
    assert hold_reason(two, rules, agent=True, person="alice") is HoldReason.AGENTS_FULL
    assert hold_reason(two, rules, agent=False, person="alice") is None  # people are not capped


def test_a_persons_agents_count_with_their_own_prs_against_wip_per_author():
    rules = Rules(wip_per_author=2)
    waiting = [snapshot(1), snapshot(2, "Copilot", person="alice"), snapshot(3, "bob")]
    entrance = Entrance.of(Level.GREEN, waiting, rules)
    assert entrance.waiting_by_person == {"alice": 2, "bob": 1}
    assert entrance.agents_waiting == 1
    assert pull_hold_reason(entrance, snapshot(4), rules) is HoldReason.WIP
    assert pull_hold_reason(entrance, snapshot(5, "bob"), rules) is None
    # one more of bob's fills his share too
    fuller = entrance.with_one_more(snapshot(5, "bob"), rules)
    assert pull_hold_reason(fuller, snapshot(6, "bob"), rules) is HoldReason.WIP


def test_the_expedite_label_admits_whatever_the_rule_says():
    rules = Rules(wip_per_author=1)
    entrance = Entrance(Level.RED, agents_waiting=9, waiting_by_person={"alice": 5})
    urgent = snapshot(7, "Copilot", person="alice", labels=["stoplight:expedite"])
    assert pull_hold_reason(entrance, urgent, rules) is None


def test_a_label_makes_a_persons_own_pr_an_agents():
    rules = Rules()
    assert rules.is_agent(snapshot(1, "alice", labels=["stoplight:agent"]))
    assert rules.is_agent(snapshot(2, "copilot-swe-agent[bot]"))
    assert not rules.is_agent(snapshot(3, "alice"))


def test_a_team_that_does_not_hold_at_red_still_keeps_its_agent_lane():
    rules = rules_of("hold_when_red: false")
    assert hold_reason(Entrance(Level.RED), rules, agent=False, person="a") is None
    assert hold_reason(Entrance(Level.RED), rules, agent=True, person="a") is HoldReason.AGENT_LIGHT


def test_agents_and_wip_per_author_read_from_the_file():
    default = rules_of("")
    assert default.agents.hold_from is Level.YELLOW and default.agents.max_waiting == 3
    assert "Copilot" in default.agents.authors and default.wip_per_author is None
    custom = rules_of(
        "agents: {authors: [my-agent], label: robot, hold_from: red, max_waiting: null}\n"
        "wip_per_author: 4"
    )
    assert custom.agents == AgentRules(
        authors=frozenset({"my-agent"}), label="robot", hold_from=None, max_waiting=None
    )
    assert custom.wip_per_author == 4
    # hold_from red: agents' PRs are held only when people's are
    assert hold_reason(Entrance(Level.YELLOW), custom, agent=True, person="a") is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("agents: {hold_from: green}", "agents.hold_from"),
        ("agents: {max_waiting: 0}", "agents.max_waiting"),
        ("agents: {authors: ['not a login']}", "agents.authors"),
        ("agents: {hold_for: yellow}", "agents.hold_for"),
        ("wip_per_author: 0", "wip_per_author"),
    ],
)
def test_bad_agent_keys_are_errors_naming_the_key(text, key):
    loaded = schema.load(text)
    assert isinstance(loaded, schema.Invalid)
    assert key in loaded.message
