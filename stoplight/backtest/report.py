"""A whole backtest: the history through the pipeline under the current configuration, each
team's summary of the window and, when asked, thresholds fitted to each team with the
backtest of that suggestion beside the current one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import yaml

from stoplight.backtest.history import Recorded
from stoplight.backtest.simulation import ConfigSource, OrgConfig, Run, TeamRun, simulate
from stoplight.backtest.suggest import (
    Margins,
    Point,
    Shares,
    Suggestion,
    Targets,
    TeamSearch,
    measure_points,
    snippet,
    with_suggestions,
)
from stoplight.backtest.summary import TeamSummary, summarize_team
from stoplight.core.light import Level, Thresholds

# Backtests of the suggestion's search, at most: the first fit, its refit on the first run's
# queue, then steps along the ladders of round limits.
SEARCH_BACKTESTS = 6


@dataclass(frozen=True)
class TeamResult:
    run: TeamRun
    summary: TeamSummary
    suggestion: Suggestion | None = None
    suggested: TeamSummary | None = None  # the backtest of the suggestion
    targets: Targets | None = None

    def as_json(self) -> dict[str, Any]:
        found = self.summary.as_json()
        if self.suggestion is not None and self.suggested is not None:
            assert self.targets is not None and self.suggestion.reached is not None
            found["suggestion"] = {
                "thresholds": self.suggestion.as_json(),
                "backtest": self.suggested.as_json(),
                "targets": Shares(self.targets.yellow_or_worse, self.targets.red).as_json(),
                "reached": self.suggestion.reached.as_json(),
                "notes": list(self.suggestion.notes),
            }
        return found


@dataclass(frozen=True)
class Backtest:
    since: datetime
    until: datetime
    teams: tuple[TeamResult, ...]
    snippet: str | None = None  # the suggested stoplight.yml

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "teams": [team.as_json() for team in self.teams],
            "suggested_config": self.snippet,
        }


def run_backtest(
    deliveries: Sequence[Recorded],
    *,
    window: timedelta,
    until: datetime | None = None,
    config: str | None = None,
    source: ConfigSource | None = None,
    org_file: str | None = None,
    targets: Targets | None = None,
    margins: Margins | None = None,
) -> Backtest:
    """Replay `deliveries` and sum up the `window` before `until` (the last delivery).

    `config` is a stoplight.yml standing as the org-wide file of every repository; without
    it, `source` (GitHub) gives each repository's configuration, or the defaults apply.
    `targets` asks for suggested thresholds, and their backtest: the suggestion is `config`
    (or else `org_file`, the org-wide file GitHub has) with each team's thresholds replaced.
    """
    until = until or deliveries[-1].at
    since = until - window
    current = simulate(deliveries, OrgConfig(config) if config else source, end=until)
    results = [TeamResult(team, summarize_team(team, since, until)) for team in current.teams]
    if targets is None:
        return Backtest(since, until, tuple(results))
    base = config or org_file
    raw = (yaml.safe_load(base) if base else None) or {}
    search = _Search(deliveries, raw, since, until, targets, margins or Margins())
    suggestions, run, text = search.run({result.summary.name: result.run for result in results})
    tried = {(t.installation_id, t.settings.name): t for t in run.teams}
    results = [
        TeamResult(
            result.run,
            result.summary,
            suggestions[result.summary.name],
            summarize_team(tried[(result.run.installation_id, result.summary.name)], since, until),
            targets,
        )
        for result in results
    ]
    return Backtest(since, until, tuple(results), text)


Limits = tuple[Thresholds, Thresholds]  # yellow, red


@dataclass
class _Search:
    """Each team's search for round thresholds, every step backtested through the pipeline
    (all teams in one run: their queues are apart)."""

    deliveries: Sequence[Recorded]
    raw: dict[str, Any]
    since: datetime
    until: datetime
    targets: Targets
    margins: Margins

    def run(self, current: dict[str, TeamRun]) -> tuple[dict[str, Suggestion], Run, str]:
        """The suggestion of each team, the run of them all together, and its file."""
        searches = {
            name: TeamSearch(self.targets, self.margins, self._counted(team))
            for name, team in current.items()
        }
        limits = {name: searches[name].start(self._points(team)) for name, team in current.items()}
        runs: dict[tuple[Limits, ...], tuple[Run, str]] = {}
        for _ in range(SEARCH_BACKTESTS):
            run, text = self._backtest(limits, current)
            runs[tuple(limits.values())] = (run, text)
            chosen = {}
            for team in run.teams:
                search = searches[team.settings.name]
                if not search.reached:
                    search.refit(self._points(team))
                search.observe(limits[team.settings.name], self._shares(team))
                chosen[team.settings.name] = search.next()
            if all(found is None for found in chosen.values()):
                break
            limits = {name: chosen[name] or limits[name] for name in limits}
        suggestions = {name: search.result() for name, search in searches.items()}
        best = tuple((found.yellow, found.red) for found in suggestions.values())
        if best not in runs:  # each team's best came from a different backtest
            runs[best] = self._backtest(dict(zip(suggestions, best, strict=True)), current)
        run, text = runs[best]
        return suggestions, run, text

    def _backtest(self, limits: dict[str, Limits], teams: dict[str, TeamRun]) -> tuple[Run, str]:
        suggested: dict[str, tuple[Suggestion, Sequence[str]]] = {
            name: (Suggestion(yellow, red), teams[name].repos)
            for name, (yellow, red) in limits.items()
        }
        text = snippet(with_suggestions(self.raw, suggested))
        return simulate(self.deliveries, OrgConfig(text), end=self.until), text

    def _points(self, team: TeamRun) -> list[Point]:
        calendar = team.settings.policy.calendar
        return measure_points(team.history, calendar, self.since, self.until)

    def _counted(self, team: TeamRun) -> timedelta:
        return team.settings.policy.calendar.waited(self.since, self.until)

    def _shares(self, team: TeamRun) -> Shares:
        summary = summarize_team(team, self.since, self.until)
        red = summary.share(Level.RED)
        return Shares(summary.share(Level.YELLOW) + red, red)
