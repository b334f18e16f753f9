"""The backtest's GitHub history: GraphQL pages, resuming, limits, and the deliveries it
rebuilds, against a faked API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from github import GithubException

from benchmarks.org_history import START, PullHistory, iso, org_month
from stoplight import cli
from stoplight.backtest.fetch import github_history
from stoplight.backtest.graphql import PAGE_SIZE
from stoplight.backtest.history import Recorded
from stoplight.backtest.report import run_backtest
from stoplight.clients.github import GitHubApp
from tests.conftest import UNPACED, api_root
from tests.graphql_fake import FakeGraphQL

CUTOFF = START + timedelta(days=7)


@pytest.fixture
def sleeps(clock):
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds=seconds)

    return slept, sleep


@pytest.fixture
def client(settings, redis, clock, github, sleeps):
    app = GitHubApp(settings, redis, clock, budget=UNPACED, sleep=sleeps[1])
    return app.installation(77)


def served(github, pulls: list[PullHistory]) -> FakeGraphQL:
    repos: dict[str, tuple[int, list[dict]]] = {}
    for pull in pulls:
        repos.setdefault(pull.repo.full_name, (pull.repo.id, []))[1].append(pull.node())
    return FakeGraphQL(github.mock, repos)


def in_window(pulls: list[PullHistory]) -> list[PullHistory]:
    return [pull for pull in pulls if pull.updated >= CUTOFF]


def comparable(deliveries: list[Recorded]) -> list[tuple[str, str, str]]:
    return sorted(
        (d.at.isoformat(), d.event, json.dumps(d.payload, sort_keys=True)) for d in deliveries
    )


def recorded(pulls: list[PullHistory]) -> list[Recorded]:
    return sorted((d for pull in pulls for d in pull.deliveries()), key=lambda d: d.at)


def test_a_thousand_prs_cost_a_page_of_fifty_each_and_rebuild_the_deliveries(
    github, client, tmp_path
):
    pulls = org_month(1000, repos=2)
    fake = served(github, pulls)

    deliveries, requests = github_history(
        client, ["acme/service-0", "acme/service-1"], CUTOFF, tmp_path
    )

    assert requests == len(fake.queries) < 50
    assert {query["first"] for query in fake.queries} == {PAGE_SIZE}
    assert comparable(deliveries) == comparable(recorded(in_window(pulls)))
    assert len(in_window(pulls)) < len(pulls)  # the window left older PRs out


def test_a_failed_page_is_read_again_from_its_cursor_and_the_pages_before_are_kept(
    github, client, tmp_path
):
    pulls = org_month(200, repos=1)
    fake = served(github, pulls)
    # GitHub's answer to a query that timed out on its side: a 200 carrying errors.
    fake.fail(2, 200, {"errors": [{"message": "Something went wrong while executing"}]})
    with pytest.raises(GithubException):
        github_history(client, ["acme/service-0"], CUTOFF, tmp_path)

    deliveries, _ = github_history(client, ["acme/service-0"], CUTOFF, tmp_path)

    cursors = [query["after"] for query in fake.queries]
    assert cursors[:4] == [None, "50", "100", "100"]  # the failed page, and only it, again
    assert comparable(deliveries) == comparable(recorded(in_window(pulls)))


def test_a_throttled_read_waits_as_long_as_github_asks_and_goes_on(
    github, client, tmp_path, sleeps
):
    pulls = org_month(60, repos=1)
    fake = served(github, pulls)
    limited = {"message": "You have exceeded a secondary rate limit"}
    fake.fail(1, 403, limited, {"Retry-After": "30"})

    deliveries, _ = github_history(client, ["acme/service-0"], CUTOFF, tmp_path)

    assert sleeps[0] == [30]
    assert [query["after"] for query in fake.queries[:3]] == [None, "50", "50"]
    assert comparable(deliveries) == comparable(recorded(in_window(pulls)))


def test_a_run_low_on_points_waits_for_their_reset(github, client, tmp_path, sleeps, clock):
    pulls = org_month(60, repos=1)
    fake = served(github, pulls)
    fake.points_left = 10
    fake.reset_at = iso(clock.now() + timedelta(minutes=20))

    deliveries, _ = github_history(client, ["acme/service-0"], CUTOFF, tmp_path)

    assert sleeps[0][0] == 20 * 60
    assert comparable(deliveries) == comparable(recorded(in_window(pulls)))


def test_a_long_timeline_is_read_to_its_end(github, client, tmp_path):
    pulls = org_month(30, repos=1)
    fake = served(github, pulls)
    fake.timeline_page = 2  # most PRs have more items than that

    deliveries, _ = github_history(client, ["acme/service-0"], CUTOFF, tmp_path)

    assert any("id" in query for query in fake.queries)
    assert comparable(deliveries) == comparable(recorded(in_window(pulls)))


def test_a_pr_open_since_before_the_window_is_read_from_the_open_listing(github, client, tmp_path):
    pulls = org_month(40, repos=1)
    forgotten = pulls[0]  # opened in the first days and, here, never closed
    forgotten.closed, forgotten.reviews = None, []
    assert forgotten.updated < CUTOFF
    served(github, pulls)

    deliveries, _ = github_history(client, ["acme/service-0"], CUTOFF, tmp_path)

    numbers = {d.payload["pull_request"]["number"] for d in deliveries}
    assert forgotten.number in numbers
    assert comparable(deliveries) == comparable(recorded([*in_window(pulls), forgotten]))


def test_the_github_backed_backtest_matches_the_recorded_one(github, client, tmp_path):
    pulls = org_month(40, repos=2, days=14)
    served(github, pulls)
    repos = ["acme/service-0", "acme/service-1"]
    start = START - timedelta(days=1)
    deliveries, _ = github_history(client, repos, start, tmp_path)
    until = START + timedelta(days=15)

    from_github = run_backtest(deliveries, window=timedelta(days=14), until=until)
    from_file = run_backtest(recorded(pulls), window=timedelta(days=14), until=until)

    assert from_github.as_json() == from_file.as_json()
    assert len(from_file.teams) == 2


def test_the_command_reads_github_and_sends_nothing_to_it(
    github, redis_server, monkeypatch, private_key_pem, tmp_path
):
    pulls = org_month(60, repos=1, days=10)
    shift = datetime.now(UTC) - (START + timedelta(days=10))
    for pull in pulls:  # the history ends now, on the real clock the command runs on
        pull.shift(shift)
    fake = served(github, pulls)
    github.mock.get(
        re.compile(api_root() + "/repos/acme/service-0/installation"),
        json={"id": 77, "account": {"login": "acme"}},
    )
    for name, value in {
        "REDIS_URL": redis_server.url,
        "APP_ID": "1234",
        "PRIVATE_KEY": private_key_pem,
        "DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "warning",
    }.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(
        cli.main, ["backtest", "--repo", "acme/service-0", "--since", "7d", "--json"]
    )

    assert result.exit_code == 0, result.output
    (team,) = json.loads(result.output)["teams"]
    assert team["team"] == "acme/service-0"
    assert sum(team["hours_in_light"].values()) == pytest.approx(7 * 24)
    assert len(fake.queries) == 2  # one page of recent PRs, one of PRs open since before
    assert {path for _, path, _ in github.writes()} == {"/graphql"}  # no status, label, post
