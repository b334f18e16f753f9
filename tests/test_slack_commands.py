"""`/stoplight` and linking a Slack person to GitHub: signed commands on the Flask test client,
real Redis, the fake Slack on 127.0.0.1, the fake GitHub (its OAuth flow included) on
`responses`, the fake clock."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import responses
from pydantic import SecretStr
from redis import Redis
from slack_sdk.signature import SignatureVerifier

from stoplight.state.claims import ClaimStore
from stoplight.state.slack_links import SlackLinks, SlackPerson
from stoplight.web import create_app
from tests.conftest import api_root, deliver, run_jobs
from tests.fakes import Pull, Repo
from tests.github_server import serve_fake_github
from tests.github_users import FakeGitHubUsers, Person
from tests.test_end_to_end import _answers, free_port, serve_env, start_serve, stop, wait_for
from tests.test_pages import sign_in
from tests.test_slack_claims import (
    CLAIMS_CONFIG,
    REVIEW_REQUESTS,
    SIGNING_SECRET,
    ReviewRequests,
    click,
    holders,
)
from tests.test_slack_notices import open_pulls

DOCS = Repo(id=1002, full_name="octo/docs", installation_id=42)
PERMISSION = re.compile(rf"{api_root()}/repos/([^/]+/[^/]+)/collaborators/([^/]+)/permission")
WORKSPACE = "T0OCTO"


@pytest.fixture
def readers(github) -> dict[tuple[str, str], str]:
    """GitHub's word on who may read which repository: (owner/name, login) -> permission."""
    granted: dict[tuple[str, str], str] = {}

    def permission(request):
        repo, login = PERMISSION.search(request.url).groups()
        body = {"permission": granted.get((repo, login), "none"), "user": {"login": login}}
        return 200, {}, json.dumps(body)

    github.mock.add_callback(responses.GET, PERMISSION, permission)
    return granted


@pytest.fixture
def slack_app(rt, fake_slack, github, readers):
    github.mock.add_callback(responses.POST, REVIEW_REQUESTS, ReviewRequests())
    rt.settings = rt.settings.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-test"),
            "slack_api_url": fake_slack.api_url,
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "github_client_id": "Iv1.stoplight",
            "github_client_secret": SecretStr("client-secret"),
            "session_secret": SecretStr("a-session-secret-of-enough-length"),
        }
    )
    github.put_config("octo/shop", CLAIMS_CONFIG)
    return fake_slack


@pytest.fixture
def app(rt, clock, slack_app):
    return create_app(rt.settings, rt.redis, clock, rt.queue)


@pytest.fixture
def client(app):
    return app.test_client()


def command_body(fake_slack, user: str, text: str = "", channel: str = "general") -> str:
    return urlencode(
        {
            "command": "/stoplight",
            "text": text,
            "user_id": user,
            "team_id": WORKSPACE,
            "channel_id": "C0GENERAL",
            "channel_name": channel,
            "response_url": fake_slack.response_url,
        }
    )


def post_command(client, clock, body: str, *, secret: str = SIGNING_SECRET, age: int = 0):
    timestamp = str(int(clock.now().timestamp()) - age)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return client.post(
        "/slack/commands",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature},
    )


def ask(client, clock, fake_slack, user: str, text: str = "") -> dict | None:
    """The answer to one command: the HTTP answer, or None when a job will answer."""
    clock.advance(seconds=1)
    response = post_command(client, clock, command_body(fake_slack, user, text))
    assert response.status_code == 200, response.text
    return response.get_json(silent=True)


def test_a_listed_person_gets_their_teams_light_next_prs_and_claims(rt, clock, client, slack_app):
    open_pulls(rt, clock, 5)
    deliver(rt, Pull(number=6, head_sha="6" * 40, author="bob").event("opened", clock.now()))
    click(rt, client, clock, slack_app, "U0CAROL", 1)
    click(rt, client, clock, slack_app, "U0BOB", 2)

    answer = ask(client, clock, slack_app, "U0BOB")
    assert answer["response_type"] == "ephemeral"
    lines = answer["text"].split("\n")
    assert lines[0] == (
        "🟡 *shop*: yellow. 6 waiting, oldest 25m, 300 lines: 6 PRs waiting (≥ 4 is yellow)."
    )
    assert lines[1] == "*Next for you to review* (@bob):"
    listed = [line for line in lines if line.startswith("• ")]
    # #1 claimed by carol, #2 his own claim, #6 his own PR: #3, #4, #5 are next.
    assert [re.search(r"octo/shop#(\d+)>", line)[1] for line in listed] == ["3", "4", "5", "2"]
    assert "waiting" in listed[0] and "size/" in listed[0]
    assert lines[lines.index("*Your claims:*") + 1].startswith(
        "• <https://github.com/octo/shop/pull/2|octo/shop#2>"
    )


def test_an_unknown_person_gets_a_link_and_help_lists_the_forms(rt, clock, client, slack_app):
    open_pulls(rt, clock, 2)
    answer = ask(client, clock, slack_app, "U0STRANGER")
    assert answer["response_type"] == "ephemeral"
    assert "<https://stoplight.example/slack/link/" in answer["text"]
    assert "U0STRANGER" in answer["text"]  # and how to list themselves in slack_users
    help_text = ask(client, clock, slack_app, "U0STRANGER", "help")["text"]
    for form in ("`/stoplight`", "`/stoplight TEAM`", "`/stoplight unlink`", "`/stoplight help`"):
        assert form in help_text


def test_another_team_is_answered_only_when_github_says_they_may_read_it(
    rt, clock, client, slack_app, readers
):
    open_pulls(rt, clock, 2)
    deliver(rt, Pull(repo=DOCS, number=7, title="Docs plan").event("opened", clock.now()))

    assert ask(client, clock, slack_app, "U0BOB", "octo/docs") is None  # a job answers
    assert ask(client, clock, slack_app, "U0BOB", "nonexistent") is None
    run_jobs(rt)
    hidden, missing = (reply["text"] for reply in slack_app.private_replies())
    assert "Docs plan" not in hidden
    assert hidden.replace("octo/docs", "X") == missing.replace("nonexistent", "X")

    readers[("octo/docs", "bob")] = "read"
    rt.redis.delete(*rt.redis.keys("stoplight:i:*:reader:*"))  # GitHub's cached word lapses
    assert ask(client, clock, slack_app, "U0BOB", "octo/docs") is None
    run_jobs(rt)
    allowed = slack_app.private_replies()[-1]
    assert allowed["response_type"] == "ephemeral"
    assert "Docs plan" in allowed["text"]


@pytest.mark.parametrize(
    "secret, age",
    [("not-the-secret", 0), (SIGNING_SECRET, 5 * 60 + 1)],
    ids=["wrong signature", "old timestamp"],
)
def test_a_bad_or_old_command_is_refused_and_changes_nothing(
    rt, clock, client, slack_app, secret, age
):
    keys_before = rt.redis.dbsize()
    body = command_body(slack_app, "U0STRANGER")
    response = post_command(client, clock, body, secret=secret, age=age)
    assert response.status_code == 401
    assert rt.redis.dbsize() == keys_before
    assert rt.lanes.shared.count == 0


def test_a_replayed_command_is_refused_and_issues_no_second_link(rt, clock, client, slack_app):
    body = command_body(slack_app, "U0STRANGER")
    assert post_command(client, clock, body).status_code == 200
    offers = rt.redis.keys("stoplight:slack:link-offer:*")
    assert len(offers) == 1
    assert post_command(client, clock, body).status_code == 401
    assert rt.redis.keys("stoplight:slack:link-offer:*") == offers


def link_path(text: str) -> str:
    found = re.search(r"<(https://stoplight\.example(/slack/link/[^|>]+))\|", text)
    assert found is not None, text
    return found[2]


@pytest.fixture
def dave(github) -> Person:
    return FakeGitHubUsers(github.mock).add(Person(9, "dave", {42: [(1001, "octo/shop")]}))


def test_a_link_signs_in_stores_the_pair_then_claims_work_until_unlinked(
    rt, clock, app, client, slack_app, dave, github
):
    open_pulls(rt, clock, 4)
    path = link_path(ask(client, clock, slack_app, "U0DAVE")["text"])

    browser = app.test_client()
    assert browser.get(path).status_code == 302  # to sign-in, which brings them back
    browser = sign_in(app, dave, next_page=path)
    asked = browser.get(path)  # opening the link asks first, and links nothing yet
    assert asked.status_code == 200 and "Link Slack member U0DAVE to @dave?" in asked.text
    assert SlackLinks(rt.redis).login(SlackPerson(WORKSPACE, "U0DAVE")) is None
    back = browser.post(path)
    assert back.status_code == 302 and urlsplit(back.headers["Location"]).path == "/slack/linked"
    page = browser.get("/slack/linked")
    assert "Slack user linked to @dave" in page.text and "Unlink" in page.text
    assert SlackLinks(rt.redis).login(SlackPerson(WORKSPACE, "U0DAVE")) == "dave"
    assert browser.get(path).status_code == 404  # used: once only
    assert browser.post(path).status_code == 404

    click_as(rt, client, clock, slack_app, "U0DAVE", 2)
    assert holders(rt, clock) == {"1001#2": "dave"}

    assert browser.post("/slack/unlink").status_code == 200
    assert SlackLinks(rt.redis).login(SlackPerson(WORKSPACE, "U0DAVE")) is None
    ClaimStore(rt.redis, 42).release("1001#2", "dave")
    click_as(rt, client, clock, slack_app, "U0DAVE", 3)
    assert holders(rt, clock) == {}
    assert "/slack/link/" in slack_app.private_replies()[-1]["text"]


def test_a_link_posted_without_a_session_links_nothing(rt, clock, app, client, slack_app, dave):
    """Another site's form posting to the link: the SameSite=Lax cookie stays behind."""
    token = SlackLinks(rt.redis).offer(SlackPerson(WORKSPACE, "U0MALLORY"))
    assert app.test_client().post(f"/slack/link/{token}").status_code == 404
    assert SlackLinks(rt.redis).login(SlackPerson(WORKSPACE, "U0MALLORY")) is None
    browser = sign_in(app, dave)
    assert browser.post(f"/slack/link/{token}").status_code == 302  # the token still works
    assert SlackLinks(rt.redis).login(SlackPerson(WORKSPACE, "U0MALLORY")) == "dave"


def click_as(rt, client, clock, fake_slack, user: str, number: int) -> None:
    """A click from the linking workspace (Slack names it in every payload)."""
    from tests.test_slack_claims import INSTALLATION, REPO_ID, post_click

    payload = {
        "type": "block_actions",
        "team": {"id": WORKSPACE},
        "user": {"id": user},
        "response_url": fake_slack.response_url,
        "actions": [{"action_id": "claim", "value": f"{INSTALLATION}|{REPO_ID}#{number}"}],
    }
    clock.advance(seconds=1)
    response = post_click(client, clock, urlencode({"payload": json.dumps(payload)}))
    assert response.status_code == 200
    run_jobs(rt)


def test_slash_unlink_forgets_the_pair(rt, clock, client, slack_app):
    SlackLinks(rt.redis).redeem(
        SlackLinks(rt.redis).offer(SlackPerson(WORKSPACE, "U0DAVE")), "dave"
    )
    assert ask(client, clock, slack_app, "U0DAVE", "unlink")["text"].startswith(
        "Unlinked: Stoplight no longer takes you for @dave."
    )
    assert SlackLinks(rt.redis).login(SlackPerson(WORKSPACE, "U0DAVE")) is None


def test_an_expired_or_made_up_link_is_a_404_that_names_nothing(
    rt, clock, app, client, slack_app, dave
):
    token = SlackLinks(rt.redis).offer(SlackPerson(WORKSPACE, "U0DAVE"))
    browser = sign_in(app, dave)
    rt.redis.delete(*rt.redis.keys("stoplight:slack:link-offer:*"))  # its ten minutes passed
    for path in (f"/slack/link/{token}", "/slack/link/made-up"):
        response = browser.get(path)
        assert response.status_code == 404
        assert "U0DAVE" not in response.text and WORKSPACE not in response.text


@pytest.fixture
def served_with_slack(tmp_path, private_key_pem):
    """`stoplight serve` with Slack's signing secret, on the real clock, and its Redis."""
    with serve_fake_github() as (host, _):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = serve_env(
            private_key_pem, host, port, tmp_path, BASE_URL=url, SLACK_SIGNING_SECRET=SIGNING_SECRET
        )
        process = start_serve(env, tmp_path)
        try:
            wait_for(lambda: _answers(f"{url}/healthz"))
            with Redis(unix_socket_path=str(tmp_path / "data" / "redis" / "redis.sock")) as redis:
                yield url, redis
        finally:
            stop(process)
        assert "Traceback" not in (tmp_path / "serve.log").read_text()


def signed_post(url: str, body: str, timestamp: int, secret: str = SIGNING_SECRET):
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    return requests.post(
        f"{url}/slack/commands",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature,
        },
        timeout=5,
    )


def test_the_served_app_answers_a_signed_command_and_refuses_forged_old_and_replayed_ones(
    served_with_slack,
):
    url, redis = served_with_slack
    body = urlencode(
        {"command": "/stoplight", "text": "help", "user_id": "U0BOB", "team_id": WORKSPACE,
         "response_url": "http://127.0.0.1:9/unused"}
    )  # fmt: skip
    now = int(time.time())
    good = signed_post(url, body, now)
    assert good.status_code == 200
    assert good.json()["response_type"] == "ephemeral"
    assert "`/stoplight TEAM`" in good.json()["text"]
    seen = redis.keys("stoplight:slack:seen:*")
    assert len(seen) == 1

    assert signed_post(url, body, now, secret="not-the-secret").status_code == 401
    assert signed_post(url, body, now - 5 * 60 - 1).status_code == 401
    assert signed_post(url, body, now).status_code == 401  # the good one, again
    assert redis.keys("stoplight:slack:seen:*") == seen  # nothing more recorded
