""" "I'll review" over Slack's Socket Mode: slack_sdk's own client against a local websocket
server, real Redis, the fake Slack Web API on 127.0.0.1 and the fake GitHub on `responses`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from pydantic import SecretStr

from stoplight.cli import main
from stoplight.pipeline.socket_mode import SocketMode
from stoplight.state import keys
from tests.conftest import run_jobs
from tests.fakes import FakeClock, Pull
from tests.github_server import serve_fake_github
from tests.slack_fake import FakeSlack
from tests.socket_mode_fake import FakeSocketMode
from tests.test_end_to_end import free_port, post_delivery, serve_env, start_serve, stop, wait_for
from tests.test_slack_claims import (
    CLAIMS_CONFIG,
    INSTALLATION,
    REPO_ID,
    REVIEW_REQUESTS,
    ReviewRequests,
    button_values,
    holders,
    pull_line,
    review_requests_sent,
)
from tests.test_slack_notices import open_pulls

APP_TOKEN = "xapp-1-A0STOPLIGHT-1-0123456789abcdef"
# Quick pings, so a connection that stops answering is given up within a couple of seconds.
PING_SECONDS = 0.5


@pytest.fixture
def socket_server(fake_slack) -> Iterator[FakeSocketMode]:
    server = FakeSocketMode(fake_slack)
    yield server
    server.stop()


@pytest.fixture
def slack_app(rt, fake_slack, github) -> FakeSlack:
    """A Slack app with a bot and Socket Mode, and no signing secret: Slack cannot reach it."""
    github.mock.add_callback(responses.POST, REVIEW_REQUESTS, ReviewRequests())
    rt.settings = rt.settings.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-test"),
            "slack_api_url": fake_slack.api_url,
            "slack_app_token": SecretStr(APP_TOKEN),
            "slack_signing_secret": None,
        }
    )
    github.put_config("octo/shop", CLAIMS_CONFIG)
    return fake_slack


@pytest.fixture
def socket(rt, slack_app, socket_server) -> Iterator[SocketMode]:
    connection = SocketMode(rt, ping_seconds=PING_SECONDS)
    connection.start()
    socket_server.wait_connected()
    yield connection
    connection.close()


def click_envelope(fake_slack: FakeSlack, envelope_id: str, user: str, number: int) -> dict:
    """A `block_actions` click as Socket Mode carries it: the payload is the object that the
    HTTP route gets as a form field."""
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "response_url": fake_slack.response_url,
        "actions": [{"action_id": "claim", "value": f"{INSTALLATION}|{REPO_ID}#{number}"}],
    }
    return {
        "type": "interactive",
        "envelope_id": envelope_id,
        "payload": payload,
        "accepts_response_payload": False,
    }


def click_over_the_socket(rt, server: FakeSocketMode, envelope: dict[str, Any]) -> None:
    server.send(envelope)
    server.wait_acked(envelope["envelope_id"])
    wait_for(lambda: rt.queue.exists(keys.slack_action(envelope["envelope_id"])))
    run_jobs(rt)


def test_with_the_app_token_alone_notices_have_buttons(rt, clock, slack_app):
    open_pulls(rt, clock, 4)
    assert button_values(slack_app.posts()[0]) == [f"42|{REPO_ID}#{n}" for n in range(1, 5)]


def test_a_click_over_the_socket_is_acked_and_claims_as_a_signed_request_does(
    rt, clock, slack_app, github, socket_server, socket
):
    open_pulls(rt, clock, 4)
    click_over_the_socket(rt, socket_server, click_envelope(slack_app, "env-1", "U0BOB", 2))

    assert socket_server.acked("env-1") == [{"envelope_id": "env-1"}]
    assert socket_server.tokens == [f"Bearer {APP_TOKEN}"]  # the app-level token opened it
    assert holders(rt, clock) == {f"{REPO_ID}#2": "bob"}
    assert review_requests_sent(github) == [
        ("/repos/octo/shop/pulls/2/requested_reviewers", {"reviewers": ["bob"]})
    ]
    (update,) = slack_app.updates()
    assert "claimed by <@U0BOB>" in pull_line(update, 2)
    assert slack_app.private_replies() == []


def test_an_envelope_delivered_twice_is_applied_once(
    rt, clock, slack_app, github, socket_server, socket
):
    open_pulls(rt, clock, 4)
    envelope = click_envelope(slack_app, "env-twice", "U0BOB", 2)
    click_over_the_socket(rt, socket_server, envelope)
    socket_server.send(envelope)  # Slack sends it again, as if the ack had been lost
    socket_server.wait_acked("env-twice", times=2)
    assert rt.lanes.shared.count == 0
    run_jobs(rt)

    assert holders(rt, clock) == {f"{REPO_ID}#2": "bob"}  # not toggled back
    assert len(review_requests_sent(github)) == 1
    assert len(slack_app.updates()) == 1


@pytest.mark.parametrize(
    "envelope",
    [
        {"type": "events_api", "envelope_id": "env-event", "payload": {"event": {"type": "x"}}},
        {"type": "slash_commands", "envelope_id": "env-event", "payload": {"command": "/x"}},
        {"type": "interactive", "envelope_id": "env-event", "payload": {"type": "view_submission"}},
        {"type": "interactive", "envelope_id": "env-event", "payload": "not an object"},
        {"type": "interactive", "envelope_id": "env-event"},
    ],
    ids=["event", "a command naming nobody", "another interaction", "odd payload", "no payload"],
)
def test_an_envelope_this_does_not_handle_is_acked_and_changes_nothing(
    rt, slack_app, socket_server, socket, envelope
):
    keys_before = rt.redis.dbsize()
    socket_server.send(envelope)
    socket_server.wait_acked("env-event")
    assert rt.lanes.shared.count == 0
    assert rt.redis.dbsize() == keys_before
    socket_server.send(click_envelope(slack_app, "env-after", "U0BOB", 1))
    socket_server.wait_acked("env-after")  # the connection still serves


def test_a_click_that_names_no_pr_is_acked_and_queues_nothing(rt, slack_app, socket_server, socket):
    envelope = click_envelope(slack_app, "env-bad", "U0BOB", 1)
    envelope["payload"]["actions"][0]["value"] = "nonsense"
    socket_server.send(envelope)
    socket_server.wait_acked("env-bad")
    assert rt.lanes.shared.count == 0


@pytest.mark.parametrize(
    "how",
    ["drop", "lose", "ask_to_reconnect"],
    ids=["socket closed", "connection lost", "refresh asked"],
)
def test_after_slack_drops_the_connection_it_reconnects_and_a_later_click_claims(
    rt, clock, slack_app, github, socket_server, socket, how
):
    open_pulls(rt, clock, 4)
    getattr(socket_server, how)()
    socket_server.wait_connected(sessions=2)
    assert len(socket_server.tokens) == 2  # a fresh address for the new connection

    click_over_the_socket(rt, socket_server, click_envelope(slack_app, "env-later", "U0BOB", 3))
    assert holders(rt, clock) == {f"{REPO_ID}#3": "bob"}
    assert len(review_requests_sent(github)) == 1


def test_closing_closes_the_socket(rt, slack_app, socket_server):
    connection = SocketMode(rt, ping_seconds=PING_SECONDS)
    connection.start()
    socket_server.wait_connected()
    connection.close()
    wait_for(lambda: socket_server.live() == 0)
    assert socket_server.closed_by_client == 1
    assert socket_server.sessions == 1  # and no reconnection after it


def test_closing_before_slack_answered_ends_the_connecting(rt, slack_app, fake_slack):
    connection = SocketMode(rt, ping_seconds=PING_SECONDS)  # apps.connections.open is a 404
    connection.start()
    wait_for(lambda: "apps.connections.open" in str(fake_slack.server.log))
    connection.close()
    assert not connection._opener.is_alive()


def test_a_bot_token_as_the_app_token_is_refused_at_start():
    result = CliRunner().invoke(main, ["status"], env={"SLACK_APP_TOKEN": "xoxb-a-bot-token"})
    assert result.exit_code == 1
    assert "SLACK_APP_TOKEN" in result.output and "app-level token" in result.output
    assert "xoxb-a-bot-token" not in result.output


def test_a_click_over_the_socket_claims_in_the_real_serve_process(
    tmp_path, private_key_pem, fake_slack, socket_server
):
    """`stoplight serve` with SLACK_APP_TOKEN and no signing secret: the notice has buttons,
    a click over the socket requests the reviewer and edits the notice, SIGTERM closes it."""
    port = free_port()
    with serve_fake_github() as (github_host, github):
        github.files[("octo/shop", ".github/stoplight.yml")] = CLAIMS_CONFIG
        env = serve_env(
            private_key_pem, github_host, port, tmp_path,
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_API_URL=fake_slack.api_url,
            SLACK_APP_TOKEN=APP_TOKEN,
        )  # fmt: skip
        process = start_serve(env, tmp_path)
        try:
            socket_server.wait_connected()
            clock = FakeClock(datetime.now(UTC))
            url = f"http://127.0.0.1:{port}"
            for n in range(1, 5):
                pull = Pull(number=n, head_sha=f"{n}" * 40)
                assert (
                    post_delivery(url, pull.event("opened", clock.now()), f"sm-{n}").status_code
                    == 202
                )
            wait_for(lambda: fake_slack.posts())
            (notice,) = fake_slack.posts()
            assert button_values(notice) == [f"42|{REPO_ID}#{n}" for n in range(1, 5)]

            socket_server.send(click_envelope(fake_slack, "env-serve", "U0BOB", 2))
            socket_server.wait_acked("env-serve")
            wait_for(lambda: fake_slack.updates())
            requested = [
                (path, body) for _, path, body in github.writes if "requested_reviewers" in path
            ]
            assert requested == [
                ("/repos/octo/shop/pulls/2/requested_reviewers", {"reviewers": ["bob"]})
            ]
            (update,) = fake_slack.updates()
            assert "claimed by <@U0BOB>" in pull_line(update, 2)
        finally:
            stop(process)
    wait_for(lambda: socket_server.live() == 0)
    assert process.returncode == 0
    assert socket_server.closed_by_client == 1 and socket_server.sessions == 1
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log
    assert APP_TOKEN not in log


def test_stoplight_over_the_socket_is_answered_in_the_acknowledgement(
    rt, clock, slack_app, socket_server, socket
):
    open_pulls(rt, clock, 2)
    payload = {
        "command": "/stoplight",
        "text": "",
        "user_id": "U0BOB",
        "team_id": "T0SHOP",
        "channel_id": "C0GENERAL",
        "channel_name": "general",
        "response_url": slack_app.response_url,
    }
    socket_server.send({"type": "slash_commands", "envelope_id": "env-cmd", "payload": payload})
    socket_server.wait_acked("env-cmd")

    (ack,) = socket_server.acked("env-cmd")
    assert ack["payload"]["response_type"] == "ephemeral"
    lines = ack["payload"]["text"].split("\n")
    assert lines[0].startswith("🟢 *shop*: green. 2 waiting")
    assert lines[1] == "*Next for you to review* (@bob):"
