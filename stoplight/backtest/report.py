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
    Suggestion,
    Targets,
    measure_points,
    snippet,
    suggest,
    with_suggestions,
)
from stoplight.backtest.summary import TeamSummary, summarize_team
from stoplight.core.light import Level

# Fit on the current run, then once more on the run of the first fit (whose queue, held lane
# and cooldown are closer to the targets'); the closer of the two is suggested.
SUGGEST_ROUNDS = 2


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
    base = config or org_file
    raw = (yaml.safe_load(base) if base else None) or {}
    fit_on = {result.summary.name: result.run for result in results}
    best: _Trial | None = None
    for _ in range(SUGGEST_ROUNDS):
        trial = _try(deliveries, raw, fit_on, since, until, targets)
        if best is None or trial.miss < best.miss:
            best = trial
        fit_on = {team.settings.name: team for team in trial.run.teams}
    assert best is not None
    tried = {(t.installation_id, t.settings.name): t for t in best.run.teams}
    results = [
        TeamResult(
            result.run,
            result.summary,
            best.suggestions[result.summary.name],
            summarize_team(tried[(result.run.installation_id, result.summary.name)], since, until),
        )
        for result in results
    ]
    return Backtest(since, until, tuple(results), best.snippet)


@dataclass(frozen=True)
class _Trial:
    suggestions: dict[str, Suggestion]
    snippet: str
    run: Run
    miss: float  # how far the teams' shares of yellow and red fall from the targets, summed


def _try(
    deliveries: Sequence[Recorded],
    raw: dict[str, Any],
    fit_on: dict[str, TeamRun],
    since: datetime,
    until: datetime,
    targets: Targets,
) -> _Trial:
    """Fit thresholds to the measures of `fit_on` (a run per team name), then backtest them."""
    suggestions = {
        name: suggest(
            measure_points(run.history, run.settings.policy.calendar, since, until), targets
        )
        for name, run in fit_on.items()
    }
    text = snippet(
        with_suggestions(
            raw, {name: (found, fit_on[name].repos) for name, found in suggestions.items()}
        )
    )
    run = simulate(deliveries, OrgConfig(text), end=until)
    miss = 0.0
    for team in run.teams:
        summary = summarize_team(team, since, until)
        miss += abs(summary.share(Level.YELLOW) - targets.yellow)
        miss += abs(summary.share(Level.RED) - targets.red)
    return _Trial(suggestions, text, run, miss)
