"""Weekly flow figures and the chart's series: synthetic histories with hand-computed answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from stoplight.core.calendar import WorkingHours
from stoplight.core.flow import (
    Band,
    Entry,
    Exit,
    History,
    LightChange,
    Point,
    Sample,
    chart_series,
    weekly_figures,
)
from stoplight.core.light import ALWAYS, Level

H = timedelta(hours=1)
MONDAY = datetime(2026, 11, 2, tzinfo=UTC)  # 00:00, an ISO week's start in UTC


def at(day: int, hour: float) -> datetime:
    """A moment of the week of MONDAY: day 0 is Monday."""
    return MONDAY + timedelta(days=day, hours=hour)


def passages(*spans: tuple[datetime, datetime]) -> tuple[tuple[Entry, ...], tuple[Exit, ...]]:
    """PR i waits over spans[i]: its entry and exit."""
    entries = tuple(Entry(start, f"1#{n}") for n, (start, _) in enumerate(spans))
    exits = tuple(Exit(end, f"1#{n}", start) for n, (start, end) in enumerate(spans))
    return entries, tuple(sorted(exits, key=lambda e: e.at))


def samples(*counts: tuple[datetime, int]) -> tuple[Sample, ...]:
    return tuple(Sample(moment, waiting, 10 * waiting, None) for moment, waiting in counts)


def test_a_synthetic_week_comes_out_exact():
    # Five PRs wait 1h, 2h, 4h, 8h and 24h, all inside the week (two of them at once).
    entries, exits = passages(
        (at(0, 10), at(0, 11)),
        (at(0, 10.5), at(0, 12.5)),
        (at(1, 9), at(1, 13)),
        (at(2, 20), at(3, 4)),
        (at(4, 12), at(5, 12)),
    )
    history = History(
        since=MONDAY,
        until=at(8, 0),
        lights=(
            LightChange(at(0, 0), Level.GREEN),
            LightChange(at(1, 12), Level.YELLOW),
            LightChange(at(2, 0), Level.GREEN),
            LightChange(at(3, 0), Level.RED),
            LightChange(at(3, 6), Level.GREEN),
        ),
        samples=samples(
            (at(0, 10), 1),
            (at(0, 10.5), 2),
            (at(0, 11), 1),
            (at(0, 12.5), 0),
            (at(1, 9), 1),
            (at(1, 13), 0),
            (at(2, 20), 1),
            (at(3, 4), 0),
            (at(4, 12), 1),
            (at(5, 12), 0),
        ),
        entries=entries,
        exits=exits,
    )

    current, week = weekly_figures(history, ALWAYS, now=at(8, 0), weeks=4)

    assert (week.first_day, week.start, week.end) == (date(2026, 11, 2), MONDAY, at(7, 0))
    assert (week.observed_from, week.observed_until, week.current) == (MONDAY, at(7, 0), False)
    # green: Monday 00:00 to Tuesday 12:00, Wednesday, Thursday 06:00 to the end.
    assert (week.green, week.yellow, week.red) == (150 * H, 12 * H, 6 * H)
    assert (week.entered, week.left) == (5, 5)
    # 39 PR-hours of waiting over the week's 168 hours.
    assert week.mean_wip == 39 / 168
    assert week.median_wait == 4 * H
    assert week.p85_wait == timedelta(hours=14.4)  # 8h + 0.4 of the way to 24h
    assert week.mean_wait == timedelta(hours=7.8)
    assert week.throughput == 5 / 7
    # Everything that entered left within the week: Little's Law holds to the last digit.
    assert week.throughput_x_wait == pytest.approx(week.mean_wip, rel=1e-12)

    assert (current.start, current.observed_until, current.current) == (at(7, 0), at(8, 0), True)
    assert (current.green, current.yellow, current.red) == (24 * H, timedelta(0), timedelta(0))
    assert (current.entered, current.left, current.mean_wip) == (0, 0, 0.0)
    assert (current.median_wait, current.p85_wait, current.mean_wait) == (None, None, None)
    assert (current.throughput, current.throughput_x_wait) == (0.0, None)


TOKYO = ZoneInfo("Asia/Tokyo")
OFFICE = WorkingHours(TOKYO, frozenset(range(5)), time(9), time(18))


def jst(month: int, day: int, hour: float) -> datetime:
    midnight = datetime(2026, month, day, tzinfo=TOKYO)
    return (midnight + timedelta(hours=hour)).astimezone(UTC)


def test_weeks_begin_on_monday_in_the_teams_timezone_and_count_working_hours():
    # Tokyo's week of 2 November starts on Sunday 1 November, 15:00 UTC.
    first, second, third = (
        (jst(10, 30, 17), jst(11, 2, 8.5)),  # waits Friday 17-18: 1h; leaves Monday 08:30
        (jst(11, 2, 9), jst(11, 2, 15)),  # 6h
        (jst(11, 5, 16), jst(11, 9, 10)),  # Thursday 2h, Friday 9h, Monday 1h: 12h
    )
    entries, exits = passages(first, second, third)
    history = History(
        since=jst(10, 26, 0),
        until=jst(11, 9, 12),
        lights=(LightChange(first[0], Level.GREEN),),
        samples=samples(
            (first[0], 1),
            (first[1], 0),
            (second[0], 1),
            (second[1], 0),
            (third[0], 1),
            (third[1], 0),
        ),
        entries=entries,
        exits=exits,
    )

    current, week, first_week = weekly_figures(history, OFFICE, now=jst(11, 9, 12), weeks=4)

    assert first_week.first_day == date(2026, 10, 26)
    assert (first_week.observed_from, first_week.observed_until) == (first[0], jst(11, 2, 0))
    assert first_week.green == 55 * H
    # Leaving at 08:30 on Monday in Tokyo is the next week's, though it is Sunday in UTC.
    assert (first_week.entered, first_week.left) == (1, 0)
    assert first_week.mean_wip == 1.0  # one PR through the week's one working hour
    assert (first_week.throughput, first_week.throughput_x_wait) == (0.0, None)

    assert week.first_day == date(2026, 11, 2)
    assert (week.start, week.end) == (datetime(2026, 11, 1, 15, tzinfo=UTC), jst(11, 9, 0))
    assert week.green == 168 * H
    assert (week.entered, week.left) == (2, 2)
    # 6h of the second PR and 11h of the third, over five 9-hour working days.
    assert week.mean_wip == 17 / 45
    assert (week.median_wait, week.p85_wait) == (3.5 * H, 5.25 * H)  # of 1h and 6h
    assert week.mean_wait == 3.5 * H
    assert week.throughput == 2 / 5  # per working day
    assert week.throughput_x_wait == pytest.approx(0.4 * 3.5 / 9, rel=1e-12)

    assert (current.start, current.observed_until) == (jst(11, 9, 0), jst(11, 9, 12))
    assert (current.entered, current.left, current.green) == (0, 1, 12 * H)
    assert current.mean_wip == 1 / 3  # 09:00 to 10:00 of three working hours
    assert (current.median_wait, current.p85_wait) == (12 * H, 12 * H)
    assert current.throughput == 3.0  # one PR in a third of a working day
    assert current.throughput_x_wait == pytest.approx(4.0, rel=1e-12)


def test_weeks_before_the_history_and_beyond_the_count_are_left_out():
    history = History(
        since=MONDAY - timedelta(days=60),
        until=at(30, 0),
        lights=(LightChange(at(0, 12), Level.GREEN),),
    )
    figures = weekly_figures(history, ALWAYS, now=at(30, 0), weeks=3)
    assert [week.first_day for week in figures] == [
        date(2026, 11, 30), date(2026, 11, 23), date(2026, 11, 16),
    ]  # fmt: skip
    every = weekly_figures(history, ALWAYS, now=at(30, 0), weeks=10)
    assert [week.first_day for week in every][-1] == date(2026, 11, 2)
    assert every[-1].observed_from == at(0, 12)
    assert weekly_figures(History(since=MONDAY, until=at(3, 0)), ALWAYS, at(3, 0), 4) == ()


def test_the_chart_series_are_steps_bands_and_the_growing_oldest_wait():
    now = at(14, 12)
    start = now - timedelta(days=14)
    history = History(
        since=start,
        until=now,
        lights=(LightChange(at(-3, 0), Level.GREEN), LightChange(at(13, 0), Level.YELLOW)),
        samples=(
            Sample(at(-2, 0), 1, 50, at(-2, 0)),  # the state at the chart's start
            Sample(at(13, 0), 3, 120, at(-2, 0)),
            Sample(at(14, 6), 0, 0, None),
        ),
    )
    series = chart_series(history, ALWAYS, now)

    assert (series.start, series.end) == (start, now)
    assert series.waiting == (Point(start, 1), Point(at(13, 0), 3), Point(at(14, 6), 0))
    assert series.lines == (Point(start, 50), Point(at(13, 0), 120), Point(at(14, 6), 0))
    assert series.bands == (
        Band(start, at(13, 0), Level.GREEN),
        Band(at(13, 0), now, Level.YELLOW),
    )
    # With every hour counted the oldest wait is one straight line, then drops to nothing.
    waited = (start - at(-2, 0)).total_seconds()
    assert series.oldest == (
        Point(start, waited),
        Point(at(14, 6), (at(14, 6) - at(-2, 0)).total_seconds()),
        Point(at(14, 6), 0.0),
        Point(now, 0.0),
    )


def test_the_oldest_wait_stands_still_outside_working_hours():
    now = jst(11, 9, 12)  # Monday noon in Tokyo
    since = jst(11, 6, 17)  # Friday 17:00
    history = History(
        since=now - timedelta(days=14), until=now, samples=(Sample(since, 1, 5, since),)
    )
    oldest = {point.at: point.value for point in chart_series(history, OFFICE, now).oldest}
    assert oldest[since] == 0
    assert oldest[jst(11, 6, 18)] == 3600  # the working day ends
    assert oldest[jst(11, 9, 9)] == 3600  # nothing counts over the weekend
    assert oldest[now] == 4 * 3600
    assert jst(11, 8, 12) not in oldest  # a flat stretch needs no points between its ends


def test_an_empty_history_draws_an_empty_queue():
    now = at(14, 0)
    series = chart_series(History(since=now - timedelta(days=14), until=now), ALWAYS, now)
    assert series.waiting == (Point(now - timedelta(days=14), 0),)
    assert series.bands == ()


def test_stale_and_held_prs_count_and_the_figures_say_why_the_law_does_not_balance():
    left_since = at(-14, 0)  # abandoned two weeks before the week
    history = History(
        since=MONDAY,
        until=at(7, 0),
        lights=(LightChange(at(-14, 0), Level.GREEN),),
        samples=samples(
            (left_since, 1),
            (at(0, 10), 2),
            (at(0, 12), 1),
            (at(1, 0), 0),  # the abandoned PR goes stale
            (at(5, 0), 1),
            (at(6, 0), 2),
        ),
        entries=(
            Entry(left_since, "1#1"),
            Entry(at(0, 10), "1#0"),
            Entry(at(2, 0), "1#2"),  # held at 00:00, reviewed in the lane at 03:00
            Entry(at(5, 0), "1#3"),
            Entry(at(6, 0), "1#4"),
        ),
        exits=(Exit(at(0, 12), "1#0", at(0, 10)), Exit(at(2, 3), "1#2", at(2, 0), held=True)),
        stale=(Exit(at(1, 0), "1#1", left_since),),
        held=(Entry(at(2, 0), "1#2"),),
    )

    _, week = weekly_figures(history, ALWAYS, now=at(7, 0), weeks=2)

    assert (week.entered, week.left) == (4, 2)  # the held PR reviewed counts in and out
    assert (week.held, week.reviewed_held, week.went_stale) == (1, 1, 1)
    assert week.median_wait == timedelta(hours=2.5)  # its wait from being held counts
    # The law's right side: the PRs that left the queue (the stale one with its 15 days),
    # not the one reviewed in the held lane, which the queue's measures never held.
    assert week.throughput_x_wait == pytest.approx(2 / 7 * ((2 + 15 * 24) / 2 / 24))
    assert week.mean_wip == pytest.approx((24 + 2 + 48 + 24) / 168)
    assert week.imbalance == (
        "the queue held 2 PRs at the end against 1 at the start: waits still running count "
        "in the mean WIP, not yet in throughput times wait",
        "1 of the 2 PRs that left had waited since before the period (1 of them stale): "
        "their whole wait counts in throughput times wait",
    )
    assert week.as_json()["imbalance"] == list(week.imbalance)


def test_a_balanced_week_gives_no_reasons():
    entries, exits = passages((at(0, 10), at(0, 11)), (at(1, 9), at(1, 13)))
    history = History(
        since=MONDAY,
        until=at(7, 0),
        samples=samples((at(0, 10), 1), (at(0, 11), 0), (at(1, 9), 1), (at(1, 13), 0)),
        entries=entries,
        exits=exits,
    )
    _, week = weekly_figures(history, ALWAYS, now=at(7, 0), weeks=2)
    assert week.imbalance == ()
