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
from stoplight.backtest.simulation import ConfigSource, OrgConfig, TeamRun, simulate
from stoplight.backtest.suggest import (
    Suggestion,
    Targets,
    measure_points,
    snippet,
    suggest,
    with_suggestions,
)
from stoplight.backtest.summary import TeamSummary, summarize_team


@dataclass(frozen=True)
class TeamResult:
    run: TeamRun
    summary: TeamSummary
    suggestion: Suggestion | None = None
    suggested: TeamSummary | None = None  # the backtest of the suggestion

    def as_json(self) -> dict[str, Any]:
        found = self.summary.as_json()
        if self.suggestion is not None and self.suggested is not None:
            found["suggestion"] = {
                "thresholds": self.suggestion.as_json(),
                "backtest": self.suggested.as_json(),
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
    suggestions = {
        result.summary.name: _suggestion(result.run, since, until, targets) for result in results
    }
    base = config or org_file
    raw = yaml.safe_load(base) if base else {}
    fitted = snippet(
        with_suggestions(
            raw or {},
            {name: (found, run.repos) for name, (found, run) in suggestions.items()},
        )
    )
    tried = simulate(deliveries, OrgConfig(fitted), end=until)
    tried_by_team = {(t.installation_id, t.settings.name): t for t in tried.teams}
    results = [
        TeamResult(
            result.run,
            result.summary,
            suggestions[result.summary.name][0],
            summarize_team(
                tried_by_team[(result.run.installation_id, result.summary.name)], since, until
            ),
        )
        for result in results
    ]
    return Backtest(since, until, tuple(results), fitted)


def _suggestion(
    run: TeamRun, since: datetime, until: datetime, targets: Targets
) -> tuple[Suggestion, TeamRun]:
    points = measure_points(run.history, run.settings.policy.calendar, since, until)
    return suggest(points, targets), run
