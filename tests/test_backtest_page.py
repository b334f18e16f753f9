"""The team page shows the team's latest backtest, to those who may see the team only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stoplight.backtest.latest import save_latest
from stoplight.backtest.report import run_backtest
from stoplight.backtest.suggest import Targets
from stoplight.core.light import Level
from tests.github_users import Person
from tests.test_backtest import approved, opened
from tests.test_pages import alice, app, queues, sign_in, signin_settings, users  # noqa: F401


@pytest.fixture
def backtested(redis, queues):  # noqa: F811
    start = datetime(2026, 10, 19, 9, tzinfo=UTC)
    hour = timedelta(hours=1)
    deliveries = [opened(n, start + n * hour) for n in range(1, 9)]
    deliveries += [approved(n, start + (n + 3) * hour) for n in range(1, 9)]
    result = run_backtest(
        sorted(deliveries, key=lambda d: d.at),
        window=14 * hour,
        until=start + 14 * hour,
        targets=Targets(0.25, 0.05),
    )
    (team,) = result.teams
    assert (team.summary.installation_id, team.summary.key) == (42, "octo/shop")
    save_latest(redis, 42, "octo/shop", team.as_json())
    return team


def test_the_team_page_shows_its_latest_backtest_and_the_suggestion(
    app,  # noqa: F811
    users,  # noqa: F811
    backtested,
):
    client = sign_in(app, alice(users), "/teams/42/octo%2Fshop")
    page = client.get("/teams/42/octo%2Fshop")

    assert page.status_code == 200
    assert "Latest backtest" in page.text
    assert "2026-10-19 09:00 to 2026-10-19 23:00 UTC" in page.text
    green = backtested.summary.time_in[Level.GREEN]
    assert f"{green.total_seconds() / 3600:.1f} h" in page.text
    assert "Suggested thresholds: yellow at" in page.text


def test_the_backtest_stays_behind_the_team_s_access_rules(app, users, backtested):  # noqa: F811
    carol = users.add(Person(9, "carol", {42: [(1002, "octo/docs")]}))
    assert sign_in(app, carol).get("/teams/42/octo%2Fshop").status_code == 404
    assert app.test_client().get("/teams/42/octo%2Fshop").status_code == 404
