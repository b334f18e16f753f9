"""The daily Slack digest: when it is due, that it goes out once a working day however many
workers run it, and what it says. Real Redis, a fake Slack on 127.0.0.1, the fake clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from stoplight.config.schema import ClaimsConfig, Invalid, load
from stoplight.core.calendar import DailySchedule
from stoplight.core.light import Level, Measures, Policy
from stoplight.effects import digest
from stoplight.effects.digest_blocks import DigestContext, Turnover, daily_digest
from stoplight.effects.notice_blocks import MAX_BLOCKS, MAX_HEADER_TEXT, MAX_SECTION_TEXT
from stoplight.pipeline import lights, runtime
from stoplight.pipeline.context import InstallationContext
from stoplight.state.claims import ClaimStore, Outcome
from stoplight.state.views import TeamView, WaitingPull
from stoplight.transport import jobs
from tests.conftest import UNPACED, deliver, run_due_jobs
from tests.fakes import START, FakeClock, Pull
from tests.slack_fake import FakeSlack
from tests.test_slack_blocks import record

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = frozenset(range(5))
TEAM = "shop@octo/shop"
# 5 Nov 2026 is a Thursday, and a holiday for the team.
BERLIN_CONFIG = """
teams:
  - name: shop
    slack_channel: "#shop-reviews"
    slack_users: {bob: U0BOB}
working_hours:
  timezone: Europe/Berlin
  holidays: [2026-11-05]
digest: {at: "09:30"}
"""


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def berlin_digest(holidays: frozenset[date] = frozenset()) -> DailySchedule:
    return DailySchedule(at=time(9, 30), timezone=BERLIN, days=WEEKDAYS, holidays=holidays)


# The moment itself


def test_the_next_digest_keeps_its_local_hour_across_the_autumn_change():
    schedule = berlin_digest()
    # Friday 23 October 2026, summer time (UTC+2); the clocks go back on Sunday the 25th.
    assert schedule.next_after(utc(2026, 10, 23, 7, 0)) == utc(2026, 10, 23, 7, 30)
    # Past Friday's moment: the weekend is skipped, and Monday's 09:30 is UTC+1.
    assert schedule.next_after(utc(2026, 10, 23, 7, 30)) == utc(2026, 10, 26, 8, 30)


def test_the_next_digest_keeps_its_local_hour_across_the_spring_change():
    # Clocks go forward on Sunday 28 March 2027: Friday's 09:30 is 08:30 UTC, Monday's 07:30.
    assert berlin_digest().next_after(utc(2027, 3, 26, 9, 0)) == utc(2027, 3, 29, 7, 30)


def test_holidays_and_days_off_have_no_digest():
    schedule = berlin_digest(frozenset({date(2026, 12, 24), date(2026, 12, 25)}))
    # After Wednesday 23 December: Thursday and Friday are holidays, then the weekend.
    assert schedule.next_after(utc(2026, 12, 23, 9, 0)) == utc(2026, 12, 28, 8, 30)
    assert schedule.moment_on(date(2026, 12, 24)) is None
    assert schedule.moment_on(date(2026, 12, 26)) is None  # a Saturday
    four_days = DailySchedule(time(9, 30), BERLIN, frozenset({0, 1, 2, 3}))
    assert four_days.next_after(utc(2026, 12, 31, 9, 0)) == utc(2027, 1, 4, 8, 30)


def test_the_turnover_of_a_monday_runs_from_fridays_start():
    since, until = berlin_digest().since_previous_working_day(date(2026, 10, 26))
    assert (since, until) == (utc(2026, 10, 22, 22, 0), utc(2026, 10, 25, 23, 0))


# The configuration


def digest_of(text: str) -> DailySchedule | None:
    config = load(text)
    assert not isinstance(config, Invalid)
    settings = config.team_for("octo/shop")
    assert not isinstance(settings, Invalid)
    return settings.digest


def test_digest_takes_the_team_timezone_days_and_holidays():
    assert digest_of(BERLIN_CONFIG) == DailySchedule(
        time(9, 30), BERLIN, WEEKDAYS, frozenset({date(2026, 11, 5)})
    )


def test_without_working_hours_the_digest_is_on_weekdays_in_utc_and_absent_means_none():
    assert digest_of('digest: {at: "08:00"}') == DailySchedule(time(8), ZoneInfo("UTC"), WEEKDAYS)
    assert digest_of("required_approvals: 1") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('digest: {at: "25:00"}', "digest.at: '25:00' is not a time of day such as 09:00"),
        ("digest: {}", "digest.at: field required"),
        ('digest: {at: "09:30", every: 1d}', "digest.every: unknown key"),
    ],
)
def test_a_bad_digest_is_named_by_its_key(text, message):
    invalid = load(text)
    assert isinstance(invalid, Invalid)
    assert invalid.message == f"Invalid .github/stoplight.yml: {message}"


# Sent once, at its moment


@pytest.fixture
def bot(rt, fake_slack):
    rt.settings = rt.settings.model_copy(
        update={"slack_bot_token": SecretStr("xoxb-test"), "slack_api_url": fake_slack.api_url}
    )
    return fake_slack


def digests(fake: FakeSlack) -> list[dict]:
    return [post for post in fake.posts() if "daily digest:" in post["text"]]


def scheduled_digests(rt) -> list[datetime]:
    """When the scheduled digest jobs are due, the retries of one included."""
    registry = ScheduledJobRegistry(queue=rt.lanes.shared)
    return sorted(
        registry.get_scheduled_time(job)
        for job in Job.fetch_many(registry.get_job_ids(), connection=rt.queue)
        if job is not None and job.func_name == jobs.send_digest(0, "", 0).path
    )


def open_pull(rt, clock: FakeClock, number: int, **fields) -> Pull:
    pull = Pull(number=number, head_sha=f"{number:040x}", reviewers=["bob", "carol"], **fields)
    deliver(rt, pull.event("opened", clock.now()))
    return pull


def test_one_digest_at_0930_berlin_however_many_runs_and_none_on_a_holiday(rt, github, clock, bot):
    github.put_config("octo/shop", BERLIN_CONFIG)
    first, _, third = (open_pull(rt, clock, n) for n in (1, 2, 3))  # Monday 10:00 in Berlin
    deliver(rt, third.review("bob", "approved", clock.now()))
    # The team's settings read, as a sync does.
    lights.refresh_team(InstallationContext.of(rt, 42), TEAM)
    assert scheduled_digests(rt) == [utc(2026, 11, 3, 8, 30)]  # Tuesday 09:30 in Berlin

    clock.moment = utc(2026, 11, 3, 8, 29)
    run_due_jobs(rt, clock)
    assert digests(bot) == []
    clock.moment = utc(2026, 11, 3, 8, 30)
    run_due_jobs(rt, clock)
    [tuesday] = digests(bot)
    assert tuesday["channel"] == "#shop-reviews"
    assert "Yesterday: 3 in, 1 out" in tuesday["text"]

    # A second worker running the same job, and the job run again: still one message.
    other = runtime.Runtime.create(rt.settings, rt.redis, clock, budget=UNPACED)
    digest.send_digest(other, 42, TEAM, clock.now())
    digest.send_digest(rt, 42, TEAM, clock.now())
    assert len(digests(bot)) == 1
    assert scheduled_digests(rt) == [utc(2026, 11, 4, 8, 30)]  # Wednesday's, only

    clock.moment = utc(2026, 11, 4, 8, 30)
    run_due_jobs(rt, clock)
    assert len(digests(bot)) == 2
    # Thursday is a holiday: Friday's is next, and Thursday's moment sends nothing.
    assert scheduled_digests(rt) == [utc(2026, 11, 6, 8, 30)]
    clock.moment = utc(2026, 11, 5, 8, 30)
    run_due_jobs(rt, clock)
    digest.send_digest(rt, 42, TEAM, clock.now())
    assert len(digests(bot)) == 2
    deliver(rt, first.review("bob", "approved", clock.now()))
    clock.moment = utc(2026, 11, 6, 8, 30)
    run_due_jobs(rt, clock)
    friday = digests(bot)[2]
    # Since Wednesday, the holiday included: #1 left on Thursday.
    assert "Since Wed 4 Nov: 0 in, 1 out" in friday["text"]


# The light stays green, by the count alone, while #1 goes stale.
STALE_CONFIG = """
teams:
  - name: shop
    slack_channel: "#shop-reviews"
    slack_users: {bob: U0BOB}
    thresholds:
      yellow: {waiting: 5, oldest: null}
      red: {oldest: null}
stale_after: 3d
digest: {at: "09:30"}
"""


def test_the_digest_shows_the_light_the_queue_oldest_first_stale_apart_and_yesterday(
    rt, github, clock, bot
):
    github.put_config("octo/shop", STALE_CONFIG)
    open_pull(rt, clock, 1)  # Monday 09:00 UTC: stale by Thursday
    clock.moment = utc(2026, 11, 4, 10, 0)  # Wednesday
    open_pull(rt, clock, 2, title="Fix <b>&</b> escaping")
    clock.advance(minutes=5)
    open_pull(rt, clock, 3)
    clock.advance(minutes=5)
    fourth = open_pull(rt, clock, 4)
    deliver(rt, fourth.review("bob", "approved", clock.now()))
    lights.refresh_team(InstallationContext.of(rt, 42), TEAM)

    clock.moment = utc(2026, 11, 5, 9, 30)  # Thursday
    run_due_jobs(rt, clock)
    [post] = digests(bot)
    texts = [block["text"]["text"] for block in post["blocks"] if "text" in block]
    assert texts[0] == "🟢 shop: daily review digest"
    assert texts[1] == (
        "*Light: green*. 2 PRs waiting for review, oldest 23h 30m, 100 lines. Oldest first:"
    )
    assert texts[2] == (
        "*<https://github.com/octo/shop/pull/2|octo/shop#2>* Fix &lt;b&gt;&amp;&lt;/b&gt; "
        "escaping\nwaiting 23h 30m · size/M (50 lines) · reviewers: <@U0BOB>, carol"
    )
    assert texts[3].startswith("*<https://github.com/octo/shop/pull/3|octo/shop#3>*")
    assert texts[4] == (
        "*Stale, out of the queue* (waiting over 3d, 1): "
        "<https://github.com/octo/shop/pull/1|octo/shop#1>"
    )
    assert texts[5] == (
        "*Yesterday:* 3 in, 1 out of review.\n"
        "In: <https://github.com/octo/shop/pull/2|octo/shop#2>, "
        "<https://github.com/octo/shop/pull/3|octo/shop#3>, "
        "<https://github.com/octo/shop/pull/4|octo/shop#4>\n"
        "Out: <https://github.com/octo/shop/pull/4|octo/shop#4>"
    )
    assert post["text"] == (
        "🟢 shop daily digest: green, 2 waiting, oldest 23h 30m. Yesterday: 3 in, 1 out."
    )


NO_CHANNEL_CONFIG = """
teams:
  - name: shop
digest: {at: "09:30"}
"""


@pytest.mark.parametrize(
    ("config", "token", "due"),
    [
        (NO_CHANNEL_CONFIG, True, utc(2026, 11, 3, 9, 30)),
        (BERLIN_CONFIG, False, utc(2026, 11, 3, 8, 30)),
    ],
    ids=["no channel", "no token"],
)
def test_without_a_channel_or_a_bot_token_no_digest_is_scheduled_or_sent(
    rt, github, clock, fake_slack, config, token, due
):
    if token:
        rt.settings = rt.settings.model_copy(
            update={"slack_bot_token": SecretStr("xoxb-test"), "slack_api_url": fake_slack.api_url}
        )
    github.put_config("octo/shop", config)
    open_pull(rt, clock, 1)
    lights.refresh_team(InstallationContext.of(rt, 42), TEAM)
    assert scheduled_digests(rt) == []
    clock.moment = due  # the team's moment on Tuesday
    digest.send_digest(rt, 42, TEAM, clock.now())
    assert fake_slack.attempts == []


def test_a_rate_limited_digest_is_late_not_lost_nor_doubled(rt, github, clock, bot):
    github.put_config("octo/shop", BERLIN_CONFIG)
    open_pull(rt, clock, 1)
    lights.refresh_team(InstallationContext.of(rt, 42), TEAM)
    bot.fail_next(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
    clock.moment = utc(2026, 11, 3, 8, 30)
    run_due_jobs(rt, clock)
    assert bot.attempts == ["chat.postMessage"] and digests(bot) == []
    # The retry, 30 s on, and Wednesday's digest wait; the day's claim was let go.
    assert scheduled_digests(rt) == [utc(2026, 11, 3, 8, 30, 30), utc(2026, 11, 4, 8, 30)]

    clock.advance(seconds=30)
    run_due_jobs(rt, clock)
    digest.send_digest(rt, 42, TEAM, utc(2026, 11, 3, 8, 30))
    assert len(digests(bot)) == 1


def test_block_kit_limits_hold_with_a_long_name_long_titles_and_many_prs():
    title = "<&>" * 300
    pulls = [record(n, title=title) for n in range(1, 41)]
    waited = timedelta(hours=5)
    view = TeamView(
        installation_id=42,
        key=TEAM,
        name="n" * 100,
        level=Level.RED,
        since=START,
        measures=Measures(waiting=40, oldest_since=START, lines=2000),
        oldest=waited,
        policy=Policy(),
        waiting=tuple(WaitingPull(pull, waited) for pull in pulls[:15]),
        held=20,
        held_line=tuple(pulls[:15]),
        stale=20,
        stale_line=tuple(WaitingPull(pull, waited) for pull in pulls[15:30]),
    )
    turnover = Turnover(date(2026, 11, 2), True, 100, 90, tuple(pulls[:15]), tuple(pulls[15:30]))
    message = daily_digest(view, DigestContext(turnover, team_url="https://stoplight.example/t"))
    assert len(message.blocks) <= MAX_BLOCKS
    assert len(message.blocks[0]["text"]["text"]) <= MAX_HEADER_TEXT
    texts = [block["text"]["text"] for block in message.blocks if "text" in block]
    assert all(len(text) <= MAX_SECTION_TEXT for text in [*texts, message.text])
    assert "&lt;&amp;&gt;" in texts[2] and "<&>" not in texts[2]
    rest = [
        el["text"]
        for block in message.blocks
        if block["type"] == "context"
        for el in block["elements"]
    ]
    assert rest[0] == "and 25 more waiting"
    assert texts[-3].endswith("octo/shop#10> and 10 more")  # held: ten named of 20
    assert texts[-1].startswith("*Yesterday:* 100 in, 90 out of review.")


def test_each_waiting_pr_of_the_digest_says_who_claimed_it(rt, github, clock, bot):
    github.put_config("octo/shop", BERLIN_CONFIG)
    for number in (1, 2, 3):
        open_pull(rt, clock, number)
    lights.refresh_team(InstallationContext.of(rt, 42), TEAM)
    clock.moment = utc(2026, 11, 3, 8, 0)  # claims last 4 h: made half an hour before
    rules = ClaimsConfig()
    claims = ClaimStore(rt.redis, 42)
    assert claims.claim("1001#1", "bob", clock.now(), rules).outcome is Outcome.CLAIMED
    assert claims.claim("1001#3", "carol", clock.now(), rules).outcome is Outcome.CLAIMED

    clock.moment = utc(2026, 11, 3, 8, 30)
    run_due_jobs(rt, clock)
    [post] = digests(bot)
    lines = [block["text"]["text"] for block in post["blocks"] if "text" in block][2:5]
    assert lines[0].endswith(" · claimed by <@U0BOB>")  # bob is in slack_users
    assert "claimed by" not in lines[1]
    assert lines[2].endswith(" · claimed by carol")
