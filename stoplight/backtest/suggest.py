"""Thresholds fitted to a team's own queue: the light reaches yellow or worse for about the
target share of the team's counted time, and red for about its red share.

The queue's measures over the window (the samples the pipeline recorded) are read on a grid,
each point weighted by the calendar time it stands for. For a share q, each measure's limit is
the value it reaches or exceeds for q of the time; the light is the highest level any measure
reaches, so the share of the level is that of the union, which grows with q. The q whose
union comes closest to the target gives the level's limits. Red limits stay above yellow's,
as the configuration requires. The suggestion's own backtest (the real pipeline, with held
lane and cooldown) then shows what the team would have seen.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import yaml

from stoplight.core.flow import History
from stoplight.core.light import Thresholds, WaitCalendar

GRID = timedelta(minutes=5)
SHARE_STEPS = 200
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Targets:
    yellow: float = 0.25  # of the counted time in yellow
    red: float = 0.05  # in red


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


def suggest(points: Sequence[Point], targets: Targets) -> Suggestion:
    yellow = _fit(points, targets.yellow + targets.red)
    red = _fit(points, targets.red)
    return Suggestion(yellow=yellow, red=_above(red, yellow))


def share_reached(points: Sequence[Point], limits: Thresholds) -> float:
    """The part of the weighted time at which any measure reaches its limit."""
    total = sum(point.weight for point in points)
    reached = sum(point.weight for point in points if _reaches(point, limits))
    return reached / total if total else 0.0


def _reaches(point: Point, limits: Thresholds) -> bool:
    return (
        (limits.waiting is not None and point.waiting >= limits.waiting)
        or (limits.oldest is not None and point.oldest >= limits.oldest.total_seconds())
        or (limits.lines is not None and point.lines >= limits.lines)
    )


def _fit(points: Sequence[Point], target: float) -> Thresholds:
    """The limits whose union share comes closest to `target` (the lower limits on a tie)."""
    waiting, oldest, lines = (_Distribution(points, m) for m in ("waiting", "oldest", "lines"))
    best: tuple[float, Thresholds] | None = None
    for step in range(SHARE_STEPS + 1):
        share = target * step / SHARE_STEPS
        limits = Thresholds(
            waiting=max(int(waiting.limit(share)), 1),
            oldest=max(_rounded(timedelta(seconds=oldest.limit(share))), MINUTE),
            lines=max(int(lines.limit(share)), 1),
        )
        miss = abs(share_reached(points, limits) - target)
        if best is None or miss < best[0]:
            best = (miss, limits)
    assert best is not None
    return best[1]


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


def _rounded(duration: timedelta) -> timedelta:
    """Up to the next whole minute: a limit the configuration can write."""
    minutes = -(-duration.total_seconds() // 60)
    return timedelta(minutes=minutes)


def _above(red: Thresholds, yellow: Thresholds) -> Thresholds:
    assert yellow.waiting is not None and yellow.oldest is not None and yellow.lines is not None
    assert red.waiting is not None and red.oldest is not None and red.lines is not None
    return Thresholds(
        waiting=max(red.waiting, yellow.waiting + 1),
        oldest=max(red.oldest, yellow.oldest + MINUTE),
        lines=max(red.lines, yellow.lines + 1),
    )


def duration_text(duration: timedelta) -> str:
    """A duration as the configuration writes it: 2d, 26h, 1h30m, 45m."""
    minutes = int(duration.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return "".join(parts) or "0m"


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
