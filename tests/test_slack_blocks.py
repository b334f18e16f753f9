"""The notice's content, field by field, and Block Kit's limits."""

from __future__ import annotations

from datetime import timedelta

from stoplight.core.light import Level, LightState, Measures, Policy
from stoplight.core.pulls import Phase, PullRecord
from stoplight.effects.notice_blocks import (
    MAX_BLOCKS,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    NoticeContext,
    light_notice,
)
from stoplight.state.views import TeamView, WaitingPull
from tests.fakes import START

URL = "https://stoplight.example/teams/42/octo%2Fshop"


def record(number: int, **fields: object) -> PullRecord:
    values: dict[str, object] = {
        "repo_id": 1001,
        "repo": "octo/shop",
        "number": number,
        "title": f"Change number {number}",
        "url": f"https://github.com/octo/shop/pull/{number}",
        "author": "alice",
        "author_is_bot": False,
        "head_sha": "a" * 40,
        "draft": False,
        "open": True,
        "updated_at": START,
        "additions": 40,
        "deletions": 10,
        "requested_reviewers": ("bob", "carol"),
        "team": "octo/shop",
        "phase": Phase.WAITING,
        "wait_since": START,
    }
    return PullRecord(**(values | fields))


def view(
    level: Level,
    pulls: list[PullRecord],
    *,
    name: str = "octo/shop",
    waiting: int = 0,
    held: int = 0,
):
    now = START + timedelta(hours=50)
    lines = sum(pull.lines for pull in pulls)
    return TeamView(
        installation_id=42,
        key="octo/shop",
        name=name,
        level=level,
        since=now,
        measures=Measures(waiting=waiting or len(pulls), oldest_since=START, lines=lines),
        oldest=timedelta(hours=50),
        policy=Policy(),
        waiting=tuple(WaitingPull(pull, now - pull.wait_since) for pull in pulls),
        held=held,
    )


def sections(blocks: list[dict]) -> list[str]:
    return [
        block["text"]["text"] for block in blocks if block["type"] == "section" and "text" in block
    ]


def test_red_notice_field_by_field():
    pulls = [record(n, wait_since=START + timedelta(hours=n)) for n in range(1, 10)]
    pulls[0] = record(1, title="Fix <script> & escape > all", additions=1200, deletions=3)
    previous = LightState(Level.YELLOW, START + timedelta(hours=40))
    context = NoticeContext(previous, users={"bob": "U0BOB"}, team_url=URL)

    message = light_notice(view(Level.RED, pulls, held=3), context)
    blocks = message.blocks

    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🔴 octo/shop is red: swarm on reviews"},
    }
    call_to_action, *listed = sections(blocks)
    assert call_to_action.startswith("*Stop starting new work. Review these PRs first*")
    assert "3 PRs are held and enter review as the queue drains." in call_to_action
    assert [field["text"] for field in blocks[2]["fields"]] == [
        "*Waiting*\n9 PRs (yellow 4, red 8)",
        "*Oldest wait*\n2d 2h (yellow 1d, red 2d)",
        "*Lines waiting*\n1,603 (yellow 1,000, red 2,500)",
    ]
    assert len(listed) == 5
    assert listed[0] == (
        "*<https://github.com/octo/shop/pull/1|octo/shop#1>* "
        "Fix &lt;script&gt; &amp; escape &gt; all\n"
        "waiting 2d 2h · size/XXL (1,203 lines) · reviewers: <@U0BOB>, carol"
    )
    assert listed[1] == (
        "*<https://github.com/octo/shop/pull/2|octo/shop#2>* Change number 2\n"
        "waiting 2d · size/M (50 lines) · reviewers: <@U0BOB>, carol"
    )
    assert [line.split("|")[1].split(">")[0] for line in listed] == [
        f"octo/shop#{n}" for n in range(1, 6)
    ]
    assert blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"and 4 more waiting · <{URL}|the team's queue>"}],
    }
    assert message.text.startswith(
        "🔴 octo/shop is red: swarm on reviews. 9 PRs waiting, oldest 2d 2h. "
        "Stop starting new work; review first: <https://github.com/octo/shop/pull/1|octo/shop#1>"
    )


def test_yellow_notice_lists_prs_and_asks_for_a_review_first():
    previous = LightState(Level.GREEN, START)
    message = light_notice(view(Level.YELLOW, [record(1)]), NoticeContext(previous))
    call_to_action, pull = sections(message.blocks)
    assert call_to_action == (
        "The queue is filling. Before starting new work, review a teammate's PR."
    )
    assert "reviewers: bob, carol" in pull  # no Slack ids known: GitHub logins


def test_green_all_clear_says_how_long_the_light_was_red_and_lists_nothing():
    previous = LightState(Level.RED, START + timedelta(hours=47, minutes=30))
    message = light_notice(view(Level.GREEN, [record(1)]), NoticeContext(previous))
    assert message.blocks[0]["text"]["text"] == "🟢 octo/shop is green again"
    assert sections(message.blocks) == [
        "All clear: the review queue is flowing again after 2h 30m at red."
    ]
    assert message.text == "🟢 octo/shop is green again. All clear after 2h 30m."


def test_block_kit_limits_hold_with_long_names_titles_and_many_prs():
    title = "<&>" * 400
    pulls = [
        record(n, title=title, requested_reviewers=tuple(f"reviewer-{i}" * 5 for i in range(200)))
        for n in range(1, 60)
    ]
    team = view(Level.RED, pulls, name="a-very-long-team-name-" * 20, waiting=500, held=120)
    message = light_notice(team, NoticeContext(LightState(Level.GREEN, START)))

    assert len(message.blocks) <= MAX_BLOCKS
    assert len(message.blocks[0]["text"]["text"]) <= MAX_HEADER_TEXT
    texts = sections(message.blocks)
    assert len(texts) == 6  # the call to action and five PRs
    assert all(len(text) <= MAX_SECTION_TEXT for text in texts)
    assert all("<&>" not in text for text in texts[1:])  # titles escaped
    assert len(message.text) <= MAX_SECTION_TEXT


def test_an_agents_pr_says_whose_work_it_is_and_mentions_that_person():
    agent = record(1, author="Copilot", author_is_bot=True, person="alice")
    previous = LightState(Level.GREEN, START)
    context = NoticeContext(previous, users={"alice": "U0ALICE"})
    _, agents_line, persons_line = sections(
        light_notice(view(Level.YELLOW, [agent, record(2)]), context).blocks
    )
    assert agents_line.splitlines()[1] == (
        "Copilot for <@U0ALICE> · waiting 2d 2h · size/M (50 lines) · reviewers: bob, carol"
    )
    assert persons_line.splitlines()[1].startswith("waiting ")  # a person's PR: no byline
