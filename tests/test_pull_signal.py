"""The pull signal: its answer against the live light, who may read it, its tokens, and
`stoplight gate` on top of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask import Flask
from pydantic import SecretStr

from stoplight import cli
from stoplight.ops import gate as gate_ops
from stoplight.settings import Settings
from stoplight.state.signal_tokens import TokenStore
from stoplight.web import create_app
from tests.conftest import FakeGitHub, deliver, run_due_jobs
from tests.fakes import FakeClock, Pull, Repo
from tests.github_users import FakeGitHubUsers, Person
from tests.test_pages import alice, assert_hidden, sign_in

SHOP = "/api/signal/42/octo%2Fshop"
DOCS_REPO = Repo(id=1002, full_name="octo/docs", installation_id=42)


@pytest.fixture
def app(settings: Settings, redis, clock) -> Flask:
    signin = settings.model_copy(
        update={
            "github_client_id": "Iv1.stoplight",
            "github_client_secret": SecretStr("client-secret"),
            "session_secret": SecretStr("a-session-secret-of-enough-length"),
        }
    )
    return create_app(signin, redis, clock)


@pytest.fixture
def users(github: FakeGitHub) -> FakeGitHubUsers:
    return FakeGitHubUsers(github.mock)


def open_pulls(rt, clock, count: int, repo: Repo | None = None, author: str = "alice") -> None:
    for number in range(1, count + 1):
        pull = Pull(repo=repo or Repo(), number=number, author=author, head_sha=f"{number:040x}")
        deliver(rt, pull.event("opened", clock.now()))


def token_for(redis, clock, team: str = "octo/shop") -> str:
    text, _ = TokenStore(redis, 42).create(team, "ci", clock.now())
    return text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("waiting", "light", "human", "agent", "changes_in"),
    [
        # By time alone: the oldest PR reaches yellow's 24 hours, red's 48, or goes stale.
        (1, "green", None, None, timedelta(hours=24)),
        (4, "yellow", None, "agent_light", timedelta(hours=48)),
        (8, "red", "red", "red", timedelta(days=14)),
    ],
)
def test_the_signal_answers_for_a_new_pr_by_the_live_light(
    rt, github, clock, app, waiting, light, human, agent, changes_in
):
    open_pulls(rt, clock, waiting)
    token = token_for(rt.redis, clock)
    clock.advance(minutes=5)
    answer = app.test_client().get(SHOP, headers=bearer(token))

    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    data = answer.json
    assert data["light"]["level"] == light
    assert data["measures"]["waiting"] == {"now": waiting, "yellow": 4, "red": 8}
    held = data["held_if_opened_now"]
    assert (held["human"]["reason"], held["agent"]["reason"]) == (human, agent)
    assert held["human"]["held"] is (human is not None)
    assert held["agent"]["held"] is (agent is not None)
    if light == "yellow":
        assert held["agent"]["why"] == "agents wait while the queue is yellow"
        assert held["human"]["why"] == "the queue is yellow"
    first = data["next_to_review"][0]
    assert len(data["next_to_review"]) == min(waiting, 5)
    assert first["url"] == "https://github.com/octo/shop/pull/1"
    assert first["waited_seconds"] == 300 and first["lines"] == 50
    assert first["claimed_by"] is None
    assert data["retry_after_seconds"] == (changes_in - timedelta(minutes=5)).total_seconds()


def test_a_persons_wip_counts_only_when_the_person_is_named(rt, github, clock, app):
    github.put_config("octo/shop", "wip_per_author: 2\n")
    open_pulls(rt, clock, 2)
    client, headers = app.test_client(), bearer(token_for(rt.redis, clock))

    anyone = client.get(SHOP, headers=headers).json["held_if_opened_now"]
    alices = client.get(f"{SHOP}?person=alice", headers=headers).json["held_if_opened_now"]
    bobs = client.get(f"{SHOP}?person=bob", headers=headers).json["held_if_opened_now"]

    assert anyone["human"]["held"] is False and bobs["human"]["held"] is False
    assert alices["human"] == {
        "held": True,
        "reason": "wip",
        "why": "alice has 2 PRs waiting",
    }
    assert alices["agent"]["reason"] == "wip"  # her agents' PRs count with hers


def test_only_a_person_who_may_see_the_team_or_its_token_reads_the_signal(
    rt, github, clock, app, users
):
    open_pulls(rt, clock, 1)
    open_pulls(rt, clock, 1, repo=DOCS_REPO)
    shop_token = token_for(rt.redis, clock)
    docs_token = token_for(rt.redis, clock, "octo/docs")

    assert_hidden(app.test_client().get(SHOP))  # nobody signed in
    assert sign_in(app, alice(users)).get(SHOP).status_code == 200
    bob = users.add(Person(8, "bob", {42: [(1002, "octo/docs")]}))
    assert_hidden(sign_in(app, bob).get(SHOP))
    client = app.test_client()
    assert_hidden(client.get(SHOP, headers=bearer(docs_token)))  # another team's token
    assert_hidden(client.get(SHOP, headers=bearer(shop_token + "x")))
    assert_hidden(client.get(SHOP, headers=bearer("slt_guessed")))
    assert_hidden(client.get("/api/signal/43/octo%2Fshop", headers=bearer(shop_token)))
    assert client.get(SHOP, headers=bearer(shop_token)).status_code == 200

    store = TokenStore(rt.redis, 42)
    (shop,) = [token for token in store.listed() if token.team == "octo/shop"]
    assert shop.last_used == clock.now()
    assert store.revoke(shop.id) == replace(shop, last_used=None)
    assert_hidden(client.get(SHOP, headers=bearer(shop_token)))


def test_a_token_is_rate_limited_across_workers(rt, github, clock, app, redis, settings):
    open_pulls(rt, clock, 1)
    token = token_for(rt.redis, clock)
    clock.advance(seconds=-clock.now().second)  # the start of a minute
    other_worker = create_app(settings, redis, clock).test_client()
    for n in range(60):
        client = app.test_client() if n % 2 else other_worker
        assert client.get(SHOP, headers=bearer(token)).status_code == 200
    limited = app.test_client().get(SHOP, headers=bearer(token))
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "60"
    clock.advance(minutes=1)
    assert app.test_client().get(SHOP, headers=bearer(token)).status_code == 200


def test_only_a_hash_of_a_token_is_stored(rt, redis, clock):
    open_pulls(rt, clock, 1)
    token = token_for(redis, clock)
    secret = token.removeprefix("slt_").encode()
    for key in redis.keys("*"):
        assert secret not in key
        kind = redis.type(key)
        stored = {
            b"string": lambda k: [redis.get(k)],
            b"hash": lambda k: [part for pair in redis.hgetall(k).items() for part in pair],
        }.get(kind, lambda k: [])(key)
        assert all(secret not in value for value in stored if isinstance(value, bytes))


@pytest.fixture
def cli_env(monkeypatch, redis_server, tmp_path):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    for name in ("STOPLIGHT_URL", "STOPLIGHT_TOKEN", "STOPLIGHT_INSTALLATION"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("cli_env")
def test_gate_exits_0_to_go_1_when_held_and_2_when_it_cannot_tell(rt, github, clock):
    open_pulls(rt, clock, 4)  # yellow
    runner = CliRunner()

    person = runner.invoke(cli.main, ["gate", "--team", "octo/shop"])
    agent = runner.invoke(cli.main, ["gate", "--team", "octo/shop", "--agent"])
    unknown = runner.invoke(cli.main, ["gate", "--team", "octo/nope"])
    unreachable = runner.invoke(
        cli.main,
        ["gate", "--team", "octo/shop", "--url", "http://127.0.0.1:9", "--token", "t",
         "--installation", "42"],
    )  # fmt: skip

    assert (person.exit_code, person.output) == (0, "go: the queue is yellow\n")
    assert (agent.exit_code, agent.output) == (1, "held: agents wait while the queue is yellow\n")
    assert unknown.exit_code == 2 and "no installation has a team 'octo/nope'" in unknown.output
    assert unreachable.exit_code == 2 and "cannot reach http://127.0.0.1:9" in unreachable.output


@pytest.mark.usefixtures("cli_env")
def test_token_create_list_and_revoke(rt, github, clock, redis):
    open_pulls(rt, clock, 1)
    runner = CliRunner()
    made = runner.invoke(cli.main, ["token", "create", "--team", "octo/shop", "--name", "ci"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("slt_") and len(token) > 40

    listed = runner.invoke(cli.main, ["token", "list"])
    (stored,) = TokenStore(redis, 42).listed()
    assert f"{stored.id}  ci  42/octo/shop" in listed.output and token not in listed.output
    revoked = runner.invoke(cli.main, ["token", "revoke", stored.id])
    assert revoked.exit_code == 0 and TokenStore(redis, 42).listed() == []
    assert runner.invoke(cli.main, ["token", "revoke", stored.id]).exit_code == 1


def test_gate_waits_until_the_light_lets_an_agent_in(rt, github, clock):
    open_pulls(rt, clock, 4)  # yellow
    for number in (1, 2):  # two leave review: the light cools down, then turns green
        closed = Pull(number=number, head_sha=f"{number:040x}", state="closed")
        deliver(rt, closed.event("closed", clock.now()))
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock.advance(seconds=seconds)
        run_due_jobs(rt, clock)

    ask = gate_ops.local_signal(rt.redis, 42, "octo/shop", clock, None)
    answer = gate_ops.gate(ask, agent=True, wait=timedelta(minutes=30), clock=clock, sleep=sleep)

    assert answer.enters and answer.line == "go: the queue is green"
    assert sum(pauses) == 600  # the cooldown's ten minutes: asked again as it ended
    assert all(5 <= pause <= 60 for pause in pauses)


def test_gate_gives_up_held_when_the_wait_is_up(rt, github, clock: FakeClock):
    open_pulls(rt, clock, 4)
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock.advance(seconds=seconds)

    ask = gate_ops.local_signal(rt.redis, 42, "octo/shop", clock, None)
    answer = gate_ops.gate(ask, agent=True, wait=timedelta(minutes=3), clock=clock, sleep=sleep)

    assert not answer.enters and answer.line == "held: agents wait while the queue is yellow"
    assert pauses == [60, 60, 60]
