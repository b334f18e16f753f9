"""Sign-in and access: signed-in people see their own teams; everyone else gets the same 404."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr

from stoplight.settings import Settings
from stoplight.state import keys
from stoplight.web import create_app
from stoplight.web.auth import return_token
from tests.conftest import FakeGitHub, deliver, run_due_jobs
from tests.fakes import Pull, Repo
from tests.github_users import FakeGitHubUsers, Person
from tests.test_agents import copilot_opened, copilot_pull

SHOP = Repo(id=1001, full_name="octo/shop", installation_id=42)
DOCS = Repo(id=1002, full_name="octo/docs", installation_id=42)
OTHER = Repo(id=2001, full_name="acme/api", installation_id=43)
SECRET_WORDS = ("octo", "acme", "shop", "docs", "api", "alice", "Secret plan", "Change number")


@pytest.fixture
def signin_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "github_client_id": "Iv1.stoplight",
            "github_client_secret": SecretStr("client-secret"),
            "session_secret": SecretStr("a-session-secret-of-enough-length"),
        }
    )


@pytest.fixture
def app(signin_settings, redis, clock) -> Flask:
    return create_app(signin_settings, redis, clock)


@pytest.fixture
def users(github: FakeGitHub) -> FakeGitHubUsers:
    return FakeGitHubUsers(github.mock)


@pytest.fixture
def queues(rt, github, clock) -> None:
    """Three teams in two installations, shop red with a secret title."""
    for repo in (SHOP, DOCS, OTHER):
        deliver(rt, Pull(repo=repo, number=1, title="Secret plan").event("opened", clock.now()))
    for number in range(2, 10):
        deliver(rt, Pull(repo=SHOP, number=number).event("opened", clock.now()))


@pytest.fixture
def anonymous(app) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


def sign_in(app: Flask, person: Person, next_page: str = "/") -> FlaskClient:
    client = app.test_client()
    started = client.get(f"/auth/login?next={return_token(next_page)}")
    assert started.status_code == 302
    assert started.headers["Location"].startswith("https://github.com/login/oauth/authorize")
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    back = client.get(f"/auth/callback?code={person.code}&state={state}")
    assert back.status_code == 302, back.text
    assert back.headers["Location"] == next_page
    return client


def alice(users: FakeGitHubUsers) -> Person:
    return users.add(Person(7, "alice", {42: [(1001, "octo/shop"), (1002, "octo/docs")]}))


def assert_hidden(response: Any) -> None:
    assert response.status_code == 404
    for word in SECRET_WORDS:
        assert word not in response.text, word


PRIVATE_PATHS = (
    "/installations/42",
    "/teams/42/octo%2Fshop",
    "/teams/42/octo/shop",
    "/teams/43/acme%2Fapi",
    "/teams/42/guessed",
    "/teams/999/octo%2Fshop",
    "/api/installations",
    "/api/installations/42",
    "/api/installations/42/teams/octo%2Fshop",
    "/api/installations/43/teams/acme%2Fapi",
    "/badge/octo/shop.svg",
    "/badge/octo/octo%2Fshop.svg",
)


@pytest.mark.usefixtures("queues")
def test_an_outsider_sees_a_sign_in_button_and_nothing_else(anonymous):
    home = anonymous.get("/")
    assert home.status_code == 200
    assert "Sign in with GitHub" in home.text
    for word in SECRET_WORDS:
        assert word not in home.text
    for path in PRIVATE_PATHS:
        assert_hidden(anonymous.get(path))


@pytest.mark.usefixtures("queues")
def test_a_person_sees_only_installations_and_teams_github_lets_them_see(app, users):
    bob = users.add(Person(8, "bob", {43: [(2001, "acme/api")]}))
    carol = users.add(Person(9, "carol", {42: [(1002, "octo/docs")]}))

    as_bob = sign_in(app, bob)
    overview = as_bob.get("/")
    assert "acme/api" in overview.text and "octo" not in overview.text
    assert as_bob.get("/teams/43/acme%2Fapi").status_code == 200
    for path in ("/teams/42/octo%2Fshop", "/installations/42", "/api/installations/42"):
        assert_hidden(as_bob.get(path))
    assert_hidden(as_bob.get("/api/installations/42/teams/octo%2Fdocs"))
    listing = as_bob.get("/api/installations").json
    assert listing == {
        "installations": [
            {"id": 43, "teams": [{"key": "acme/api", "name": "acme/api", "light": "green"}]}
        ]
    }

    as_carol = sign_in(app, carol)
    assert as_carol.get("/teams/42/octo%2Fdocs").status_code == 200
    assert_hidden(as_carol.get("/teams/42/octo%2Fshop"))
    assert [team["key"] for team in as_carol.get("/api/installations/42").json["teams"]] == [
        "octo/docs"
    ]


@pytest.mark.usefixtures("queues")
def test_the_team_page_shows_the_light_why_and_the_queue(app, users, clock):
    client = sign_in(app, alice(users), "/teams/42/octo%2Fshop")
    page = client.get("/teams/42/octo%2Fshop")
    assert page.status_code == 200
    assert 'data-light="red"' in page.text
    assert "8 PRs waiting (≥ 8 is red)" in page.text
    assert 'id="held"' in page.text and "octo/shop#9" in page.text  # red holds the ninth
    assert "Secret plan" in page.text and "alice" in page.text
    assert page.text.count('class="tag"') == 3  # the three oldest carry the swarm mark

    data = client.get("/api/installations/42/teams/octo%2Fshop").json
    assert data["light"] == "red"
    assert data["measures"]["waiting"] == {"now": 8, "yellow": 4, "red": 8}
    assert [pull["number"] for pull in data["held_pulls"]] == [9]
    assert data["waiting_pulls"][0]["title"] == "Secret plan"


@pytest.mark.usefixtures("queues")
def test_github_is_asked_once_in_a_few_minutes(app, users, github):
    client = sign_in(app, alice(users))
    for _ in range(3):
        assert client.get("/teams/42/octo%2Fshop").status_code == 200
    assert users.calls_to(github.mock, "/user/installations") == 1
    assert users.calls_to(github.mock, "/user/installations/42/repositories") == 1


@pytest.mark.usefixtures("queues")
def test_a_revoked_token_ends_the_session(app, users, redis):
    person = alice(users)
    client = sign_in(app, person)
    users.revoked.add(person.token)
    assert_hidden(client.get("/teams/42/octo%2Fshop"))
    assert redis.keys(keys.user_session("*")) == []


def test_a_wrong_state_is_refused_and_nothing_is_exchanged(app, users, redis):
    person = alice(users)
    client = app.test_client()
    client.get("/auth/login")
    refused = client.get(f"/auth/callback?code={person.code}&state=forged")
    assert refused.status_code == 400
    assert users.token_requests == 0
    assert redis.keys(keys.user_session("*")) == []


def test_a_callback_without_a_sign_in_started_here_is_refused(anonymous, users):
    person = alice(users)
    assert anonymous.get(f"/auth/callback?code={person.code}&state=x").status_code == 400
    assert users.token_requests == 0


@pytest.mark.usefixtures("queues")
def test_the_cookie_is_signed_scoped_and_holds_no_token(app, users, redis):
    person = alice(users)
    client = sign_in(app, person)
    cookie = client.get_cookie("stoplight_session")
    assert cookie is not None
    assert cookie.http_only and cookie.secure and cookie.same_site == "Lax"
    assert person.token not in cookie.value
    payload = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    assert set(payload) == {"sid", "_permanent"}
    (stored,) = redis.keys(keys.user_session("*"))
    assert person.token.encode() not in redis.get(stored)
    assert redis.ttl(stored) == int(timedelta(hours=8).total_seconds())


@pytest.mark.usefixtures("queues")
def test_a_forged_or_expired_cookie_is_nobody(app, users, monkeypatch):
    client = sign_in(app, alice(users))
    session_id = app.session_interface.get_signing_serializer(app).loads(
        client.get_cookie("stoplight_session").value
    )["sid"]

    forger = app.test_client()
    forged = Flask("forger")
    forged.secret_key = "not-the-secret"
    value = forged.session_interface.get_signing_serializer(forged).dumps({"sid": session_id})
    forger.set_cookie("stoplight_session", value)
    assert_hidden(forger.get("/teams/42/octo%2Fshop"))

    nine_hours_ago = time.time() - 9 * 3600
    monkeypatch.setattr(time, "time", lambda: nine_hours_ago)
    old = app.session_interface.get_signing_serializer(app).dumps({"sid": session_id})
    monkeypatch.undo()
    late = app.test_client()
    late.set_cookie("stoplight_session", old)
    assert_hidden(late.get("/teams/42/octo%2Fshop"))


@pytest.mark.usefixtures("queues")
def test_sign_out_ends_the_session(app, users, redis):
    client = sign_in(app, alice(users))
    assert client.post("/auth/logout").status_code == 302
    assert redis.keys(keys.user_session("*")) == []
    assert users.revoked == {"ghu_alice"}  # GitHub was told: the token opens nothing now
    assert_hidden(client.get("/teams/42/octo%2Fshop"))


def test_sign_in_returns_only_to_this_site(app, users):
    client = app.test_client()
    # Browsers read "\\" as "/" and drop tabs and line breaks: each of these leaves the site.
    targets = ("https://evil.example/", "//evil.example/x", "javascript:alert(1)",
               "/\\evil.example/x", "/\t/evil.example", "/\n/evil.example", "\\\\evil.example",
               "/ok\x00/x", "https:/evil.example", "///evil.example")  # fmt: skip
    for target in targets:
        started = client.get(f"/auth/login?next={return_token(target)}")
        state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
        back = client.get(f"/auth/callback?code={alice(users).code}&state={state}")
        assert back.headers["Location"] == "/"


@pytest.mark.usefixtures("queues")
def test_a_status_link_leads_to_its_page_after_sign_in(app, users, github):
    (target_url,) = {
        body["target_url"]
        for _, path, body in github.writes()
        if "/statuses/" in path and "octo/shop" in path
    }
    path = urlsplit(target_url).path
    anonymous = app.test_client()
    offered = anonymous.get(path)
    assert offered.status_code == 404 and "Sign in with GitHub" in offered.text
    client = sign_in(app, alice(users), path)
    assert client.get(path).status_code == 200


def test_the_badge_shows_the_light_of_a_team_that_asks_for_it(rt, github, clock, anonymous):
    github.put_config("octo/shop", "teams: [{name: app, public_badge: true}]")
    github.put_config("octo/docs", "teams: [{name: manual}]")
    for repo in (SHOP, DOCS):
        deliver(rt, Pull(repo=repo).event("opened", clock.now()))
    badge = anonymous.get("/badge/octo/app.svg")
    assert badge.status_code == 200 and badge.mimetype == "image/svg+xml"
    assert "review queue: green" in badge.text
    assert "Change number" not in badge.text and "alice" not in badge.text
    assert_hidden(anonymous.get("/badge/octo/manual.svg"))
    assert_hidden(anonymous.get("/badge/acme/app.svg"))
    assert_hidden(anonymous.get("/badge/octo/shop.svg"))  # the repository, not its team


def test_one_name_in_two_files_is_two_badges_asked_for_by_key(rt, github, clock, anonymous):
    for repo in (SHOP, DOCS):
        github.put_config(repo.full_name, "teams: [{name: app, public_badge: true}]")
        deliver(rt, Pull(repo=repo).event("opened", clock.now()))
    assert_hidden(anonymous.get("/badge/octo/app.svg"))  # which of the two?
    for key in ("app@shop", "app@docs"):
        badge = anonymous.get(f"/badge/octo/{key}.svg")
        assert badge.status_code == 200 and "review queue: green" in badge.text


@pytest.mark.usefixtures("queues")
def test_without_an_oauth_client_the_pages_are_off(settings, redis, clock):
    client = create_app(settings, redis, clock).test_client()
    assert client.get("/").status_code == 404
    for path in PRIVATE_PATHS:
        assert_hidden(client.get(path))
    assert client.get("/auth/login").status_code == 404


def test_the_json_of_a_hidden_path_says_nothing(anonymous):
    answer = anonymous.get("/api/installations/42/teams/octo%2Fshop")
    assert answer.status_code == 404
    assert json.loads(answer.text) == {"error": "not found"}


NONCE = re.compile(r"style-src 'nonce-([\w-]+)'")


def assert_locked_down(response: Any) -> None:
    policy = response.headers["Content-Security-Policy"]
    for rule in ("default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert rule in policy
    assert "form-action 'self' https://github.com" in policy
    assert "script-src" not in policy and "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.usefixtures("queues")
def test_every_page_and_answer_is_locked_down_and_private_ones_are_never_stored(
    app, users, anonymous
):
    client = sign_in(app, alice(users))
    team_json = "/api/installations/42/teams/octo%2Fshop"
    answers = {path: client.get(path) for path in ("/", "/teams/42/octo%2Fshop", team_json)}
    for path in ("/", "/teams/42/octo%2Fshop", "/healthz", "/auth/login"):
        answers[f"anonymous {path}"] = anonymous.get(path)

    for path, response in answers.items():
        assert_locked_down(response)
        assert response.headers["Cache-Control"] == "no-store", path
    first, second = (client.get("/teams/42/octo%2Fshop") for _ in range(2))
    nonces = [NONCE.search(page.headers["Content-Security-Policy"]) for page in (first, second)]
    assert nonces[0] and nonces[1] and nonces[0][1] != nonces[1][1]  # one per answer
    assert f'<style nonce="{nonces[0][1]}">' in first.text
    assert NONCE.search(answers[team_json].headers["Content-Security-Policy"]) is None


def test_the_badge_keeps_its_own_short_cache(rt, github, clock, anonymous):
    github.put_config("octo/shop", "teams: [{name: shop, public_badge: true}]")
    deliver(rt, Pull(repo=SHOP).event("opened", clock.now()))

    badge = anonymous.get("/badge/octo/shop.svg")

    assert badge.status_code == 200
    assert_locked_down(badge)
    assert badge.headers["Cache-Control"] == "max-age=60"


@pytest.mark.usefixtures("queues")
def test_sign_out_ends_the_session_while_github_fails_to_revoke(app, users, redis):
    client = sign_in(app, alice(users))
    users.revoking_fails = True

    assert client.post("/auth/logout").status_code == 302

    assert redis.keys(keys.user_session("*")) == []
    assert_hidden(client.get("/teams/42/octo%2Fshop"))


@pytest.fixture
def core_team(rt, github, clock) -> None:
    """One team over two repositories: shop's nine PRs (one secret), then one of docs."""
    github.put_config("octo/.github", "teams: [{name: core, repos: [shop, docs]}]")
    for number in range(1, 10):
        title = "Secret plan" if number == 1 else f"Change number {number}"
        deliver(rt, Pull(repo=SHOP, number=number, title=title).event("opened", clock.now()))
    docs = Pull(repo=DOCS, number=1, title="Docs fix", author="dora")
    deliver(rt, docs.event("opened", clock.now()))


CORE_JSON = "/api/installations/42/teams/core"


@pytest.mark.usefixtures("core_team")
def test_a_team_page_shows_only_the_pulls_of_repositories_the_person_can_access(app, users):
    carol = users.add(Person(9, "carol", {42: [(1002, "octo/docs")]}))
    client = sign_in(app, carol)

    page = client.get("/teams/42/core")
    data = client.get(CORE_JSON).json

    assert page.status_code == 200
    assert "Docs fix" in page.text and "octo/docs#1" in page.text
    for word in ("octo/shop", "Secret plan", "Change number", "alice"):
        assert word not in page.text, word
    assert "9 PRs of repositories you cannot access are not shown" in page.text
    assert data["key"] == "core"  # the org file's team
    assert [pull["repo"] for pull in data["waiting_pulls"] + data["held_pulls"]] == ["octo/docs"]
    assert data["hidden_pulls"] == 9  # shop's 8 waiting and 1 held
    assert data["light"] == "red" and data["measures"]["waiting"]["now"] == 8  # the team's


@pytest.mark.usefixtures("core_team")
def test_a_person_who_can_access_every_repository_sees_every_pull(app, users):
    data = sign_in(app, alice(users)).get(CORE_JSON).json

    assert data["hidden_pulls"] == 0
    assert {pull["repo"] for pull in data["waiting_pulls"]} == {"octo/shop"}
    assert [pull["repo"] for pull in data["held_pulls"]] == ["octo/shop", "octo/docs"]


def test_stale_prs_are_listed_apart_on_the_page_and_in_its_json(rt, github, clock, app, users):
    github.put_config("octo/shop", "stale_after: 3d\n")
    deliver(rt, Pull(number=1, title="Left behind").event("opened", clock.now()))
    clock.advance(days=2)
    deliver(rt, Pull(number=2, head_sha="b" * 40).event("opened", clock.now()))
    clock.advance(days=1, seconds=1)
    run_due_jobs(rt, clock)

    client = sign_in(app, alice(users), "/teams/42/octo%2Fshop")
    page = client.get("/teams/42/octo%2Fshop")
    assert "Stale: left waiting past 3d" in page.text
    stale_table = page.text.split('id="stale"')[1].split("</table>")[0]
    assert "octo/shop#1" in stale_table and "Left behind" in stale_table
    assert "octo/shop#1" not in page.text.split('id="waiting"')[1].split("</table>")[0]

    data = client.get("/api/installations/42/teams/octo%2Fshop").json
    assert data["stale"] == 1 and data["stale_after_seconds"] == 3 * 86400
    assert [pull["number"] for pull in data["stale_pulls"]] == [1]
    assert data["stale_pulls"][0]["waited_seconds"] == 3 * 86400 + 1
    assert [pull["number"] for pull in data["waiting_pulls"]] == [2]
    assert data["measures"]["waiting"]["now"] == 1


def test_a_bots_review_of_a_waiting_pr_is_shown_as_a_bots_that_does_not_count(
    app, users, rt, github, clock
):
    pull = Pull(repo=SHOP)
    deliver(rt, pull.event("opened", clock.now()))
    deliver(rt, pull.review("coderabbitai[bot]", "approved", clock.now(), reviewer_type="Bot"))
    deliver(rt, pull.review("Copilot", "changes_requested", clock.now(), reviewer_type="Bot"))

    page = sign_in(app, alice(users)).get("/teams/42/octo%2Fshop")

    shown = [
        html.unescape(line) for line in re.findall(r'class="muted bot-review">([^<]*)<', page.text)
    ]
    assert shown == [
        "Copilot requested changes — a bot's review, not counted",
        "coderabbitai[bot] approved — a bot's review, not counted",
    ]
    assert '<td>PRs waiting</td><td class="num">1</td>' in page.text  # it still waits


def test_a_bots_comment_is_shown_for_what_it_is_and_never_replaces_its_verdict(
    app, users, rt, github, clock
):
    pull = Pull(repo=SHOP)
    deliver(rt, pull.event("opened", clock.now()))
    deliver(rt, pull.review("Copilot", "commented", clock.now(), reviewer_type="Bot"))
    deliver(rt, pull.review("bo", "commented", clock.now()))  # a person's comment: no line

    def shown() -> list[str]:
        page = sign_in(app, alice(users)).get("/teams/42/octo%2Fshop")
        lines = re.findall(r'class="muted bot-review">([^<]*)<', page.text)
        return [html.unescape(line) for line in lines]

    assert shown() == ["Copilot commented — a bot's review, not counted"]
    clock.advance(minutes=5)
    deliver(rt, pull.review("Copilot", "approved", clock.now(), reviewer_type="Bot"))
    clock.advance(minutes=5)
    deliver(rt, pull.review("Copilot", "commented", clock.now(), reviewer_type="Bot"))
    assert shown() == ["Copilot approved — a bot's review, not counted"]


def test_an_agents_pr_is_shown_as_its_persons_work(app, users, rt, github, clock):
    agents = copilot_pull(repo=SHOP, number=1)
    deliver(rt, copilot_opened(agents, clock.now()))
    deliver(rt, Pull(repo=SHOP, number=2, head_sha="b" * 40).event("opened", clock.now()))

    page = sign_in(app, alice(users)).get("/teams/42/octo%2Fshop")

    authors = re.findall(r"</td>\s*<td>([^<]*)</td>\s*<td class=\"num nowrap\">", page.text)
    assert authors == ["Copilot for alice", "alice"]


def test_the_team_page_shows_the_agents_share_of_the_queue(app, users, rt, github, clock):
    agents = copilot_pull(repo=SHOP, number=1)
    deliver(rt, copilot_opened(agents, clock.now()))
    deliver(rt, Pull(repo=SHOP, number=2, head_sha="b" * 40).event("opened", clock.now()))

    page = sign_in(app, alice(users)).get("/teams/42/octo%2Fshop")

    share = re.search(r'<p id="agents-share"[^>]*>(.*?)</p>', page.text, re.S)
    assert share is not None
    assert html.unescape(share[1]) == (
        "Agents' PRs: 1 of 2 waiting (50%), 0 of 0 held · Copilot for alice 1"
    )


def test_the_weekly_figures_tell_agents_prs_leaving_review_from_peoples(
    app, users, rt, github, clock
):
    agents = copilot_pull(repo=SHOP, number=1)
    person = Pull(repo=SHOP, number=2, head_sha="b" * 40)
    deliver(rt, copilot_opened(agents, clock.now()))
    deliver(rt, person.event("opened", clock.now()))
    clock.advance(hours=2)
    deliver(rt, agents.review("bob", "approved", clock.now()))
    clock.advance(hours=1)
    deliver(rt, person.review("bob", "approved", clock.now()))
    clock.advance(minutes=1)  # a week's figures count what came before now

    page = sign_in(app, alice(users)).get("/teams/42/octo%2Fshop")

    rows = {
        html.unescape(re.sub(r"<[^>]+>", "", heading)).strip(): html.unescape(
            re.sub(r"<[^>]+>", "", cells)
        ).strip()
        for heading, cells in re.findall(
            r'<tr class="agents"><th scope="row">(.*?)</th>(.*?)</tr>', page.text, re.S
        )
    }
    assert rows == {
        "agents' PRs leaving review": "1 (50%)",
        "median wait: agents' / people's": "2h / 3h",
    }
