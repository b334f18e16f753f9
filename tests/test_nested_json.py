"""A signed body nested deeper than the JSON parser goes is malformed input, not a crash."""

from __future__ import annotations

from redis import Redis

from stoplight.pipeline.worker import apply_handed_over
from stoplight.settings import Settings
from stoplight.state import keys
from stoplight.transport import records
from stoplight.web import create_app
from tests.conftest import WEBHOOK_SECRET
from tests.fakes import sign

PATH = "/api/github/webhooks"


def nested_lists(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_deeply_nested_json_gets_400_and_records_nothing(settings: Settings, redis: Redis):
    client = create_app(settings, redis).test_client()
    body = nested_lists(100_000)
    headers = {
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "d-deep",
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
    }
    response = client.post(PATH, data=body, headers=headers, content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json["error"]
    assert not redis.exists(keys.delivery("d-deep"))


def test_a_recorded_deeply_nested_body_is_ignored_by_its_job(rt):
    # `stoplight replay` records bodies without the web endpoint's check.
    body = b'{"a":' + nested_lists(100_000) + b"}"
    rt.redis.hset(keys.delivery("d-deep"), mapping={"event": "pull_request", "body": body})
    apply_handed_over(rt, "d-deep", 0, "job-1")
    assert records.load(rt.redis, "d-deep") is None  # finished, not left to retry for ever
