"""The light as a pure function: measures, thresholds, previous light and clock in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stoplight.core.light import (
    Level,
    LightState,
    Measures,
    Policy,
    Thresholds,
    evaluate,
    format_duration,
)
from tests.fakes import START

POLICY = Policy()  # PRODUCT.md defaults
HOUR = timedelta(hours=1)


def light(measures: Measures, previous: LightState | None = None, at=START, policy=POLICY):
    return evaluate(measures, policy, previous, at)


@pytest.mark.parametrize(
    ("measures", "level"),
    [
        (Measures(), Level.GREEN),
        (Measures(waiting=3, oldest_since=START, lines=999), Level.GREEN),
        (Measures(waiting=4, oldest_since=START), Level.YELLOW),
        (Measures(waiting=1, oldest_since=START - 24 * HOUR), Level.YELLOW),
        (Measures(waiting=1, oldest_since=START, lines=1000), Level.YELLOW),
        (Measures(waiting=8, oldest_since=START), Level.RED),
        (Measures(waiting=1, oldest_since=START - 48 * HOUR), Level.RED),
        (Measures(waiting=2, oldest_since=START, lines=2500), Level.RED),
    ],
)
def test_default_thresholds(measures, level):
    assert light(measures).level is level


def test_reasons_name_the_measures_that_reached():
    verdict = light(Measures(waiting=8, oldest_since=START - 50 * HOUR, lines=10))
    assert verdict.reasons == (
        "8 PRs waiting (≥ 8 is red)",
        "oldest waiting 2d 2h (≥ 2d is red)",
    )
    assert light(Measures()).reasons == ()


def test_light_rises_at_once_and_falls_only_after_cooldown():
    red = light(Measures(waiting=8, oldest_since=START)).state
    assert red.level is Level.RED

    calm = Measures(waiting=1, oldest_since=START)
    still_red = light(calm, red, START + timedelta(minutes=1))
    assert still_red.level is Level.RED
    assert still_red.next_change_at == START + timedelta(minutes=11)  # cooldown 10m

    almost = light(calm, still_red.state, START + timedelta(minutes=10, seconds=59))
    assert almost.level is Level.RED
    fallen = light(calm, almost.state, START + timedelta(minutes=11))
    assert fallen.level is Level.GREEN


def test_a_rise_during_cooldown_cancels_it():
    red = light(Measures(waiting=8, oldest_since=START)).state
    cooling = light(Measures(waiting=1, oldest_since=START), red, START + HOUR).state
    assert cooling.lower_called_since == START + HOUR
    again = light(Measures(waiting=9, oldest_since=START), cooling, START + 2 * HOUR).state
    assert again == LightState(Level.RED, since=red.since)


def test_zero_cooldown_falls_at_once():
    policy = Policy(cooldown=timedelta(0))
    red = light(Measures(waiting=8, oldest_since=START), policy=policy).state
    assert light(Measures(), red, START, policy).level is Level.GREEN


def test_next_change_is_when_the_oldest_wait_crosses_the_next_threshold():
    opened = START - 2 * HOUR
    verdict = light(Measures(waiting=1, oldest_since=opened))
    assert verdict.next_change_at == opened + 24 * HOUR
    yellow = light(Measures(waiting=1, oldest_since=opened), at=opened + 25 * HOUR)
    assert yellow.next_change_at == opened + 48 * HOUR
    assert light(Measures()).next_change_at is None


def test_switched_off_measures_never_call_for_a_level():
    policy = Policy(
        yellow=Thresholds(waiting=None, oldest=None, lines=None),
        red=Thresholds(waiting=None, oldest=None, lines=None),
        stale_after=None,  # nor does time move the queue: no PR goes stale
    )
    verdict = light(
        Measures(waiting=100, oldest_since=START - 100 * HOUR, lines=10**6), policy=policy
    )
    assert verdict.level is Level.GREEN and verdict.next_change_at is None


def test_the_moment_the_oldest_pr_goes_stale_is_a_change_to_come():
    opened = START - 30 * HOUR
    policy = Policy(
        yellow=Thresholds(waiting=None, oldest=None, lines=None),
        red=Thresholds(waiting=None, oldest=None, lines=None),
        stale_after=36 * HOUR,
    )
    verdict = light(Measures(waiting=1, oldest_since=opened), policy=policy)
    assert verdict.next_change_at == opened + 36 * HOUR
    # Before a threshold, the earlier of the two.
    verdict = light(Measures(waiting=1, oldest_since=opened), at=opened + HOUR)
    assert verdict.next_change_at == opened + 24 * HOUR


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=12), "12m"),
        (timedelta(hours=3, minutes=20), "3h 20m"),
        (timedelta(days=2, hours=4), "2d 4h"),
        (timedelta(days=2), "2d"),
        (timedelta(hours=5), "5h"),
    ],
)
def test_durations_read_compactly(duration, text):
    assert format_duration(duration) == text
