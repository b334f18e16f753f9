"""The daily Slack digest: when it is due, that it goes out once a working day however many
workers run it, and what it says. Real Redis, a fake Slack on 127.0.0.1, the fake clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from stoplight.config.schema import Invalid, load
from stoplight.core.calendar import DailySchedule

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = frozenset(range(5))
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
