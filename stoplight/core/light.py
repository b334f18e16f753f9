"""The light: a pure function of queue measures, thresholds, the previous light and the clock.

No I/O here. The caller reads the measures, passes the moment, and stores what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Protocol


class Level(IntEnum):
    GREEN = 0
    YELLOW = 1
    RED = 2

    @property
    def label(self) -> str:
        return self.name.capitalize()


class WaitCalendar(Protocol):
    """How much waiting counts between two moments (working hours count, weekends do not)."""

    def waited(self, start: datetime, end: datetime) -> timedelta: ...

    def moment_when_waited(self, start: datetime, wait: timedelta) -> datetime:
        """The wall-clock moment at which a wait begun at `start` reaches `wait`."""
        ...


class EveryHourCounts:
    def waited(self, start: datetime, end: datetime) -> timedelta:
        return max(end - start, timedelta(0))

    def moment_when_waited(self, start: datetime, wait: timedelta) -> datetime:
        return start + wait


ALWAYS = EveryHourCounts()


DEFAULT_STALE_AFTER = timedelta(days=14)


@dataclass(frozen=True)
class Thresholds:
    """Limits for one level; None switches a measure off for that level."""

    waiting: int | None = None
    oldest: timedelta | None = None
    lines: int | None = None


@dataclass(frozen=True)
class Policy:
    yellow: Thresholds = Thresholds(waiting=4, oldest=timedelta(hours=24), lines=1000)
    red: Thresholds = Thresholds(waiting=8, oldest=timedelta(hours=48), lines=2500)
    cooldown: timedelta = timedelta(minutes=10)
    calendar: WaitCalendar = field(default=ALWAYS, compare=False)
    # A PR waiting longer (wall-clock time: abandoned PRs are left over weekends too) is stale
    # and leaves the measures; None keeps every waiting PR in them.
    stale_after: timedelta | None = DEFAULT_STALE_AFTER

    def thresholds(self, level: Level) -> Thresholds | None:
        return {Level.YELLOW: self.yellow, Level.RED: self.red}.get(level)


@dataclass(frozen=True)
class Measures:
    waiting: int = 0
    oldest_since: datetime | None = None  # when the longest-waiting PR started waiting
    lines: int = 0

    def oldest(self, now: datetime, calendar: WaitCalendar) -> timedelta:
        if self.oldest_since is None:
            return timedelta(0)
        return calendar.waited(self.oldest_since, now)


@dataclass(frozen=True)
class LightState:
    level: Level
    since: datetime
    lower_called_since: datetime | None = None  # measures have called for less since then


@dataclass(frozen=True)
class Verdict:
    state: LightState
    called_for: Level
    reasons: tuple[str, ...]
    next_change_at: datetime | None

    @property
    def level(self) -> Level:
        return self.state.level


def evaluate(
    measures: Measures, policy: Policy, previous: LightState | None, now: datetime
) -> Verdict:
    called_for, reasons = assess(measures, policy, now)
    state = _next_state(called_for, previous, policy.cooldown, now)
    return Verdict(
        state=state,
        called_for=called_for,
        reasons=reasons,
        next_change_at=_next_change_at(measures, policy, state, called_for, now),
    )


def level_called_for(measures: Measures, policy: Policy, now: datetime) -> Level:
    """The highest level any of whose thresholds the measures reach."""
    return assess(measures, policy, now)[0]


def assess(measures: Measures, policy: Policy, now: datetime) -> tuple[Level, tuple[str, ...]]:
    """The highest level the measures reach, and the thresholds they reach for it."""
    oldest = measures.oldest(now, policy.calendar)
    for level in (Level.RED, Level.YELLOW):
        limits = policy.thresholds(level)
        assert limits is not None
        reasons = _reached(measures, oldest, limits, level)
        if reasons:
            return level, reasons
    return Level.GREEN, ()


def _reached(
    measures: Measures, oldest: timedelta, limits: Thresholds, level: Level
) -> tuple[str, ...]:
    name = level.name.lower()
    reasons = []
    if limits.waiting is not None and measures.waiting >= limits.waiting:
        reasons.append(f"{measures.waiting} PRs waiting (≥ {limits.waiting} is {name})")
    if limits.oldest is not None and measures.oldest_since is not None and oldest >= limits.oldest:
        limit = format_duration(limits.oldest)
        reasons.append(f"oldest waiting {format_duration(oldest)} (≥ {limit} is {name})")
    if limits.lines is not None and measures.lines >= limits.lines:
        reasons.append(f"{measures.lines} lines waiting (≥ {limits.lines} is {name})")
    return tuple(reasons)


def _next_state(
    called_for: Level, previous: LightState | None, cooldown: timedelta, now: datetime
) -> LightState:
    if previous is None or called_for > previous.level:
        return LightState(level=called_for, since=now)
    if called_for == previous.level:
        return LightState(level=previous.level, since=previous.since)
    lower_since = previous.lower_called_since or now
    if now - lower_since >= cooldown:
        return LightState(level=called_for, since=now)
    return LightState(level=previous.level, since=previous.since, lower_called_since=lower_since)


def _next_change_at(
    measures: Measures, policy: Policy, state: LightState, called_for: Level, now: datetime
) -> datetime | None:
    """The earliest moment time alone could change the light: a cooldown ends, a wait crosses
    a threshold, or the oldest waiting PR goes stale."""
    moments = []
    if state.lower_called_since is not None:
        moments.append(state.lower_called_since + policy.cooldown)
    if measures.oldest_since is not None and policy.stale_after is not None:
        moments.append(measures.oldest_since + policy.stale_after)
    if measures.oldest_since is not None:
        for level in (Level.YELLOW, Level.RED):
            limits = policy.thresholds(level)
            if level > called_for and limits is not None and limits.oldest is not None:
                moments.append(
                    policy.calendar.moment_when_waited(measures.oldest_since, limits.oldest)
                )
    future = [moment for moment in moments if moment > now]
    return min(future, default=None)


def stale_cutoff(now: datetime, stale_after: timedelta) -> datetime:
    """PRs waiting since this moment or earlier are stale by `now`."""
    return now - stale_after


def format_duration(duration: timedelta) -> str:
    """Compact, human: 45s, 12m, 3h 20m, 2d 4h."""
    seconds = int(duration.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"
