"""Thresholds fitted to a team's own queue, as a person would write them: the light at yellow
or worse for about the target share of the team's counted time, and at red for about its red
share, with round limits (waiting and lines on a 1-2-5 style grid, the oldest wait in whole hours,
or whole days past two days, never longer than the window).

The queue's measures over the window (the samples the pipeline recorded) are read on a grid,
each point weighted by the calendar time it stands for. For a share q, each measure's limit is
the value it reaches or exceeds for q of the time, and is rounded down and up to the round
values either side. The light is the highest level any measure reaches, so a level's share is
that of the union of its measures; every rounded combination is estimated on the grid, and
the combinations, ordered by their estimate, make the level's ladder.

The estimate leaves out what the pipeline adds (the held lane, the cooldown), so the search
then runs the pipeline: it backtests the rung whose estimate is closest to the target, and
climbs or descends the ladder by what the backtest reached, interpolating between rungs that
fell either side, until both levels are within their margins or no untried rung is left. What
cannot be reached is said, with why, in the suggestion's notes.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml

from stoplight.core.flow import History
from stoplight.core.light import Thresholds, WaitCalendar, format_duration

GRID = timedelta(minutes=5)
SHARE_STEPS = 100
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DAYS_FROM = timedelta(days=2)  # from here on the oldest wait is a whole number of days
# A PR that has waited this long was most likely left, not forgotten by its reviewers.
LONG_WAIT = timedelta(days=14)


@dataclass(frozen=True)
class Targets:
    yellow: float = 0.25  # of the counted time in yellow
    red: float = 0.05  # in red

    @property
    def yellow_or_worse(self) -> float:
        return self.yellow + self.red


@dataclass(frozen=True)
class Margins:
    """How far from its target a level's share may land (in parts of the counted time)."""

    yellow_or_worse: float = 0.08
    red: float = 0.03


@dataclass(frozen=True)
class Shares:
    """The parts of the counted time the light spent at yellow or worse, and at red."""

    yellow_or_worse: float
    red: float

    def as_json(self) -> dict[str, float]:
        return {"yellow_or_worse": self.yellow_or_worse, "red": self.red}


@dataclass(frozen=True)
class Point:
    weight: float  # seconds of calendar time the point stands for
    waiting: int
    oldest: float  # seconds the longest-waiting PR had waited, in the calendar
    lines: int


@dataclass(frozen=True)
class Suggestion:
    yellow: Thresholds
    red: Thresholds
    reached: Shares | None = None  # what the suggestion's own backtest gave
    notes: tuple[str, ...] = ()  # the targets it could not reach, and why

    def as_json(self) -> dict[str, Any]:
        return {"yellow": limits_yaml(self.yellow), "red": limits_yaml(self.red)}


def measure_points(
    history: History, calendar: WaitCalendar, since: datetime, until: datetime
) -> list[Point]:
    """The measures at each grid mark of the window that carries calendar time."""
    samples = history.samples
    moments = [sample.at for sample in samples]
    points = []
    mark = since
    while mark < until:
        weight = calendar.waited(mark, min(mark + GRID, until)).total_seconds()
        found = bisect.bisect_right(moments, mark) - 1
        if weight > 0 and found >= 0:
            sample = samples[found]
            since_ = sample.oldest_since
            oldest = calendar.waited(since_, mark).total_seconds() if since_ else 0.0
            points.append(Point(weight, sample.waiting, oldest, sample.lines))
        elif weight > 0:
            points.append(Point(weight, 0, 0.0, 0))
        mark += GRID
    return points


def share_reached(points: Sequence[Point], limits: Thresholds) -> float:
    """The part of the weighted time at which any measure reaches its limit."""
    total = sum(point.weight for point in points)
    waiting = limits.waiting if limits.waiting is not None else float("inf")
    oldest = limits.oldest.total_seconds() if limits.oldest is not None else float("inf")
    lines = limits.lines if limits.lines is not None else float("inf")
    reached = sum(
        point.weight
        for point in points
        if point.waiting >= waiting or point.oldest >= oldest or point.lines >= lines
    )
    return reached / total if total else 0.0


# Round values ------------------------------------------------------------------------------

_MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
# PRs waiting: each count up to ten, then 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, ...
ROUND_COUNTS: tuple[int, ...] = tuple(
    sorted({*range(1, 11), *(int(m * 10**e) for e in range(1, 8) for m in _MANTISSAS)})
)
# Lines: 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, ... (a handful of lines is no limit).
ROUND_LINES: tuple[int, ...] = tuple(
    sorted({int(m * 10**e) for e in range(1, 8) for m in _MANTISSAS if m != 1.2})
)


def round_durations(longest: timedelta) -> tuple[timedelta, ...]:
    """Whole hours below two days, whole days from there, up to `longest` (at least 1h)."""
    hours = [n * HOUR for n in range(1, DAYS_FROM // HOUR)]
    days = [n * DAY for n in range(DAYS_FROM // DAY, longest // DAY + 1)]
    found = tuple(value for value in [*hours, *days] if value <= longest)
    return found or (HOUR,)


def _either_side(value: float, grid: Sequence[float]) -> list[float | None]:
    """The round values just below and above `value` (or it, if round); None past the grid."""
    at = bisect.bisect_left(grid, value)
    if at < len(grid) and grid[at] == value:
        return [grid[at]]
    below = [grid[at - 1]] if at > 0 else []
    return [*below, grid[at] if at < len(grid) else None]


# Ladders -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rung:
    limits: Thresholds
    estimate: float  # the share of the grid at which the limits are reached


def ladder(points: Sequence[Point], target: float, longest: timedelta) -> list[Rung]:
    """Every round combination near the limits for shares up to twice `target`, ordered by
    the share of the grid it reaches (ties: the higher limits first)."""
    distributions = [_Distribution(points, measure) for measure in ("waiting", "oldest", "lines")]
    durations = [value.total_seconds() for value in round_durations(longest)]
    grids: tuple[Sequence[float], ...] = (ROUND_COUNTS, durations, ROUND_LINES)
    combinations: set[Thresholds] = set()
    for step in range(SHARE_STEPS + 1):
        share = min(2 * target, 1.0) * step / SHARE_STEPS
        options = [
            _either_side(distribution.limit(share), grid)
            for distribution, grid in zip(distributions, grids, strict=True)
        ]
        for waiting, oldest, lines in itertools.product(*options):
            combinations.add(
                Thresholds(
                    waiting=int(waiting) if waiting is not None else None,
                    oldest=timedelta(seconds=oldest) if oldest is not None else None,
                    lines=int(lines) if lines is not None else None,
                )
            )
    rungs = [Rung(limits, share_reached(points, limits)) for limits in combinations]
    return sorted(rungs, key=lambda rung: (rung.estimate, [-v for v in _values(rung.limits)]))


def _values(limits: Thresholds) -> list[float]:
    infinite = float("inf")
    oldest = limits.oldest.total_seconds() if limits.oldest is not None else infinite
    waiting = limits.waiting if limits.waiting is not None else infinite
    return [waiting, oldest, limits.lines if limits.lines is not None else infinite]


class _Distribution:
    """One measure's values, highest first, with the share of time spent at or above each."""

    def __init__(self, points: Sequence[Point], measure: str) -> None:
        total = sum(point.weight for point in points) or 1.0
        by_value: dict[float, float] = {}
        for point in points:
            value = getattr(point, measure)
            by_value[value] = by_value.get(value, 0.0) + point.weight
        self.values: list[float] = []
        self.shares: list[float] = []
        above = 0.0
        for value in sorted(by_value, reverse=True):
            above += by_value[value]
            self.values.append(value)
            self.shares.append(above / total)

    def limit(self, share: float) -> float:
        """The lowest value the measure reaches for no more than `share` of the time."""
        within = bisect.bisect_right(self.shares, share + 1e-12)
        if within == 0:
            return (self.values[0] if self.values else 0) + 1
        return self.values[within - 1]


def above(red: Thresholds, yellow: Thresholds, longest: timedelta) -> Thresholds:
    """`red` with each limit raised to the round value past yellow's where it is not above
    (none past `longest`, the window, for the oldest wait: then the limit is unset)."""

    def past(low: Any, high: Any, grid: Sequence[Any]) -> Any:
        if low is None or high is None or high > low:
            return high
        at = bisect.bisect_right(grid, low)
        return grid[at] if at < len(grid) else None

    durations = round_durations(longest)
    return Thresholds(
        waiting=past(yellow.waiting, red.waiting, ROUND_COUNTS),
        oldest=past(yellow.oldest, red.oldest, durations),
        lines=past(yellow.lines, red.lines, ROUND_LINES),
    )


# The search --------------------------------------------------------------------------------


@dataclass
class _Level:
    """One level's search along its ladder: the rungs tried and what their backtests gave."""

    name: str
    target: float
    margin: float
    rungs: list[Rung] = field(default_factory=list)
    points: Sequence[Point] = ()
    tried: list[tuple[Thresholds, float]] = field(default_factory=list)  # limits, reached
    gap: tuple[float, float] | None = None  # reached on the closest rungs either side

    def within(self, reached: float) -> bool:
        return abs(reached - self.target) <= self.margin + 1e-9

    def best(self) -> tuple[Thresholds, float]:
        return min(self.tried, key=lambda tried: abs(tried[1] - self.target))

    def closest(self) -> Thresholds:
        return min(self.rungs, key=lambda rung: abs(rung.estimate - self.target)).limits

    def next(self) -> Thresholds | None:
        """The rung to backtest next, or None when the last one was within the margin or no
        untried rung can come closer."""
        if self.within(self.tried[-1][1]):
            return None
        seen = {limits for limits, _ in self.tried}
        untried = [rung for rung in self.rungs if rung.limits not in seen]
        observed = [(share_reached(self.points, limits), got) for limits, got in self.tried]
        low = [(e, got) for e, got in observed if got < self.target]
        high = [(e, got) for e, got in observed if got > self.target]
        if low and high:
            (e_low, got_low), (e_high, got_high) = max(low), min(high)
            if e_low < e_high:
                between = [rung for rung in untried if e_low < rung.estimate < e_high]
                if not between:
                    self.gap = (got_low, got_high)
                    return None
                slope = (got_high - got_low) / (e_high - e_low)
                aim = e_low + (self.target - got_low) / slope
                return min(between, key=lambda rung: abs(rung.estimate - aim)).limits
        estimate, got = observed[-1]
        aim = estimate + (self.target - got)
        if got < self.target:
            side = [rung for rung in untried if rung.estimate > max(e for e, _ in low)]
        else:
            side = [rung for rung in untried if rung.estimate < min(e for e, _ in high)]
        if not side:
            return None
        return min(side, key=lambda rung: abs(rung.estimate - aim)).limits


class TeamSearch:
    """The search of one team's thresholds, one backtest at a time.

    `start` fits on the team's current run; each backtest is told back with `observe`, and
    the first one's run refits the ladders (`refit`: its held lane is the suggestion's);
    `next` names the limits to backtest next, None when the search is over; `result` is the
    best found.
    """

    def __init__(self, targets: Targets, margins: Margins, window: timedelta) -> None:
        self.targets = targets
        self.window = window
        self.yellow = _Level("yellow or worse", targets.yellow_or_worse, margins.yellow_or_worse)
        self.red = _Level("red", targets.red, margins.red)
        self.reached: list[tuple[Thresholds, Thresholds, Shares]] = []
        self.points: Sequence[Point] = ()

    def start(self, points: Sequence[Point]) -> tuple[Thresholds, Thresholds]:
        self._fit(points)
        yellow = self.yellow.closest()
        return yellow, above(self.red.closest(), yellow, self.window)

    def refit(self, points: Sequence[Point]) -> None:
        """Build the ladders anew on `points`: those of the first backtest's run."""
        self._fit(points)

    def observe(self, limits: tuple[Thresholds, Thresholds], reached: Shares) -> None:
        self.reached.append((*limits, reached))
        self.yellow.tried.append((limits[0], reached.yellow_or_worse))
        self.red.tried.append((limits[1], reached.red))

    def next(self) -> tuple[Thresholds, Thresholds] | None:
        yellow_next, red_next = self.yellow.next(), self.red.next()
        if yellow_next is None and red_next is None:
            return None
        last_yellow, last_red, _ = self.reached[-1]
        yellow = yellow_next or last_yellow
        pair = (yellow, above(red_next or last_red, yellow, self.window))
        if any((y, r) == pair for y, r, _ in self.reached):
            return None
        return pair

    def result(self) -> Suggestion:
        yellow, red, reached = min(self.reached, key=lambda found: self._miss(found[2]))
        return Suggestion(yellow, red, reached, tuple(self._notes(yellow, red, reached)))

    def _miss(self, reached: Shares) -> float:
        """How far outside its margins the worse level lands (1 and below: within)."""
        return max(
            abs(reached.yellow_or_worse - self.yellow.target) / self.yellow.margin,
            abs(reached.red - self.red.target) / self.red.margin,
        )

    def _fit(self, points: Sequence[Point]) -> None:
        self.points = self.yellow.points = self.red.points = points
        self.yellow.rungs = ladder(points, self.yellow.target, self.window)
        self.red.rungs = ladder(points, self.red.target, self.window)

    def _notes(self, yellow: Thresholds, red: Thresholds, reached: Shares) -> Iterable[str]:
        for limits, level in ((yellow, self.yellow), (red, self.red)):
            if limits.oldest is None:
                yield (
                    f"{level.name}: no limit on the oldest wait: the target asks for one past "
                    f"the window ({format_duration(self.window)} counted)"
                )
        for level, got in ((self.yellow, reached.yellow_or_worse), (self.red, reached.red)):
            if not level.within(got):
                yield (
                    f"{level.name}: {got:.0%} of the counted time, against a target of "
                    f"{level.target:.0%} ± {level.margin * 100:.0f} points: {self._why(level)}"
                )

    def _why(self, level: _Level) -> str:
        total = sum(point.weight for point in self.points) or 1.0
        queued = sum(point.weight for point in self.points if point.waiting > 0) / total
        if queued < level.target - level.margin:
            return (
                f"a PR was waiting only {queued:.0%} of the counted time, and an empty queue "
                "is green whatever the limits"
            )
        left = LONG_WAIT.total_seconds()
        stuck = sum(point.weight for point in self.points if point.oldest >= left) / total
        if stuck > level.margin:
            return (
                f"for {stuck:.0%} of the counted time a PR had waited more than "
                f"{format_duration(LONG_WAIT)}; PRs left open, never reviewed nor closed, "
                "keep the measures up for good"
            )
        if level.gap is not None:
            low, high = level.gap
            return f"the round limits either side of it reach {low:.0%} and {high:.0%}"
        return f"{len(level.tried)} backtests of neighbouring round limits came no closer"


# The file ----------------------------------------------------------------------------------


def duration_text(duration: timedelta) -> str:
    """A limit on the oldest wait as a team writes it: 36h below two days, else 3d."""
    if duration >= DAYS_FROM and duration % DAY == timedelta(0):
        return f"{duration // DAY}d"
    if duration % HOUR == timedelta(0):
        return f"{duration // HOUR}h"
    minutes = int(duration.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60}m" if minutes >= 60 else f"{minutes}m"


def limits_yaml(limits: Thresholds) -> dict[str, Any]:
    return {
        "waiting": limits.waiting,
        "oldest": duration_text(limits.oldest) if limits.oldest is not None else None,
        "lines": limits.lines,
    }


def with_suggestions(
    raw: dict[str, Any], suggestions: dict[str, tuple[Suggestion, Sequence[str]]]
) -> dict[str, Any]:
    """The configuration `raw` with each named team's thresholds replaced by its suggestion;
    a team the file does not name (a repository of its own) is added with its repositories."""
    teams = [dict(team) for team in raw.get("teams", [])]
    named = {team.get("name"): team for team in teams}
    for name, (suggestion, repos) in suggestions.items():
        team = named.get(name)
        if team is None:
            team = {"name": name, "repos": list(repos)}
            teams.append(team)
        team["thresholds"] = suggestion.as_json()
    return {**raw, "teams": teams}


def snippet(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None, allow_unicode=True)
