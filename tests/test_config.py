"""stoplight.yml: parsing, merging over defaults, errors as values naming the key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from stoplight.cli import main
from stoplight.config import schema
from stoplight.core.light import Thresholds

FULL = """
teams:
  - name: checkout
    repos: [shop-web, "payments-*"]
    slack_channel: "#checkout-reviews"
    slack_users: {alice: U123}
    thresholds:
      yellow: {waiting: 4, oldest: 24h, lines: 1000}
      red:    {waiting: 8, oldest: 48h, lines: 2500}
    cooldown: 10m
required_approvals: 2
hold_when_red: false
expedite_label: "hotfix"
swarm_labels: 2
working_hours:
  timezone: Europe/Berlin
  days: [mon, tue, wed, thu, fri]
  start: "09:00"
  end: 18:00
  holidays: [2026-12-24, 2026-12-25]
size:
  exclude: ["*.lock", "vendor/**"]
ignore_authors: ["dependabot[bot]"]
_extends: .github
"""

INVALID = {
    "teams: [{name: a, colour: red}]": "teams[0].colour: unknown key",
    "swarm_labels: -1": "swarm_labels: must be 0 or more",
    "teams: [{name: a, thresholds: {yellow: {waiting: -2}}}]":
        "teams[0].thresholds.yellow.waiting: must be 0 or more",
    "teams: [{name: a, thresholds: {yellow: {waiting: 4}, red: {waiting: 4}}}]":
        "teams[0].thresholds.red.waiting: must be greater than yellow (4)",
    "teams: [{name: a, thresholds: {red: {oldest: 12h}}}]":
        "teams[0].thresholds.red.oldest: must be greater than yellow (1d)",
    "working_hours: {timezone: Mars/Olympus}":
        "working_hours.timezone: unknown timezone 'Mars/Olympus'",
    "teams: [{name: a, cooldown: soon}]": "teams[0].cooldown: 'soon' is not a duration",
    "teams: [oops": "YAML does not parse",
    "teams: [{name: a, repos: [x]}, {name: a, repos: [y]}]": "teams[1].name: 'a' names two teams",
    "teams: [{name: a, repos: [x]}, {name: b, repos: [x]}]":
        "teams[1].repos[0]: x is already in team 'a'",
    "stale_after: 400d": "stale_after: '400d' is longer than a year",
    "stale_after: soon": "stale_after: 'soon' is not a duration",
    "stale_after: 3d\nteams: [{name: a, thresholds: {red: {oldest: 5d}}}]":
        "teams[0].thresholds.red.oldest: is never reached: PRs leave the queue as stale "
        "after 3d (stale_after)",
}  # fmt: skip


def test_full_example_becomes_team_settings():
    loaded = schema.load(FULL)
    assert isinstance(loaded, schema.Config)
    team = loaded.team_for("octo/payments-eu")
    assert isinstance(team, schema.TeamSettings)
    assert (team.key, team.slack_channel, team.slack_users) == ("checkout", "#checkout-reviews",
                                                                 {"alice": "U123"})  # fmt: skip
    assert team.policy.yellow == Thresholds(4, timedelta(hours=24), 1000)
    assert team.policy.red == Thresholds(8, timedelta(hours=48), 2500)
    assert team.policy.cooldown == timedelta(minutes=10)
    assert team.rules.required_approvals == 2 and not team.rules.hold_when_red
    assert team.rules.expedite_label == "hotfix"
    assert team.rules.ignore_authors == frozenset({"dependabot[bot]"})
    assert (team.swarm_labels, team.size_exclude) == (2, ("*.lock", "vendor/**"))
    assert team.policy.calendar.waited(*_berlin_friday_to_monday()) == timedelta(hours=1)


def _berlin_friday_to_monday():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    return datetime(2026, 11, 6, 17, tzinfo=berlin), datetime(2026, 11, 9, 9, tzinfo=berlin)


def test_repository_in_no_team_is_its_own_team_with_defaults():
    loaded = schema.load(FULL)
    assert isinstance(loaded, schema.Config)
    team = loaded.team_for("octo/docs")
    assert isinstance(team, schema.TeamSettings)
    assert (team.key, team.name) == ("octo/docs", "octo/docs")
    assert team.policy.yellow == Thresholds(4, timedelta(hours=24), 1000)


def test_partial_thresholds_merge_over_defaults_and_null_switches_off():
    loaded = schema.load(
        "teams: [{name: a, thresholds: {yellow: {waiting: 3, lines: null}, red: {waiting: 5}}, "
        "cooldown: 0s}]"
    )
    assert isinstance(loaded, schema.Config)
    team = loaded.team_for("octo/anything")  # no repos in a repository's own file: this repo
    assert isinstance(team, schema.TeamSettings)
    assert team.policy.yellow == Thresholds(3, timedelta(hours=24), None)
    assert team.policy.red == Thresholds(5, timedelta(hours=48), 2500)
    assert team.policy.cooldown == timedelta(0)


@pytest.mark.parametrize("duration", ["30s", "15m", "24h", "2d", "1d12h"])
def test_durations(duration):
    seconds = {"30s": 30, "15m": 900, "24h": 86400, "2d": 172800, "1d12h": 129600}[duration]
    assert schema.parse_duration(duration) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("text", "expected"), INVALID.items())
def test_invalid_config_names_the_key(text, expected):
    loaded = schema.load(text)
    assert isinstance(loaded, schema.Invalid)
    assert loaded.message.startswith("Invalid .github/stoplight.yml: ")
    assert expected in loaded.message


def test_stale_after_defaults_to_14_days_and_null_switches_it_off():
    default, off = schema.load(""), schema.load("stale_after: null")
    assert isinstance(default, schema.Config) and isinstance(off, schema.Config)
    for config, expected in ((default, timedelta(days=14)), (off, None)):
        team = config.team_for("octo/anything")
        assert isinstance(team, schema.TeamSettings)
        assert team.policy.stale_after == expected


def test_org_wide_file_needs_repos():
    loaded = schema.load("teams: [{name: a}]", org_wide=True)
    assert isinstance(loaded, schema.Invalid)
    assert loaded.message.endswith("teams[0].repos: required in the org-wide file")


def test_repository_matched_by_two_teams_by_glob_is_an_error():
    loaded = schema.load("teams: [{name: a, repos: ['shop-*']}, {name: b, repos: ['*-web']}]")
    assert isinstance(loaded, schema.Config)
    assert isinstance(loaded.team_for("octo/shop-api"), schema.TeamSettings)
    clash = loaded.team_for("octo/shop-web")
    assert isinstance(clash, schema.Invalid)
    assert "teams[1].repos: octo/shop-web is in 'a' and 'b'" in clash.message


def test_deep_merge_merges_mappings_and_replaces_the_rest():
    base = {"teams": [{"name": "a"}], "working_hours": {"timezone": "UTC", "start": "08:00"}}
    override = {"teams": [{"name": "b"}], "working_hours": {"start": "10:00"}}
    assert schema.deep_merge(base, override) == {
        "teams": [{"name": "b"}],
        "working_hours": {"timezone": "UTC", "start": "10:00"},
    }


@pytest.mark.parametrize(("text", "expected"), INVALID.items())
def test_check_config_exits_1_with_the_same_words(tmp_path, text, expected):
    path = tmp_path / "stoplight.yml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 1
    loaded = schema.load(text)
    assert isinstance(loaded, schema.Invalid)
    assert result.stderr.strip() == loaded.message
    assert expected in result.stderr


def test_check_config_summarises_a_good_file(tmp_path):
    path = tmp_path / "stoplight.yml"
    path.write_text(FULL)
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    summary = "checkout: shop-web, payments-*; yellow waiting 4, oldest 1d, lines 1000"
    assert summary in result.stdout
