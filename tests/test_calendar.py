"""Working hours: only working time counts, across weekends, holidays and DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from stoplight.core.calendar import WorkingHours
from stoplight.core.light import Measures, Policy, Thresholds, evaluate

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = WorkingHours(
    timezone=BERLIN,
    days=frozenset(range(5)),
    start=time(9),
    end=time(18),
    holidays=frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
waits = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20))


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)


def test_friday_evening_pr_is_one_hour_old_on_monday_morning():
    assert OFFICE.waited(berlin(2026, 11, 6, 17), berlin(2026, 11, 9, 9)) == timedelta(hours=1)


def test_light_is_scheduled_at_the_working_time_crossing():
    policy = Policy(
        yellow=Thresholds(oldest=timedelta(hours=24)),
        red=Thresholds(oldest=timedelta(hours=48)),
        calendar=OFFICE,
    )
    measures = Measures(waiting=1, oldest_since=berlin(2026, 11, 6, 17))
    verdict = evaluate(measures, policy, None, berlin(2026, 11, 9, 9))
    # 1h on Friday, 9h Monday, 9h Tuesday, 5h Wednesday: 24h of working time.
    assert verdict.next_change_at == berlin(2026, 11, 11, 14)
    assert verdict.level.name == "GREEN"


def test_holidays_do_not_count():
    assert OFFICE.waited(berlin(2026, 12, 23, 17), berlin(2026, 12, 28, 10)) == timedelta(hours=2)


def test_daylight_saving_change_neither_shifts_nor_loses_time():
    # Berlin moves clocks back on 2026-10-25 (a Sunday) and forward on 2026-03-29.
    assert OFFICE.waited(berlin(2026, 10, 23, 9), berlin(2026, 10, 27, 9)) == timedelta(hours=18)
    assert OFFICE.waited(berlin(2026, 3, 27, 9), berlin(2026, 3, 31, 9)) == timedelta(hours=18)
    assert OFFICE.moment_when_waited(berlin(2026, 10, 23, 17), timedelta(hours=2)) == berlin(
        2026, 10, 26, 10
    )


def test_time_outside_working_hours_counts_nothing():
    assert OFFICE.waited(berlin(2026, 11, 7, 10), berlin(2026, 11, 8, 20)) == timedelta(0)
    assert OFFICE.moment_when_waited(berlin(2026, 11, 7, 10), timedelta(0)) == berlin(
        2026, 11, 7, 10
    )


@given(moments, moments, moments)
def test_waited_is_monotone(start, a, b):
    early, late = sorted((a, b))
    assert OFFICE.waited(start, early) <= OFFICE.waited(start, late)


@given(moments, waits)
def test_moment_when_waited_inverts_waited(start, wait):
    moment = OFFICE.moment_when_waited(start, wait)
    assert moment >= start
    assert OFFICE.waited(start, moment) == wait
    if wait > timedelta(0):  # the earliest such moment: a microsecond less falls short
        assert OFFICE.waited(start, moment - timedelta(microseconds=1)) < wait
