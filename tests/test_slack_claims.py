""" "I'll review" from Slack: signed clicks on the Flask test client, real Redis, the fake Slack
on 127.0.0.1 and the fake GitHub on `responses`."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import responses
from github import GithubException
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from stoplight.config import schema
from stoplight.config.repos import RepoConfigs
from stoplight.core.light import Level
from stoplight.pipeline import claims
from stoplight.pipeline.claims import Click, queue_click
from stoplight.state.claims import ClaimStore
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import load_team_view
from stoplight.web import create_app
from tests.conftest import api_root, deliver, run_jobs
from tests.slack_fake import FakeSlack
from tests.test_slack_notices import SHOP_TEAM, open_pulls

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
INSTALLATION = 42
REPO_ID = 1001
CLAIMS_CONFIG = """
teams:
  - name: shop
    slack_channel: "#shop-reviews"
    slack_users: {bob: U0BOB, carol: U0CAROL}
claims: {expire: 4h, max_per_reviewer: 2}
"""
REVIEW_REQUESTS = re.compile(rf"{api_root()}/repos/[^/]+/[^/]+/pulls/(\d+)/requested_reviewers")


class ReviewRequests:
    """GitHub's requested_reviewers endpoint; `refuse` makes it answer 422 as GitHub does for
    a PR's own author or someone who is not a collaborator."""

    def __init__(self) -> None:
        self.refuse = False
        self.missing = False  # a 404: GitHub's trouble, not the clicker's

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        if self.missing:
            return 404, {}, json.dumps({"message": "Not Found"})
        if self.refuse:
            message = "Reviews may only be requested from collaborators."
            body = {"message": "Validation Failed", "errors": [message]}
            return 422, {}, json.dumps(body)
        return 201, {}, json.dumps({"number": int(REVIEW_REQUESTS.search(request.url)[1])})


@pytest.fixture
def review_requests(github) -> ReviewRequests:
    answer = ReviewRequests()
    github.mock.add_callback(responses.POST, REVIEW_REQUESTS, answer)
    return answer


@pytest.fixture
def slack_app(rt, fake_slack, github, review_requests) -> FakeSlack:
    rt.settings = rt.settings.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-test"),
            "slack_api_url": fake_slack.api_url,
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
        }
    )
    github.put_config("octo/shop", CLAIMS_CONFIG)
    return fake_slack


@pytest.fixture
def client(rt, clock, slack_app):
    return create_app(rt.settings, rt.redis, clock, rt.queue).test_client()


def button_values(message: dict[str, Any]) -> list[str]:
    return [
        block["accessory"]["value"]
        for block in message["blocks"]
        if block.get("accessory", {}).get("action_id") == "claim"
    ]


def click_body(fake_slack: FakeSlack, user: str, number: int) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "response_url": fake_slack.response_url,
        "actions": [{"action_id": "claim", "value": f"{INSTALLATION}|{REPO_ID}#{number}"}],
    }
    return urlencode({"payload": json.dumps(payload)})


def post_click(client, clock, body: str, *, secret: str = SIGNING_SECRET, age: int = 0):
    timestamp = str(int(clock.now().timestamp()) - age)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return client.post(
        "/slack/actions",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature},
    )


def click(rt, client, clock, fake_slack: FakeSlack, user: str, number: int) -> None:
    clock.advance(seconds=1)  # each of Slack's requests has its own moment, and signature
    response = post_click(client, clock, click_body(fake_slack, user, number))
    assert response.status_code == 200
    run_jobs(rt)


def review_requests_sent(github) -> list[tuple[str, Any]]:
    return [(path, body) for method, path, body in github.writes() if "requested_reviewers" in path]


def holders(rt, clock) -> dict[str, str]:
    return ClaimStore(rt.redis, INSTALLATION).holders(clock.now())


def pull_line(message: dict[str, Any], number: int) -> str:
    texts = [block["text"]["text"] for block in message["blocks"] if "text" in block]
    return next(text for text in texts if f"|octo/shop#{number}>" in text)


def test_each_pr_of_a_yellow_notice_has_an_ill_review_button(rt, clock, client, slack_app):
    open_pulls(rt, clock, 4)
    (notice,) = slack_app.posts()
    assert button_values(notice) == [f"42|{REPO_ID}#{n}" for n in range(1, 5)]
    assert all(
        block["accessory"]["text"]["text"] == "I'll review"
        for block in notice["blocks"]
        if "accessory" in block
    )


def test_without_the_signing_secret_notices_have_no_buttons_and_the_route_is_404(
    rt, clock, redis, slack_app
):
    rt.settings = rt.settings.model_copy(update={"slack_signing_secret": None})
    open_pulls(rt, clock, 4)
    assert button_values(slack_app.posts()[0]) == []
    response = create_app(rt.settings, redis, clock).test_client().post("/slack/actions")
    assert response.status_code == 404


def test_a_click_claims_requests_the_reviewer_once_and_edits_the_notice_once(
    rt, clock, client, slack_app, github
):
    open_pulls(rt, clock, 4)
    click(rt, client, clock, slack_app, "U0BOB", 2)

    assert holders(rt, clock) == {f"{REPO_ID}#2": "bob"}
    assert review_requests_sent(github) == [
        ("/repos/octo/shop/pulls/2/requested_reviewers", {"reviewers": ["bob"]})
    ]
    (update,) = slack_app.updates()
    assert update["ts"] == "1700000000.000001"  # the yellow notice, edited in place
    assert "claimed by <@U0BOB>" in pull_line(update, 2)
    assert "claimed by" not in pull_line(update, 1)
    assert slack_app.private_replies() == []


def test_a_second_click_by_the_same_person_unclaims(rt, clock, client, slack_app, github):
    open_pulls(rt, clock, 4)
    click(rt, client, clock, slack_app, "U0BOB", 2)
    clock.advance(seconds=30)
    click(rt, client, clock, slack_app, "U0BOB", 2)

    assert holders(rt, clock) == {}
    assert len(review_requests_sent(github)) == 1
    first, second = slack_app.updates()
    assert "claimed by" in pull_line(first, 2)
    assert "claimed by" not in pull_line(second, 2)


def test_a_claim_held_by_someone_else_is_not_taken_over(rt, clock, client, slack_app, github):
    open_pulls(rt, clock, 4)
    click(rt, client, clock, slack_app, "U0BOB", 2)
    click(rt, client, clock, slack_app, "U0CAROL", 2)
    assert holders(rt, clock) == {f"{REPO_ID}#2": "bob"}
    (reply,) = slack_app.private_replies()
    assert reply["text"] == "octo/shop#2 is claimed by bob already."
    assert reply["response_type"] == "ephemeral"
    assert len(review_requests_sent(github)) == 1


def test_a_claim_lapses_after_claims_expire_on_the_fake_clock(rt, clock, client, slack_app):
    open_pulls(rt, clock, 4)
    click(rt, client, clock, slack_app, "U0BOB", 2)
    clock.advance(hours=3, minutes=59)
    assert holders(rt, clock) == {f"{REPO_ID}#2": "bob"}
    clock.advance(minutes=1)
    assert holders(rt, clock) == {}
    view = load_team_view(
        rt.redis,
        INSTALLATION,
        SHOP_TEAM,
        clock.now(),
        RepoConfigs(rt.redis, INSTALLATION).team(SHOP_TEAM),
    )
    assert view is not None
    assert [pull["claimed_by"] for pull in view.as_json()["waiting_pulls"]] == [None] * 4


def test_a_person_holds_at_most_max_per_reviewer_claims(rt, clock, client, slack_app, github):
    open_pulls(rt, clock, 4)
    for number in (1, 2, 3):
        click(rt, client, clock, slack_app, "U0BOB", number)
    assert holders(rt, clock) == {f"{REPO_ID}#1": "bob", f"{REPO_ID}#2": "bob"}
    assert len(review_requests_sent(github)) == 2
    (reply,) = slack_app.private_replies()
    assert reply["text"].startswith("You hold 2 claims already")

    click(rt, client, clock, slack_app, "U0BOB", 1)  # letting one go frees a place
    click(rt, client, clock, slack_app, "U0BOB", 3)
    assert holders(rt, clock) == {f"{REPO_ID}#2": "bob", f"{REPO_ID}#3": "bob"}


def test_githubs_422_is_told_privately_and_the_claim_undone(
    rt, clock, client, slack_app, github, review_requests
):
    open_pulls(rt, clock, 4)
    review_requests.refuse = True
    click(rt, client, clock, slack_app, "U0BOB", 2)

    assert holders(rt, clock) == {}
    (reply,) = slack_app.private_replies()
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert reply["text"] == (
        "GitHub would not request your review of octo/shop#2: Validation Failed; "
        "Reviews may only be requested from collaborators."
    )
    assert slack_app.updates() == []  # the notice never showed the claim


def test_a_click_job_run_again_after_githubs_failure_asks_once_and_keeps_the_claim(
    rt, clock, client, slack_app, github, review_requests
):
    open_pulls(rt, clock, 4)
    click = Click(INSTALLATION, f"{REPO_ID}#2", "U0BOB", slack_app.response_url)
    queue_click(rt.lanes, click, "c1")
    review_requests.missing = True
    with pytest.raises(GithubException):
        claims.answer_slack_click(rt, "c1", INSTALLATION, click.pull_key)
    review_requests.missing = False
    claims.answer_slack_click(rt, "c1", INSTALLATION, click.pull_key)  # the job's retry
    claims.answer_slack_click(rt, "c1", INSTALLATION, click.pull_key)  # and a redelivered one

    assert holders(rt, clock) == {f"{REPO_ID}#2": "bob"}  # not toggled back by the retries
    # The request GitHub failed and the one that went through; the redelivered job asked none.
    assert len(review_requests_sent(github)) == 2
    assert slack_app.private_replies() == []


def test_an_unknown_person_is_told_privately_to_add_themselves_to_slack_users(
    rt, clock, client, slack_app, github
):
    open_pulls(rt, clock, 4)
    click(rt, client, clock, slack_app, "U0STRANGER", 2)
    (reply,) = slack_app.private_replies()
    assert "`slack_users`" in reply["text"] and "U0STRANGER" in reply["text"]
    assert holders(rt, clock) == {} and review_requests_sent(github) == []


def test_a_review_by_the_claimer_ends_the_claim(rt, clock, client, slack_app):
    pulls = open_pulls(rt, clock, 4)
    click(rt, client, clock, slack_app, "U0BOB", 2)
    deliver(rt, pulls[1].review("carol", "commented", clock.now()))
    assert holders(rt, clock) == {f"{REPO_ID}#2": "bob"}  # someone else's review leaves it
    deliver(rt, pulls[1].review("bob", "commented", clock.now()))
    assert holders(rt, clock) == {}


def test_swarm_labels_go_to_unclaimed_prs_first(rt, clock, client, slack_app, github):
    open_pulls(rt, clock, 8)
    assert QueueStore(rt.redis, INSTALLATION).light(SHOP_TEAM).level is Level.RED
    swarmed = {n for n in range(1, 9) if "stoplight:swarm" in github.carried_labels("octo/shop", n)}
    assert swarmed == {1, 2, 3}

    click(rt, client, clock, slack_app, "U0BOB", 1)
    swarmed = {n for n in range(1, 9) if "stoplight:swarm" in github.carried_labels("octo/shop", n)}
    assert swarmed == {2, 3, 4}
    view = load_team_view(
        rt.redis,
        INSTALLATION,
        SHOP_TEAM,
        clock.now(),
        RepoConfigs(rt.redis, INSTALLATION).team(SHOP_TEAM),
    )
    assert view is not None
    shown = [(p["number"], p["swarm"], p["claimed_by"]) for p in view.as_json()["waiting_pulls"]]
    assert shown == [(1, False, "bob"), (2, True, None), (3, True, None), (4, True, None),
                     (5, False, None)]  # fmt: skip


def test_a_good_signature_is_answered_200_and_queues_one_job(rt, clock, client, slack_app):
    response = post_click(client, clock, click_body(slack_app, "U0BOB", 1))
    assert response.status_code == 200
    assert rt.lanes.shared.count == 1


@pytest.mark.parametrize(
    "secret, age",
    [("not-the-secret", 0), (SIGNING_SECRET, 5 * 60 + 1)],
    ids=["wrong signature", "old timestamp"],
)
def test_a_bad_or_old_signature_is_refused_and_changes_nothing(
    rt, clock, client, slack_app, secret, age
):
    keys_before = rt.redis.dbsize()
    response = post_click(client, clock, click_body(slack_app, "U0BOB", 1), secret=secret, age=age)
    assert response.status_code == 401
    assert rt.lanes.shared.count == 0
    assert rt.redis.dbsize() == keys_before


def test_a_replayed_request_is_refused_and_queues_nothing(rt, clock, client, slack_app, github):
    open_pulls(rt, clock, 4)
    body = click_body(slack_app, "U0BOB", 2)
    assert post_click(client, clock, body).status_code == 200
    run_jobs(rt)
    clock.advance(seconds=10)  # still within the signature's five minutes
    timestamp = str(int(clock.now().timestamp()) - 10)
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body)
    replay = client.post(
        "/slack/actions",
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature},
    )
    assert replay.status_code == 401
    assert rt.lanes.shared.count == 0
    assert holders(rt, clock) == {f"{REPO_ID}#2": "bob"}  # not toggled back by the replay


@pytest.mark.parametrize(
    "text, expected",
    [
        ("claims: {max_per_reviewer: 0}", "claims.max_per_reviewer: must be 1 or more"),
        ("claims: {expire: 0s}", "claims.expire: must be longer than 0s"),
        ("claims: {per_person: 3}", "claims.per_person: unknown key"),
    ],
)
def test_claims_configuration_errors_name_the_key(text, expected):
    found = schema.load(text)
    assert isinstance(found, schema.Invalid)
    assert str(found.errors[0]).startswith(expected)


def test_claims_default_to_four_hours_and_two_per_reviewer():
    settings = schema.DEFAULT_CONFIG.team_for("octo/shop")
    assert isinstance(settings, schema.TeamSettings)
    assert (settings.claims.expire, settings.claims.max_per_reviewer) == (timedelta(hours=4), 2)


def test_a_click_queued_again_under_its_id_queues_no_second_job(rt, slack_app):
    click = Click(INSTALLATION, f"{REPO_ID}#2", "U0BOB", slack_app.response_url)
    assert queue_click(rt.lanes, click, "c1") is True
    assert queue_click(rt.lanes, click, "c1") is False
    assert rt.lanes.shared.count == 1
