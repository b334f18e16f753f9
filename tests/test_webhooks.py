"""The webhook endpoint: verify, record, enqueue; refuse everything else clearly."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY
from redis import Redis

from stoplight.settings import Settings
from stoplight.state import keys
from stoplight.transport.lanes import Lanes
from stoplight.web import create_app, web_redis
from stoplight.web.setup import setup_link
from stoplight.web.webhooks import signature_matches
from tests.conftest import WEBHOOK_SECRET
from tests.fakes import Pull, body_of, sign

PATH = "/api/github/webhooks"


def test_githubs_documented_test_vector():
    # https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature_matches(b"It's a Secret to Everybody", b"Hello, World!", signature)
    assert not signature_matches(b"It's a Secret to Everybody", b"Hello, World?", signature)
    assert not signature_matches(b"another secret", b"Hello, World!", signature)
    assert not signature_matches(b"It's a Secret to Everybody", b"Hello, World!", None)
    assert not signature_matches(b"It's a Secret to Everybody", b"Hello, World!", signature[7:])


@pytest.fixture
def client(settings: Settings, redis: Redis):
    return create_app(settings, redis).test_client()


def post(client, payload, *, event="pull_request", delivery="d-1", signature=None, body=None):
    body = body if body is not None else body_of(payload)
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
    if signature is not False:
        headers["X-Hub-Signature-256"] = signature or sign(WEBHOOK_SECRET, body)
    if event is None:
        del headers["X-GitHub-Event"]
    return client.post(PATH, data=body, headers=headers, content_type="application/json")


def queued_jobs(redis: Redis) -> int:
    """Deliveries waiting in the lanes' streams."""
    return sum(Lanes.on(redis).waiting_deliveries().values())


def opened(clock_moment):
    return Pull().event("opened", clock_moment)[1]


def test_signed_delivery_is_recorded_and_queued(client, redis, clock):
    response = post(client, opened(clock.now()))
    assert response.status_code == 202
    assert response.json == {"status": "queued", "delivery": "d-1"}
    assert queued_jobs(redis) == 1
    assert redis.hget(keys.delivery("d-1"), "event") == b"pull_request"


def test_repeated_delivery_id_is_acknowledged_and_records_nothing(client, redis, clock):
    post(client, opened(clock.now()))
    first = redis.hgetall(keys.delivery("d-1"))
    response = post(client, {**opened(clock.now()), "action": "closed"})
    assert response.status_code == 200
    assert response.json["status"] == "duplicate"
    assert redis.hgetall(keys.delivery("d-1")) == first


@pytest.mark.parametrize("signature", [False, "sha256=" + "0" * 64, "sha1=abc", "garbage"])
def test_unsigned_or_wrongly_signed_delivery_changes_nothing(client, redis, clock, signature):
    response = post(client, opened(clock.now()), signature=signature)
    assert response.status_code == 401
    assert "signature" in response.json["error"]
    assert redis.dbsize() == 0


def test_signature_over_a_different_body_is_refused(client, redis, clock):
    payload = opened(clock.now())
    response = post(client, payload, signature=sign(WEBHOOK_SECRET, b"{}"))
    assert response.status_code == 401
    assert redis.dbsize() == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"{not json", "not JSON"), (b"payload=%7B%7D", "not JSON"), (b"[1, 2]", "not a JSON object")],
)
def test_body_that_is_not_a_json_object_gets_400(client, redis, body, reason):
    response = post(client, None, body=body)
    assert response.status_code == 400
    assert reason in response.json["error"]
    assert redis.dbsize() == 0


def test_missing_event_or_delivery_header_gets_400(client, redis, clock):
    assert post(client, opened(clock.now()), event=None).status_code == 400
    assert post(client, opened(clock.now()), delivery="").status_code == 400
    assert post(client, opened(clock.now()), delivery="../../etc").status_code == 400
    assert redis.dbsize() == 0


def test_ping_is_answered(client, redis):
    response = post(client, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert response.status_code == 200
    assert response.json["status"] == "pong"
    assert redis.dbsize() == 0


def test_unused_event_is_acknowledged_and_dropped(client, redis):
    response = post(client, {"action": "created"}, event="star")
    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert redis.dbsize() == 0


def test_redis_unreachable_answers_503_and_marks_nothing_seen(settings, redis, clock):
    dead = web_redis("unix:///nonexistent/redis.sock")
    response = post(create_app(settings, dead).test_client(), opened(clock.now()))
    assert response.status_code == 503
    assert "redelivered" in response.json["error"]
    # The redelivery, once Redis is back, is processed as new.
    assert post(create_app(settings, redis).test_client(), opened(clock.now())).status_code == 202


def test_a_full_redis_answers_503_and_loses_no_accepted_delivery(client, redis, clock, caplog):
    answers: dict[str, int] = {}
    used = redis.info("memory")["used_memory"]
    redis.config_set("maxmemory-policy", "noeviction")
    redis.config_set("maxmemory", used + 300_000)
    try:
        for number in range(5000):
            delivery = f"full-{number}"
            answers[delivery] = post(client, opened(clock.now()), delivery=delivery).status_code
            if answers[delivery] != 202:
                break
        refused = next(reversed(answers))
        assert answers[refused] == 503
        assert "Redis is full" in caplog.text
        full = {"event": "pull_request", "outcome": "storage_full"}
        assert REGISTRY.get_sample_value("stoplight_deliveries_total", full) >= 1
    finally:
        redis.config_set("maxmemory", 0)
    # Every delivery answered 202 waits in a lane; the refused one was not marked seen, so
    # GitHub's redelivery of it is taken.
    assert queued_jobs(redis) == len(answers) - 1 > 10
    assert not redis.exists(keys.delivery(refused))
    assert post(client, opened(clock.now()), delivery=refused).status_code == 202


def test_without_a_webhook_secret_deliveries_are_refused(settings, redis, clock):
    unconfigured = settings.model_copy(update={"webhook_secret": None})
    client = create_app(unconfigured, redis).test_client()
    before = redis.keys("*")  # the setup link's token, made at start
    response = post(client, opened(clock.now()))
    assert response.status_code == 503
    assert "WEBHOOK_SECRET" in response.json["error"]
    assert redis.keys("*") == before == [keys.SETUP_TOKEN.encode()]


def test_custom_webhook_path(settings, redis, clock):
    app = create_app(settings.model_copy(update={"webhook_path": "/hooks"}), redis).test_client()
    body = body_of(opened(clock.now()))
    headers = {
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "d-9",
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
    }
    assert app.post("/hooks", data=body, headers=headers).status_code == 202
    assert app.post(PATH, data=body, headers=headers).status_code == 404


def test_health_reports_redis(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_the_team_page_is_not_open_to_anyone(rt, github, clock, settings, redis):
    """Statuses link to the team page; without sign-in it names nothing (tests/test_pages.py
    has the signed-in side)."""
    from tests.conftest import deliver

    deliver(rt, Pull(title="Add checkout button").event("opened", clock.now()))
    client = create_app(settings, redis).test_client()
    for path in ("/teams/42/octo%2Fshop", "/teams/42/none", "/"):
        page = client.get(path)
        assert page.status_code == 404
        assert "Add checkout button" not in page.text and "octo" not in page.text


def test_unconfigured_app_offers_setup(redis):
    settings = Settings(_env_file=None)
    app = create_app(settings, redis).test_client()
    assert "not configured" in app.get("/").text
    link = setup_link(settings, redis).removeprefix(settings.base_url)
    page = app.get(link).get_data(as_text=True)
    assert "not configured" in page
    manifest = json.loads(
        page.split('name="manifest" value="')[1].split('"')[0].replace("&#34;", '"')
    )
    assert manifest["hook_attributes"]["url"] == "http://127.0.0.1:3000/api/github/webhooks"
    assert manifest["default_permissions"]["statuses"] == "write"
