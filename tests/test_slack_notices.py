"""Slack notices end to end: real deliveries, real Redis, a fake Slack on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from stoplight.clients import slack
from stoplight.core.light import Level
from stoplight.effects import notices
from stoplight.pipeline import lights
from stoplight.pipeline.context import InstallationContext
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver, run_jobs
from tests.fakes import Pull
from tests.slack_fake import CHANNEL_ID
from tests.test_agents import SWE_AGENT, copilot_opened, copilot_pull, github_user

TEAM = "octo/shop"  # a repository in no team
SHOP_TEAM = "shop@octo/shop"  # the team `shop` of octo/shop's own file (SHOP_CONFIG)


SHOP_CONFIG = """
teams:
  - name: shop
    slack_channel: "#shop-reviews"
    slack_users: {bob: U0BOB}
"""


@pytest.fixture
def bot(rt, fake_slack, github):
    rt.settings = rt.settings.model_copy(
        update={"slack_bot_token": SecretStr("xoxb-test"), "slack_api_url": fake_slack.api_url}
    )
    github.put_config("octo/shop", SHOP_CONFIG)  # the team's channel and mentions
    return fake_slack


@pytest.fixture
def webhook(rt, fake_slack):
    rt.settings = rt.settings.model_copy(
        update={"slack_webhook_url": SecretStr(fake_slack.webhook_url)}
    )
    return fake_slack


def open_pulls(rt, clock, count: int, start: int = 1) -> list[Pull]:
    pulls = []
    for number in range(start, start + count):
        pull = Pull(number=number, head_sha=f"{number:040x}", reviewers=["bob", "carol"])
        deliver(rt, pull.event("opened", clock.now()))
        pulls.append(pull)
        clock.advance(minutes=5)
    return pulls


def headers(posts: list[dict]) -> list[str]:
    return [post["blocks"][0]["text"]["text"] for post in posts]


def scheduled_slack_jobs(rt) -> list[Job]:
    registry = ScheduledJobRegistry(queue=rt.lanes.shared)
    jobs = Job.fetch_many(registry.get_job_ids(), connection=rt.redis)
    return [job for job in jobs if job is not None and ".send_light_notice" in job.func_name]


def run_scheduled_notices(rt) -> None:
    """Run the scheduled notice jobs now, as RQ's scheduler would once their time comes."""
    registry = ScheduledJobRegistry(queue=rt.lanes.shared)
    for job in scheduled_slack_jobs(rt):
        registry.remove(job)
        rt.lanes.shared.enqueue_job(job)
    run_jobs(rt)


def test_red_posts_one_message_naming_the_waiting_prs_and_green_one_all_clear(
    rt, github, clock, bot
):
    pulls = open_pulls(rt, clock, 8)
    assert headers(bot.posts()) == [
        "🟡 shop is yellow: review queue filling",
        "🔴 shop is red: swarm on reviews",
    ]
    red = bot.posts()[1]
    assert red["channel"] == "#shop-reviews"
    texts = [block["text"]["text"] for block in red["blocks"] if "text" in block]
    listed = texts[2:]  # after the header and the call to action
    assert [line.split(">*")[0] for line in listed] == [
        f"*<https://github.com/octo/shop/pull/{n}|octo/shop#{n}" for n in range(1, 6)
    ]
    assert "reviewers: <@U0BOB>, carol" in listed[0]
    assert "Stop starting new work" in red["text"]
    assert bot.calls[0].authorization == "Bearer xoxb-test"

    # Reviews drain the queue; the red message follows in place, no new post.
    for pull in pulls[:5]:
        deliver(rt, pull.review("bob", "approved", clock.now()))
    assert len(bot.posts()) == 2
    latest = bot.updates()[-1]
    assert latest["ts"] == "1700000000.000002"  # the red post's
    assert latest["channel"] == CHANNEL_ID
    assert "octo/shop#6" in latest["blocks"][3]["text"]["text"]

    clock.advance(minutes=10)  # the cooldown ends
    lights.refresh_team(InstallationContext.of(rt, 42), SHOP_TEAM)
    run_jobs(rt)
    assert headers(bot.posts()) == [
        "🟡 shop is yellow: review queue filling",
        "🔴 shop is red: swarm on reviews",
        "🟢 shop is green again",
    ]
    assert "after 15m at red" in bot.posts()[2]["blocks"][1]["text"]["text"]


def test_ten_redeliveries_of_the_red_delivery_give_one_message(rt, github, clock, bot):
    open_pulls(rt, clock, 7)
    eighth = Pull(number=8, head_sha=f"{8:040x}")
    event = eighth.event("opened", clock.now())
    deliver(rt, event, delivery_id="turns-red")
    for attempt in range(10):
        deliver(rt, event, delivery_id="turns-red")  # GitHub's redelivery keeps the id
        deliver(rt, event, delivery_id=f"retry-{attempt}")  # a new id with the same content
    assert headers(bot.posts()).count("🔴 shop is red: swarm on reviews") == 1
    assert len(bot.posts()) == 2  # yellow, then red
    assert bot.updates() == []  # the list never changed


def test_concurrent_workers_post_one_notice_per_change(rt, github, clock, bot):
    with_slack, rt.settings = rt.settings, rt.settings.model_copy(update={"slack_bot_token": None})
    store = QueueStore(rt.redis, 42)
    open_pulls(rt, clock, 3)
    previous = store.light(SHOP_TEAM)
    open_pulls(rt, clock, 1, start=4)  # turns yellow while Slack is off: no notice yet
    current = store.light(SHOP_TEAM)
    assert previous is not None and current is not None and current.level is Level.YELLOW
    change = notices.LightChange(previous, current)
    rt.settings = with_slack

    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        notices.send_notice(rt, 42, SHOP_TEAM, change)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(bot.posts()) == 1
    run_scheduled_notices(rt)  # the losers' checks on the claim find it posted
    assert len(bot.posts()) == 1


def test_first_light_posts_nothing(rt, github, clock, bot):
    open_pulls(rt, clock, 1)
    assert bot.attempts == []


def test_rate_limit_reschedules_after_retry_after_then_delivers_once(rt, github, clock, bot):
    bot.fail_next(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
    open_pulls(rt, clock, 4)
    assert bot.attempts == ["chat.postMessage"] and bot.posts() == []

    retries = scheduled_slack_jobs(rt)
    assert len(retries) == 1
    due = ScheduledJobRegistry(queue=rt.lanes.shared).get_scheduled_time(retries[0])
    turned_yellow = clock.now() - timedelta(minutes=5)
    assert due.timestamp() == (turned_yellow + timedelta(seconds=30)).timestamp()

    run_scheduled_notices(rt)
    assert headers(bot.posts()) == ["🟡 shop is yellow: review queue filling"]


def test_server_errors_retry_and_deliver_late_not_lost(rt, github, clock, bot):
    for _ in range(3):  # the first try and both quick retries
        bot.fail_next(500, {"ok": False, "error": "internal_error"})
    open_pulls(rt, clock, 4)
    assert bot.attempts == ["chat.postMessage"] * 3 and bot.posts() == []

    run_scheduled_notices(rt)  # RQ's retry of the failed job
    assert headers(bot.posts()) == ["🟡 shop is yellow: review queue filling"]


def test_invalid_token_is_logged_once_and_not_retried(rt, github, clock, bot, caplog):
    for _ in range(2):
        bot.fail_next(200, {"ok": False, "error": "invalid_auth"})
    with caplog.at_level(logging.ERROR, logger="stoplight.effects.notices"):
        open_pulls(rt, clock, 8)  # yellow, then red: two notices refused
    assert bot.attempts == ["chat.postMessage"] * 2
    errors = [r.getMessage() for r in caplog.records if r.name == "stoplight.effects.notices"]
    assert len(errors) == 1
    assert "invalid_auth" in errors[0] and "check SLACK_BOT_TOKEN" in errors[0]
    assert "xoxb-test" not in errors[0]
    assert scheduled_slack_jobs(rt) == []


def test_webhook_takes_notices_without_a_bot_token(rt, github, clock, webhook):
    open_pulls(rt, clock, 4)
    assert [call.method for call in webhook.calls] == ["webhook"]
    body = webhook.calls[0].body
    assert body["blocks"][0]["text"]["text"] == "🟡 octo/shop is yellow: review queue filling"
    assert "octo/shop#1" in body["text"]


def test_bot_without_a_team_channel_falls_back_to_the_webhook(rt, github, clock, webhook):
    rt.settings = rt.settings.model_copy(
        update={"slack_bot_token": SecretStr("xoxb-test"), "slack_api_url": webhook.api_url}
    )
    open_pulls(rt, clock, 4)
    assert [call.method for call in webhook.calls] == ["webhook"]


def test_without_slack_settings_no_notice_job_runs(rt, github, clock, fake_slack):
    open_pulls(rt, clock, 8)
    assert fake_slack.attempts == []
    light = QueueStore(rt.redis, 42).light(TEAM)
    assert light is not None and light.level is Level.RED
    assert slack.describe(rt.settings).startswith("Slack notices off")


def test_unreachable_slack_is_retried_by_the_job_until_it_answers(rt, github, clock, bot):
    reachable = rt.settings
    rt.settings = rt.settings.model_copy(
        update={"slack_api_url": f"http://127.0.0.1:{_closed_port()}/api/"}
    )
    open_pulls(rt, clock, 4)
    assert bot.attempts == [] and len(scheduled_slack_jobs(rt)) == 1

    rt.settings = reachable
    run_scheduled_notices(rt)
    assert headers(bot.posts()) == ["🟡 shop is yellow: review queue filling"]


def test_a_slack_outage_of_hours_delays_the_notice_but_does_not_lose_it(rt, github, clock, bot):
    reachable = rt.settings
    rt.settings = rt.settings.model_copy(
        update={"slack_api_url": f"http://127.0.0.1:{_closed_port()}/api/"}
    )
    open_pulls(rt, clock, 4)
    outage = timedelta(0)
    while outage < timedelta(hours=2):
        [retry] = scheduled_slack_jobs(rt)
        due = ScheduledJobRegistry(queue=rt.lanes.shared).get_scheduled_time(retry)
        outage += due - datetime.now(UTC)  # RQ's wait before this retry
        run_scheduled_notices(rt)

    rt.settings = reachable
    run_scheduled_notices(rt)
    assert headers(bot.posts()) == ["🟡 shop is yellow: review queue filling"]


def _closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return closed.getsockname()[1]


def test_a_bot_with_neither_team_channel_nor_webhook_posts_nothing(rt, github, clock, fake_slack):
    rt.settings = rt.settings.model_copy(
        update={"slack_bot_token": SecretStr("xoxb-test"), "slack_api_url": fake_slack.api_url}
    )
    open_pulls(rt, clock, 8)
    assert fake_slack.attempts == []
    assert scheduled_slack_jobs(rt) == []


def test_start_up_says_how_notices_go_out(settings):
    bot_and_hook = settings.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-secret"),
            "slack_webhook_url": SecretStr("https://hooks.example/secret"),
        }
    )
    hook = settings.model_copy(update={"slack_webhook_url": SecretStr("https://hooks.example/s")})
    assert slack.describe(bot_and_hook) == (
        "Slack notices: bot token, API at https://slack.com/api/"
        " (webhook for teams without a channel)"
    )
    assert slack.describe(hook) == "Slack notices: incoming webhook"
    assert slack.describe(settings) == (
        "Slack notices off: set SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL to turn them on"
    )


def test_a_notice_names_an_agents_pr_as_its_persons_work(rt, github, clock, bot):
    open_pulls(rt, clock, 3)
    bob = github_user("bob", 8)
    agents = copilot_pull(number=4, head_sha=f"{4:040x}", assignees=[SWE_AGENT, bob])
    deliver(rt, copilot_opened(agents, clock.now()))

    (yellow,) = bot.posts()
    listed = [block["text"]["text"] for block in yellow["blocks"] if "text" in block][2:]
    assert "octo/shop#4" in listed[3]
    assert "Copilot for <@U0BOB> · waiting 0s" in listed[3]
