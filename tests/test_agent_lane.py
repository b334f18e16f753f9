"""The agent lane and per-author WIP, tried as a team would, through the app on a fake clock."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from rich.console import Console

from benchmarks.team_history import TeamShape, deliveries_of, team_config, team_year
from stoplight.backtest.render import render
from stoplight.backtest.report import TeamResult, run_backtest
from stoplight.backtest.summary import describe_held
from stoplight.config.repos import RepoConfigs
from stoplight.core.light import Level, LightState
from stoplight.core.pulls import HoldReason, Phase, Rules
from stoplight.effects.notice_blocks import NoticeContext, light_notice
from stoplight.effects.plan import held_description
from stoplight.ops import terminal
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import load_team_view
from tests.conftest import deliver
from tests.fakes import Pull
from tests.test_agents import SWE_AGENT, copilot_opened, copilot_pull, github_user
from tests.test_teams import last_status

WEB = "web@octo/shop"
PEOPLE = {"alice": github_user("alice", 7), "bob": github_user("bob", 8)}


def config(yellow: int, red: int, extra: str = "") -> str:
    return (
        "teams:\n  - name: web\n"
        f"    thresholds: {{yellow: {{waiting: {yellow}}}, red: {{waiting: {red}}}}}\n"
        f"    cooldown: 0s\n{extra}"
    )


def person_pull(rt, clock, number: int, author: str = "alice") -> Pull:
    pull = Pull(number=number, head_sha=f"{number:040x}", author=author)
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=1)
    return pull


def agent_pull(rt, clock, number: int, person: str = "alice") -> Pull:
    """A PR of Copilot's coding agent, set to work by `person`."""
    pull = copilot_pull(
        number=number, head_sha=f"{number:040x}", assignees=[SWE_AGENT, PEOPLE[person]]
    )
    deliver(rt, copilot_opened(pull, clock.now()))
    clock.advance(minutes=1)
    return pull


def approve(rt, clock, pull: Pull) -> None:
    deliver(rt, pull.review("carol", "approved", clock.now()))
    clock.advance(minutes=1)


def phase(rt, pull: Pull) -> Phase:
    record = QueueStore(rt.redis, 42).pull(f"1001#{pull.number}")
    assert record is not None
    return record.phase


def test_at_yellow_an_agents_new_pr_is_held_and_a_persons_enters(rt, github, clock):
    github.put_config("octo/shop", config(3, 6))
    people = [
        person_pull(rt, clock, n, author) for n, author in ((1, "bob"), (2, "carol"), (3, "dan"))
    ]
    store = QueueStore(rt.redis, 42)
    assert store.light(WEB).level is Level.YELLOW

    agents = agent_pull(rt, clock, 10)
    own = person_pull(rt, clock, 11)

    assert (phase(rt, agents), phase(rt, own)) == (Phase.HELD, Phase.WAITING)
    assert store.pull("1001#10").held_for is HoldReason.AGENT_LIGHT
    assert last_status(github, agents) == (
        "pending",
        "Held (1st in line): agents wait while the queue is yellow",
    )
    for pull in people:  # the queue drains to one: green, and the agent's PR fits below yellow
        approve(rt, clock, pull)
    assert store.light(WEB).level is Level.GREEN
    assert phase(rt, agents) is Phase.WAITING
    assert last_status(github, agents)[0] == "success"


def test_at_most_max_waiting_agent_prs_wait_and_the_next_enters_when_one_leaves(rt, github, clock):
    github.put_config("octo/shop", config(10, 20, "agents: {max_waiting: 2}\n"))
    first, second = agent_pull(rt, clock, 1), agent_pull(rt, clock, 2, "bob")
    third = agent_pull(rt, clock, 3)
    person_pull(rt, clock, 4)  # people are not capped

    assert [phase(rt, pull) for pull in (first, second, third)] == [
        Phase.WAITING, Phase.WAITING, Phase.HELD,
    ]  # fmt: skip
    assert last_status(github, third) == (
        "pending",
        "Held (1st in line): 2 agent PRs are waiting already",
    )
    approve(rt, clock, first)
    assert phase(rt, third) is Phase.WAITING
    assert QueueStore(rt.redis, 42).measures(WEB).waiting == 3


def test_a_persons_fifth_pr_is_held_until_one_of_theirs_is_approved(rt, github, clock):
    github.put_config("octo/shop", config(10, 20, "wip_per_author: 4\n"))
    own = [person_pull(rt, clock, n) for n in (1, 2, 3)]
    agent_pull(rt, clock, 4)  # alice's agent: counted with her own
    fifth = person_pull(rt, clock, 5)
    bobs = person_pull(rt, clock, 6, "bob")

    assert (phase(rt, fifth), phase(rt, bobs)) == (Phase.HELD, Phase.WAITING)
    assert last_status(github, fifth) == ("pending", "Held (1st in line): alice has 4 PRs waiting")
    approve(rt, clock, own[0])
    assert phase(rt, fifth) is Phase.WAITING


def test_held_people_enter_before_held_agents(rt, github, clock):
    github.put_config("octo/shop", config(3, 5, "agents: {hold_from: red}\n"))
    queue = [person_pull(rt, clock, n, f"dev{n}") for n in range(1, 6)]
    store = QueueStore(rt.redis, 42)
    assert store.light(WEB).level is Level.RED
    agents = agent_pull(rt, clock, 10)  # first in line
    own = person_pull(rt, clock, 11)
    assert store.held_keys(WEB) == ["1001#10", "1001#11"]
    assert last_status(github, agents)[1].startswith("Held (1st in line): review queue is red")

    approve(rt, clock, queue[0])
    approve(rt, clock, queue[1])  # room for one: the person's PR takes it
    assert (phase(rt, own), phase(rt, agents)) == (Phase.WAITING, Phase.HELD)
    approve(rt, clock, queue[2])
    assert phase(rt, agents) is Phase.WAITING


def test_the_expedite_label_admits_an_agents_pr_at_yellow(rt, github, clock):
    github.put_config("octo/shop", config(1, 6))
    person_pull(rt, clock, 1)
    urgent = copilot_pull(number=2, head_sha="2" * 40, labels=["stoplight:expedite"])
    deliver(rt, copilot_opened(urgent, clock.now()))
    assert phase(rt, urgent) is Phase.WAITING


def indexes(rt) -> dict[str, Any]:
    team = QueueStore(rt.redis, 42).keys.team(WEB)
    return {
        "agents": rt.redis.zrange(team.waiting_agents, 0, -1),
        "people": rt.redis.zrange(team.waiting_people, 0, -1, withscores=True),
    }


def test_the_indexes_follow_the_waiting_set_in_and_out(rt, github, clock):
    github.put_config("octo/shop", config(10, 20))
    mine = person_pull(rt, clock, 1)
    agents = agent_pull(rt, clock, 2, "bob")
    assert indexes(rt) == {"agents": [b"1001#2"], "people": [(b"alice", 1.0), (b"bob", 1.0)]}
    approve(rt, clock, agents)
    approve(rt, clock, mine)
    assert indexes(rt) == {"agents": [], "people": []}


def test_each_reason_has_its_wording_within_githubs_140_characters():
    rules = Rules(wip_per_author=4)
    longest = "a" * 39  # GitHub's longest login
    worded = {
        reason: held_description(123, reason, light=Level.YELLOW, person=longest, rules=rules)
        for reason in HoldReason
    }
    assert worded == {
        HoldReason.RED: "Held (123rd in line): review queue is red. Enters review as it drains",
        HoldReason.AGENT_LIGHT: "Held (123rd in line): agents wait while the queue is yellow",
        HoldReason.AGENTS_FULL: "Held (123rd in line): 3 agent PRs are waiting already",
        HoldReason.WIP: f"Held (123rd in line): {longest} has 4 PRs waiting",
    }
    assert all(len(text) <= 140 for text in worded.values())
    # while the queue is red, red is everyone's reason
    assert "red" in held_description(1, HoldReason.WIP, light=Level.RED, person="a", rules=rules)


def devin_pull(rt, clock, number: int) -> Pull:
    pull = Pull(number=number, head_sha=f"{number:040x}", author="devin-ai-integration[bot]",
                author_type="Bot")  # fmt: skip
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=1)
    return pull


def test_the_view_json_and_notice_tell_the_agents_share_and_whose(rt, github, clock):
    github.put_config("octo/shop", config(4, 7, "agents: {max_waiting: 3}\n"))
    agent_pull(rt, clock, 1)
    agent_pull(rt, clock, 2)
    devin_pull(rt, clock, 3)
    for number, author in ((4, "bob"), (5, "carol"), (6, "dan")):
        person_pull(rt, clock, number, author)
    agent_pull(rt, clock, 7, "bob")  # yellow: held
    view = load_team_view(rt.redis, 42, WEB, clock.now(), RepoConfigs(rt.redis, 42).team(WEB))
    assert view is not None and view.level is Level.YELLOW

    assert view.as_json()["agents"] == {
        "waiting": 3,
        "held": 1,
        "whose": [
            {"agent": "Copilot for alice", "pulls": 2},
            {"agent": "Copilot for bob", "pulls": 1},
            {"agent": "Devin", "pulls": 1},
        ],
    }
    assert view.agents_share == 0.5
    previous = LightState(level=Level.GREEN, since=clock.now() - timedelta(hours=1))
    notice = light_notice(view, NoticeContext(previous=previous))
    line = (
        "3 of 6 waiting and 1 of 1 held are agents' "
        "(Copilot for alice 2, Copilot for bob 1, Devin 1)"
    )
    assert line in json.dumps(notice.blocks, ensure_ascii=False)


def test_the_terminal_headline_counts_the_agents_prs(rt, github, clock):
    github.put_config("octo/shop", config(1, 7))
    person_pull(rt, clock, 1)
    agent_pull(rt, clock, 2)
    view = load_team_view(rt.redis, 42, WEB, clock.now(), RepoConfigs(rt.redis, 42).team(WEB))
    assert view is not None
    console = Console(width=100, record=True)
    console.print(terminal._panel(view))
    assert "agents' PRs: 0 waiting, 1 held" in console.export_text()


@pytest.mark.slow
def test_the_backtest_replays_the_agent_lane_on_a_generated_history():
    """What `hold_from: yellow` would have done to a team whose PRs are a third Copilot's."""
    history = deliveries_of(team_year(TeamShape(days=60, by_agent=0.3), seed=11))
    limits = "{yellow: {waiting: 4}, red: {waiting: 8}}"

    def replayed(hold_from: str) -> TeamResult:
        config = team_config(limits) + f"agents: {{hold_from: {hold_from}, max_waiting: null}}\n"
        (team,) = run_backtest(history, window=timedelta(days=60), config=config).teams
        return team

    yellow_team = replayed("yellow")
    at_yellow, at_red = yellow_team.summary, replayed("red").summary
    assert at_yellow.held_agents > at_red.held_agents  # agents wait from yellow on
    assert at_yellow.held - at_yellow.held_agents <= at_red.held - at_red.held_agents
    assert at_yellow.as_json()["held"]["agents"]["count"] == at_yellow.held_agents
    assert "agents'" in describe_held(at_yellow)
    # the weekly figures tell agents' PRs leaving review, and their waits, from people's
    weeks = [week for week in at_yellow.weeks if week.agents_left]
    assert weeks and all(0 < (week.agents_share or 0) < 1 for week in weeks)
    figures = weeks[0].as_json()["agents"]
    assert figures["left"] == weeks[0].agents_left
    assert figures["median_wait_seconds"] is not None
    assert figures["people_median_wait_seconds"] is not None
    # and so does the report people read in the terminal
    console = Console(width=100, record=True)
    render(console, [yellow_team], None)
    text = console.export_text()
    assert "agents' out" in text and "people's median" in text
