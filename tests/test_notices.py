"""Which Slack notices go out, and where, through a recorder (the HTTP of Slack is tested
end to end in test_slack_notices.py)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from stoplight.clients.slack import Posted
from tests.conftest import deliver
from tests.recorders import RecordedSlack
from tests.test_slack_notices import SHOP_CONFIG, open_pulls

YELLOW = "🟡 shop is yellow: review queue filling"
RED = "🔴 shop is red: swarm on reviews"


@pytest.fixture
def slack(rt, github) -> RecordedSlack:
    rt.settings = rt.settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-test")})
    github.put_config("octo/shop", SHOP_CONFIG)  # the team's channel and mentions
    rt.slack_writer = recorder = RecordedSlack()
    return recorder


def test_each_change_of_the_light_is_one_notice_in_the_teams_channel(rt, clock, slack):
    open_pulls(rt, clock, 8)
    assert slack.headers() == [YELLOW, RED]
    assert [channel for channel, _ in slack.posts] == ["#shop-reviews"] * 2


def test_the_red_notice_follows_the_queue_in_place(rt, clock, slack):
    pulls = open_pulls(rt, clock, 8)
    for pull in pulls[:5]:
        deliver(rt, pull.review("bob", "approved", clock.now()))
    assert slack.headers() == [YELLOW, RED]  # no new post
    posted, message = slack.updates[-1]
    assert posted == Posted(channel="#shop-reviews", ts="2.000000")  # the red post
    assert "octo/shop#6" in message.blocks[3]["text"]["text"]


def test_the_first_light_of_a_team_is_announced_to_nobody(rt, clock, slack):
    open_pulls(rt, clock, 1)
    assert slack.posts == [] and slack.updates == []
