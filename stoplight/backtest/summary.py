"""What a backtest reports of each team: time in each light, light changes and the Slack
notices they send, held PRs, and the weekly flow figures of `stoplight.core.flow`.

Durations are counted in the team's calendar: working time when working hours are set,
else all time, the way the light itself counts waits.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from stoplight.backtest.simulation import TeamRun
from stoplight.core.flow import WEEK, LightChange, WeekFigures, weekly_figures
from stoplight.core.light import Level, Policy, Thresholds, WaitCalendar, format_duration


@dataclass(frozen=True)
class TeamSummary:
    installation_id: int
    key: str
    name: str
    since: datetime
    until: datetime
    thresholds: dict[str, dict[str, float | None]]
    time_in: dict[Level, timedelta]
    counted: timedelta  # the calendar time of the window: working time, or all of it
    light_changes: int
    slack_notices: int
    held: int
    held_median: timedelta | None
    held_max: timedelta | None
    weeks: tuple[WeekFigures, ...]  # newest first
    open_at_end: int = 0  # PRs whose end the history does not show
    stale_at_end: int = 0
    held_agents: int = 0  # of `held`, agents' PRs
    held_agents_median: timedelta | None = None

    def share(self, level: Level) -> float:
        """The part of the counted time the light spent at `level`."""
        return self.time_in[level] / self.counted if self.counted else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "installation": self.installation_id,
            "team": self.key,
            "name": self.name,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "thresholds": self.thresholds,
            "hours_in_light": {
                level.name.lower(): self.time_in[level].total_seconds() / 3600 for level in Level
            },
            "hours_counted": self.counted.total_seconds() / 3600,
            "light_changes": self.light_changes,
            "slack_notices": self.slack_notices,
            "held": {
                "count": self.held,
                "median_hours": _hours(self.held_median),
                "max_hours": _hours(self.held_max),
                "agents": {
                    "count": self.held_agents,
                    "median_hours": _hours(self.held_agents_median),
                },
            },
            "weeks": [week.as_json() for week in self.weeks],
            "without_end": {"open": self.open_at_end, "stale": self.stale_at_end},
        }


def summarize_team(team: TeamRun, since: datetime, until: datetime) -> TeamSummary:
    policy = team.settings.policy
    calendar = policy.calendar
    lights = team.history.lights
    changes = [c for n, c in enumerate(lights) if n > 0 and since < c.at <= until]
    spells = [spell for spell in team.held if since <= spell.since < until]
    held_for = sorted(calendar.waited(s.since, s.until or until) for s in spells)
    agents_held_for = [calendar.waited(s.since, s.until or until) for s in spells if s.agent]
    weeks_back = (until - since) // WEEK + 2
    weeks = weekly_figures(team.history, calendar, until, weeks_back)
    return TeamSummary(
        installation_id=team.installation_id,
        key=team.key,
        name=team.settings.name,
        since=since,
        until=until,
        thresholds=thresholds_json(policy),
        time_in=time_in_lights(lights, calendar, since, until),
        counted=calendar.waited(since, until),
        light_changes=len(changes),
        # The pipeline announces every change of a team's light but its first.
        slack_notices=len(changes),
        held=len(spells),
        held_median=timedelta(seconds=statistics.median(_seconds(held_for))) if spells else None,
        held_max=held_for[-1] if held_for else None,
        weeks=tuple(w for w in weeks if w.end > since and w.observed_from < w.observed_until),
        open_at_end=team.open_at_end,
        stale_at_end=team.stale_at_end,
        held_agents=len(agents_held_for),
        held_agents_median=_median(agents_held_for),
    )


def time_in_lights(
    lights: tuple[LightChange, ...], calendar: WaitCalendar, since: datetime, until: datetime
) -> dict[Level, timedelta]:
    """Calendar time spent in each light within [since, until]; before the first, green."""
    spent = dict.fromkeys(Level, timedelta(0))
    moments = [(since, Level.GREEN)] + [(c.at, c.level) for c in lights]
    for (start, level), (end, _) in zip(moments, [*moments[1:], (until, Level.GREEN)], strict=True):
        begin, finish = max(start, since), min(end, until)
        if begin < finish:
            spent[level] += calendar.waited(begin, finish)
    return spent


def thresholds_json(policy: Policy) -> dict[str, dict[str, float | None]]:
    def limits(thresholds: Thresholds) -> dict[str, float | None]:
        oldest = thresholds.oldest
        return {
            "waiting": thresholds.waiting,
            "oldest_hours": oldest.total_seconds() / 3600 if oldest is not None else None,
            "lines": thresholds.lines,
        }

    return {"yellow": limits(policy.yellow), "red": limits(policy.red)}


def describe_held(summary: TeamSummary) -> str:
    if not summary.held:
        return "none held"
    assert summary.held_median is not None and summary.held_max is not None
    described = (
        f"{summary.held} held, median {format_duration(summary.held_median)}, "
        f"max {format_duration(summary.held_max)}"
    )
    if summary.held_agents_median is None:
        return described
    return (
        f"{described}; agents' {summary.held_agents}, "
        f"median {format_duration(summary.held_agents_median)}"
    )


def describe_without_end(summary: TeamSummary) -> str:
    """The PRs the history opens and never closes: still open, or closed unseen."""
    if not summary.open_at_end:
        return "none"
    return f"{summary.open_at_end} still open at the end, {summary.stale_at_end} of them stale"


def _median(durations: list[timedelta]) -> timedelta | None:
    return timedelta(seconds=statistics.median(_seconds(durations))) if durations else None


def _seconds(durations: list[timedelta]) -> list[float]:
    return [duration.total_seconds() for duration in durations]


def _hours(duration: timedelta | None) -> float | None:
    return duration.total_seconds() / 3600 if duration is not None else None
