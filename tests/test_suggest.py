"""`backtest --suggest` on generated team histories: round limits a team would write, the
targets reached by the suggestion's own backtest, what cannot be reached said, the printed file
reproducing the suggested column, and windows of up to a year. `-s` prints the figures."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from benchmarks.team_history import (
    AGENT,
    REVIEW_BOT,
    TeamShape,
    deliveries_of,
    team_config,
    team_year,
)
from stoplight import cli
from stoplight.backtest.history import write_recorded
from stoplight.backtest.render import render
from stoplight.backtest.report import Backtest, TeamResult, run_backtest
from stoplight.backtest.suggest import (
    DAYS_FROM,
    HOUR,
    ROUND_COUNTS,
    ROUND_LINES,
    Margins,
    Targets,
)
from stoplight.core.light import Level, Thresholds

pytestmark = pytest.mark.slow

TARGETS = Targets(yellow=0.25, red=0.05)
MARGINS = Margins()  # 8 points for yellow or worse, 3 for red
# A team's thresholds as it might have written them before asking for a suggestion.
WRITTEN = (
    "{yellow: {waiting: 5, oldest: 1d, lines: 500}, red: {waiting: 10, oldest: 3d, lines: 1500}}"
)


def reached(team: TeamResult) -> tuple[float, float]:
    """Yellow or worse, and red, in the suggestion's backtest through the pipeline."""
    assert team.suggested is not None
    red = team.suggested.share(Level.RED)
    return team.suggested.share(Level.YELLOW) + red, red


def print_figures(label: str, result: Backtest) -> None:
    for team in result.teams:
        yellow_or_worse, red = reached(team)
        assert team.suggestion is not None
        print(
            f"\n{label}: {team.summary.name}: yellow or worse {yellow_or_worse:.1%} "
            f"(target {TARGETS.yellow_or_worse:.0%} ± 8), red {red:.1%} (target "
            f"{TARGETS.red:.0%} ± 3); {team.suggestion.as_json()}"
        )
        for note in team.suggestion.notes:
            print(f"  note: {note}")


def assert_round(limits: Thresholds, window: timedelta) -> None:
    assert limits.waiting is None or limits.waiting in ROUND_COUNTS
    assert limits.lines is None or limits.lines in ROUND_LINES
    if limits.oldest is not None:
        assert limits.oldest % HOUR == timedelta(0)
        assert limits.oldest < DAYS_FROM or limits.oldest % timedelta(days=1) == timedelta(0)
        assert limits.oldest <= window


def assert_round_suggestions(result: Backtest) -> None:
    for team in result.teams:
        assert team.suggestion is not None
        window = team.run.settings.policy.calendar.waited(result.since, result.until)
        assert_round(team.suggestion.yellow, window)
        assert_round(team.suggestion.red, window)


def assert_within_margins(team: TeamResult) -> None:
    yellow_or_worse, red = reached(team)
    assert yellow_or_worse == pytest.approx(TARGETS.yellow_or_worse, abs=MARGINS.yellow_or_worse)
    assert red == pytest.approx(TARGETS.red, abs=MARGINS.red)


def test_round_thresholds_reach_the_targets_on_a_team_without_abandoned_prs():
    deliveries = deliveries_of(team_year(TeamShape(days=120, per_working_day=4)))

    result = run_backtest(
        deliveries, window=timedelta(days=120), config=team_config(), targets=TARGETS
    )

    print_figures("120 days, nothing abandoned", result)
    (team,) = result.teams
    assert_within_margins(team)
    assert_round_suggestions(result)
    assert team.suggestion is not None and team.suggestion.notes == ()
    # What the suggestion says it reached is its own backtest's figures.
    assert team.suggestion.reached is not None
    assert (team.suggestion.reached.yellow_or_worse, team.suggestion.reached.red) == reached(team)


def test_abandoned_prs_and_missing_closes_get_round_limits_within_the_margins():
    shape = TeamShape(days=120, per_working_day=4, abandoned=0.03, close_missing=0.05)
    pulls = team_year(shape)
    deliveries = deliveries_of(pulls)
    closed = {(d.payload["number"]) for d in deliveries if d.payload.get("action") == "closed"}
    assert any(not p.reviews and p.closed is None for p in pulls)  # abandoned
    assert any(p.closed is not None and p.number not in closed for p in pulls)  # undelivered
    assert any(who == REVIEW_BOT for p in pulls for _, who, _, _ in p.reviews)
    assert any(p.author == AGENT for p in pulls)
    config = team_config(WRITTEN)

    result = run_backtest(deliveries, window=timedelta(days=120), config=config, targets=TARGETS)

    print_figures("120 days, abandoned PRs and missing closes", result)
    assert_round_suggestions(result)
    (team,) = result.teams
    assert team.suggestion is not None
    # Stale PRs out of the measures, the suggestion reaches its targets here too.
    assert_within_margins(team)
    assert team.suggestion.notes == ()
    yellow_or_worse, _ = reached(team)
    console = Console(record=True, width=400)  # no note wrapped
    render(console, result.teams, result.snippet)
    shown = console.export_text()
    assert f"suggestion reached {yellow_or_worse:.0%} yellow or worse (target 30%)" in shown
    assert all(note in shown for note in team.suggestion.notes)
    # The file it prints gives the column it shows.
    again = run_backtest(
        deliveries, window=timedelta(days=120), config=result.snippet, targets=None
    )
    assert team.suggested is not None
    assert again.teams[0].summary.as_json() == team.suggested.as_json()


def test_the_default_light_on_a_history_with_abandoned_prs_is_red_a_minority_of_the_time():
    shape = TeamShape(days=120, per_working_day=4, abandoned=0.03, close_missing=0.05)
    deliveries = deliveries_of(team_year(shape))
    window = timedelta(days=120)

    default = run_backtest(deliveries, window=window, config=team_config()).teams[0].summary
    never_stale = (
        run_backtest(deliveries, window=window, config=team_config() + "stale_after: null\n")
        .teams[0]
        .summary
    )

    print(
        f"\ndefault configuration: red {default.share(Level.RED):.0%}, "
        f"{default.light_changes} light changes, {default.stale_at_end} stale at the end; "
        f"without stale PRs: red {never_stale.share(Level.RED):.0%}, "
        f"{never_stale.light_changes} light changes"
    )
    assert default.share(Level.RED) < 0.5
    assert default.light_changes > 4 * never_stale.light_changes  # it moves with the queue
    assert default.stale_at_end > 0
    assert never_stale.share(Level.RED) > 0.8  # what the abandoned PRs did before


def backtest_json(recorded: Path, *options: str) -> dict:
    result = CliRunner().invoke(cli.main, ["backtest", "--from", str(recorded), "--json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def command_env(redis_server, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LOG_LEVEL", "warning")


def test_the_printed_file_passed_back_with_config_gives_the_suggested_column(tmp_path, command_env):
    recorded = tmp_path / "team.jsonl"
    deliveries = deliveries_of(team_year(TeamShape(days=60, per_working_day=4), seed=3))
    recorded.write_text("".join(write_recorded(deliveries)))
    config = tmp_path / "stoplight.yml"
    config.write_text(team_config(WRITTEN))

    first = backtest_json(recorded, "--config", str(config), "--since", "60d", "--suggest")
    suggested = tmp_path / "suggested.yml"
    suggested.write_text(first["suggested_config"])
    second = backtest_json(recorded, "--config", str(suggested), "--since", "60d")

    (team,) = first["teams"]
    suggestion = team["suggestion"]
    print(f"\nsuggested {suggestion['thresholds']}: reached {suggestion['reached']}")
    assert second["teams"] == [suggestion["backtest"]]
    assert suggestion["targets"] == {"yellow_or_worse": 0.30, "red": 0.05}
    hours = suggestion["backtest"]["hours_in_light"]
    counted = suggestion["backtest"]["hours_counted"]
    assert suggestion["reached"]["red"] == pytest.approx(hours["red"] / counted)
    assert "waiting:" in first["suggested_config"] and "oldest:" in first["suggested_config"]


def test_a_300_day_file_is_summed_up_over_all_its_weeks(tmp_path, command_env):
    recorded = tmp_path / "team.jsonl"
    pulls = team_year(TeamShape(days=300, per_working_day=1.5, holiday_weeks=0))
    recorded.write_text("".join(write_recorded(deliveries_of(pulls))))

    report = backtest_json(recorded, "--since", "300d")

    (team,) = report["teams"]
    weeks = team["weeks"]
    print(f"\n300 days: {len(weeks)} weeks, {sum(w['entered'] for w in weeks)} PRs entered")
    assert len(weeks) >= 42
    # The oldest weeks come from the team history too: the scratch Redis kept them.
    assert all(week["entered"] > 0 for week in weeks[-4:])
    assert sum(team["hours_in_light"].values()) == pytest.approx(team["hours_counted"])


def test_a_window_beyond_a_year_is_refused_naming_the_limit(tmp_path, command_env):
    recorded = tmp_path / "team.jsonl"
    pulls = team_year(TeamShape(days=20, per_working_day=1))
    recorded.write_text("".join(write_recorded(deliveries_of(pulls))))

    result = CliRunner().invoke(cli.main, ["backtest", "--from", str(recorded), "--since", "400d"])

    assert result.exit_code == 2, result.output
    assert "--since" in result.output and "'400d' is longer than a year" in result.output
