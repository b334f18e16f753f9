"""The backtest: known histories give exact figures, the light it computes is the live one
at every delivery, and suggestions hit their targets."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from rq.registry import ScheduledJobRegistry

from benchmarks.org_history import org_config, org_month
from stoplight import cli
from stoplight.backtest.history import Recorded, read_recorded, write_recorded
from stoplight.backtest.latest import load_latest
from stoplight.backtest.report import run_backtest
from stoplight.backtest.simulation import OrgConfig, simulate
from stoplight.backtest.suggest import Targets
from stoplight.core.clock import from_timestamp
from stoplight.core.flow import History
from stoplight.core.light import Level
from stoplight.state.history import read_history
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver, run_due_jobs
from tests.fakes import Pull

MONDAY = datetime(2026, 10, 19, tzinfo=UTC)  # the week before the end of summer time
BERLIN = ZoneInfo("Europe/Berlin")


def shop_config(yellow: str, red: str = "{waiting: null, oldest: null, lines: null}") -> str:
    return (
        "teams:\n  - name: shop\n    repos: [shop]\n    thresholds:\n"
        f"      yellow: {yellow}\n      red: {red}\n"
    )


def opened(number: int, at: datetime, **fields: object) -> Recorded:
    return Recorded(
        at, *Pull(number=number, head_sha=f"{number:040x}", **fields).event("opened", at)
    )


def approved(number: int, at: datetime) -> Recorded:
    pull = Pull(number=number, head_sha=f"{number:040x}")
    return Recorded(at, *pull.review("bob", "approved", at))


def reviewed_after(arrivals: Iterable[datetime], wait: timedelta) -> list[Recorded]:
    """A PR opening at each moment and approved `wait` later."""
    found = []
    for number, at in enumerate(arrivals, start=1):
        found += [opened(number, at), approved(number, at + wait)]
    return sorted(found, key=lambda recorded: recorded.at)


def test_hourly_arrivals_reviewed_in_150_minutes_give_exact_hours_and_weekly_figures():
    # Mon 00:00 to Fri 23:00, a PR an hour, none at the weekend. From the third on, each
    # arrival makes three waiting (yellow); each approval, half an hour later, two (green
    # once the ten-minute cooldown has passed): 40 yellow minutes an hour, 118 times.
    arrivals = [MONDAY + timedelta(hours=n) for n in range(120)]
    config = shop_config("{waiting: 3, oldest: null, lines: null}")

    result = run_backtest(
        reviewed_after(arrivals, timedelta(minutes=150)),
        window=timedelta(days=7),
        until=MONDAY + timedelta(days=7),
        config=config,
    )

    (team,) = result.teams
    summary = team.summary
    assert summary.time_in == {
        Level.GREEN: timedelta(hours=89, minutes=20),
        Level.YELLOW: timedelta(hours=78, minutes=40),
        Level.RED: timedelta(0),
    }
    assert summary.counted == timedelta(days=7)
    assert (summary.light_changes, summary.slack_notices, summary.held) == (236, 236, 0)
    (week,) = summary.weeks
    assert week.first_day.isoformat() == "2026-10-19"
    assert (week.entered, week.left) == (120, 120)
    assert week.median_wait == week.p85_wait == timedelta(minutes=150)
    assert week.mean_wip == pytest.approx(300 / 168)
    assert week.throughput == pytest.approx(120 / 7)
    assert week.throughput_x_wait == pytest.approx(week.mean_wip)


def test_a_red_queue_holds_the_next_pr_until_it_drains():
    start = MONDAY + timedelta(hours=9)
    hour = timedelta(hours=1)
    deliveries = [
        *(opened(n + 1, start + n * hour) for n in range(4)),  # the 3rd makes red, the 4th held
        *(approved(n + 1, start + (n + 4) * hour) for n in range(4)),
    ]
    config = shop_config(
        "{waiting: 2, oldest: null, lines: null}", "{waiting: 3, oldest: null, lines: null}"
    )

    result = run_backtest(
        sorted(deliveries, key=lambda d: d.at),
        window=8 * hour,
        until=start + 8 * hour,
        config=config,
    )

    summary = result.teams[0].summary
    # Red 2h to 4h10 (cooldown); at 5h one approval leaves room and the held PR enters.
    assert summary.time_in == {
        Level.GREEN: timedelta(hours=2, minutes=50),
        Level.YELLOW: timedelta(hours=3),
        Level.RED: timedelta(hours=2, minutes=10),
    }
    assert summary.light_changes == 4
    assert (summary.held, summary.held_median, summary.held_max) == (1, 2 * hour, 2 * hour)


def test_working_hours_count_and_a_daylight_saving_change_shifts_nothing():
    # Two weeks around the end of summer time in Berlin (25 October): a PR every working hour
    # from 9:00 to 16:00 local time, approved 90 minutes later; the 16:00 one waits only one
    # working hour. Two waiting is yellow: 40 minutes after each of 7 arrivals a day.
    days = [MONDAY.date() + timedelta(days=n) for n in range(14)]
    arrivals = [
        datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN).astimezone(UTC)
        for day in days
        if day.weekday() < 5
        for hour in range(9, 17)
    ]
    config = shop_config("{waiting: 2, oldest: null, lines: null}") + (
        "working_hours:\n  timezone: Europe/Berlin\n  start: '09:00'\n  end: '17:00'\n"
    )
    since = datetime(2026, 10, 19, tzinfo=BERLIN).astimezone(UTC)
    until = datetime(2026, 11, 2, tzinfo=BERLIN).astimezone(UTC)

    result = run_backtest(
        reviewed_after(arrivals, timedelta(minutes=90)),
        window=until - since,
        until=until,
        config=config,
    )

    summary = result.teams[0].summary
    assert summary.counted == timedelta(hours=80)
    assert summary.time_in[Level.YELLOW] == timedelta(hours=46, minutes=40)
    assert summary.time_in[Level.GREEN] == timedelta(hours=33, minutes=20)
    assert [week.first_day.isoformat() for week in summary.weeks] == ["2026-10-26", "2026-10-19"]
    for week in summary.weeks:
        assert (week.entered, week.left) == (40, 40)
        assert week.median_wait == week.p85_wait == timedelta(minutes=90)
        assert week.mean_wait == timedelta(hours=57.5 / 40)
        assert week.mean_wip == pytest.approx(57.5 / 40)
        assert week.throughput == pytest.approx(8.0)  # a working day is 8 hours
        assert week.throughput_x_wait == pytest.approx(57.5 / 40)
    # 10:00 in Berlin is 08:00 UTC in summer time and 09:00 UTC after it.
    yellows = [c.at for c in result.teams[0].run.history.lights if c.level is Level.YELLOW]
    assert datetime(2026, 10, 23, 8, tzinfo=UTC) in yellows
    assert datetime(2026, 10, 26, 9, tzinfo=UTC) in yellows


def varied_history(start: datetime) -> list[Recorded]:
    """Drafts, change requests and pushes, an expedited PR, waits crossing thresholds."""
    minute = timedelta(minutes=1)
    found: list[Recorded] = []

    def add(at: datetime, event: tuple[str, dict]) -> None:
        found.append(Recorded(at, *event))

    for n in range(1, 13):
        at = start + n * 37 * minute
        draft = n % 4 == 0
        pull = Pull(number=n, head_sha=f"{n:040x}", draft=draft, additions=n * 90)
        if n == 7:
            pull.labels = ["stoplight:expedite"]
        add(at, pull.event("opened", at))
        if draft:
            pull.draft = False
            at += 50 * minute
            add(at, pull.event("ready_for_review", at))
        if n % 3 == 0:
            at += 70 * minute
            add(at, pull.review("carol", "changes_requested", at))
            pull.head_sha = f"{n + 100:040x}"
            at += 45 * minute
            add(at, pull.event("synchronize", at))
        at += (n % 5 + 1) * 61 * minute
        add(at, pull.review("bob", "approved", at))
        if n % 2:
            pull.state = "closed"
            at += 20 * minute
            add(at, pull.event("closed", at))
    return sorted(found, key=lambda recorded: recorded.at)


VARIED_CONFIG = shop_config(
    "{waiting: 3, oldest: 2h, lines: 2000}", "{waiting: 5, oldest: 4h, lines: 4000}"
)


def next_due(rt) -> datetime | None:
    scores = [
        score
        for lane in rt.lanes.queues
        for _, score in rt.redis.zrange(ScheduledJobRegistry(queue=lane).key, 0, 0, withscores=True)
    ]
    return from_timestamp(min(scores)) if scores else None


def test_the_backtest_shows_the_light_the_live_app_shows_at_every_delivery(rt, github, clock):
    github.put_config("octo/.github", VARIED_CONFIG)
    deliveries = varied_history(clock.now())
    live = []
    for recorded in deliveries:
        while (due := next_due(rt)) is not None and due <= recorded.at:
            clock.moment = max(clock.moment, due)
            run_due_jobs(rt, clock)
        clock.moment = recorded.at
        deliver(rt, (recorded.event, recorded.payload))
        light = QueueStore(rt.redis, 42).light("shop")
        assert light is not None
        live.append(light.level)

    run = simulate(deliveries, OrgConfig(VARIED_CONFIG))

    assert [lights[(42, "shop")] for lights in run.lights_after] == live
    assert set(live) == set(Level)  # the history goes through every light
    live_history = read_history(rt.redis, 42, "shop", run.start, run.end)
    (team,) = run.teams
    assert team.history.lights == live_history.lights
    assert team.history.samples == live_history.samples
    assert team.history.exits == live_history.exits


@pytest.mark.slow
def test_suggested_thresholds_hit_their_targets_within_five_and_two_points():
    pulls = org_month(160, repos=2, days=21)
    deliveries = sorted((d for p in pulls for d in p.deliveries()), key=lambda d: d.at)
    config = org_config(2)

    result = run_backtest(
        deliveries, window=timedelta(days=21), config=config, targets=Targets(0.25, 0.05)
    )

    assert result.snippet is not None and "thresholds" in result.snippet
    for team in result.teams:
        assert team.suggested is not None
        assert team.suggested.share(Level.YELLOW) == pytest.approx(0.25, abs=0.05)
        assert team.suggested.share(Level.RED) == pytest.approx(0.05, abs=0.02)


def test_the_command_prints_json_and_keeps_the_latest_backtest_for_the_team_page(
    tmp_path, redis, redis_server, monkeypatch
):
    recorded = tmp_path / "month.jsonl"
    pulls = org_month(40, repos=2, days=10)
    deliveries = sorted((d for p in pulls for d in p.deliveries()), key=lambda d: d.at)
    recorded.write_text("".join(write_recorded(deliveries)))
    config = tmp_path / "stoplight.yml"
    config.write_text(org_config(2))
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LOG_LEVEL", "warning")

    result = CliRunner().invoke(
        cli.main,
        ["backtest", "--from", str(recorded), "--config", str(config), "--since", "7d", "--json"],
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [team["team"] for team in report["teams"]] == ["payments", "storefront"]
    assert report["teams"][0]["hours_counted"] == pytest.approx(5 * 8 + 8, abs=8)
    kept = load_latest(redis, 77, "payments")
    assert kept == report["teams"][0]


def test_the_terminal_report_shows_lights_weeks_chart_and_a_suggestion(
    tmp_path, redis_server, monkeypatch
):
    recorded = tmp_path / "month.jsonl"
    pulls = org_month(30, repos=1, days=8)
    deliveries = sorted((d for p in pulls for d in p.deliveries()), key=lambda d: d.at)
    recorded.write_text("".join(write_recorded(deliveries)))
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("COLUMNS", "100")

    result = CliRunner().invoke(cli.main, ["backtest", "--from", str(recorded), "--suggest"])

    assert result.exit_code == 0, result.output
    shown = ("acme/service-0", "green", "yellow", "red", "light changes", "held PRs", "mean WIP")
    shown += ("L = λW", "suggested .github/stoplight.yml", "repos: [acme/service-0]")
    for text in shown:
        assert text in result.output


def test_a_recorded_file_is_read_in_time_order_with_moments_from_the_payloads():
    later, earlier = opened(2, MONDAY + timedelta(hours=1)), opened(1, MONDAY)
    lines = list(write_recorded([later, earlier]))

    read = read_recorded(line.encode() for line in lines)

    assert [r.at for r in read] == [MONDAY, MONDAY + timedelta(hours=1)]
    assert [r.payload["number"] for r in read] == [1, 2]


def test_an_empty_history_has_no_figures():
    assert History(MONDAY, MONDAY).begins is None


def test_a_re_evaluation_due_a_fraction_into_a_second_runs_once_the_second_has_passed():
    # RQ schedules in whole seconds, so the wait's threshold tick first comes a moment early.
    at = MONDAY + timedelta(hours=9, microseconds=500_000)
    config = shop_config("{waiting: null, oldest: 1h, lines: null}")

    delivery = opened(1, at)
    delivery.payload["pull_request"]["updated_at"] = at.isoformat()  # with its fraction

    run = simulate([delivery], OrgConfig(config), end=at + timedelta(hours=2))

    (team,) = run.teams
    assert [(c.at, c.level) for c in team.history.lights] == [
        (at, Level.GREEN),
        (MONDAY + timedelta(hours=10, seconds=1), Level.YELLOW),
    ]


def test_targets_that_leave_no_green_are_a_usage_error():
    result = CliRunner().invoke(
        cli.main,
        ["backtest", "--suggest", "--target-yellow", "60", "--target-red", "40"],
        env={"APP_ID": "1"},
    )
    assert result.exit_code == 2, result.output
    assert "--target-red" in result.output and "below 100" in result.output


def test_an_abandoned_pr_goes_stale_and_stops_holding_the_light_red():
    # A PR every six hours, each approved two hours later, and one nobody ever looks at.
    arrivals = [MONDAY + timedelta(hours=6 * n) for n in range(1, 4 * 28)]
    deliveries = sorted(
        [opened(999, MONDAY), *reviewed_after(arrivals, timedelta(hours=2))],
        key=lambda recorded: recorded.at,
    )
    window, until = timedelta(days=28), MONDAY + timedelta(days=28)

    stale = run_backtest(deliveries, window=window, until=until).teams[0].summary
    kept = (
        run_backtest(deliveries, window=window, until=until, config="stale_after: null\n")
        .teams[0]
        .summary
    )

    # Red from the second day until it goes stale after 14: 12 of the 28 days.
    assert stale.share(Level.RED) == pytest.approx(12 / 28, abs=0.01)
    # The history closes none of them (approved ones included): each has no end.
    assert (stale.open_at_end, stale.stale_at_end) == (len(arrivals) + 1, 1)
    assert sum(week.went_stale for week in stale.weeks) == 1
    # Without stale PRs it would have been red from the second day on, for good.
    assert kept.share(Level.RED) == pytest.approx(26 / 28, abs=0.01)
    assert (kept.open_at_end, kept.stale_at_end) == (len(arrivals) + 1, 0)
