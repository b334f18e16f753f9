"""Failed deliveries asked for again: after a Redis outage, and by `stoplight redeliver`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from redis import Redis
from rq import Queue

from stoplight.cli import main
from stoplight.config import schema
from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.pipeline import redeliver, runtime
from stoplight.transport.jobs import REDELIVER_TIMEOUT_SECONDS
from stoplight.web import create_app, outage
from tests.conftest import API, UNPACED, WEBHOOK_SECRET, api_root, mark_as_seen, run_jobs
from tests.fakes import Pull, body_of, iso, sign
from tests.redis_servers import until

ROOT = api_root()
DELIVERIES = re.compile(rf"{ROOT}/app/hook/deliveries(\?.*)?$")
ATTEMPTS = re.compile(rf"{ROOT}/app/hook/deliveries/(\d+)/attempts$")


def post(client, event: tuple[str, dict[str, Any]], delivery_id: str):
    name, payload = event
    body = body_of(payload)
    return client.post(
        "/api/github/webhooks",
        data=body,
        headers={
            "X-GitHub-Event": name,
            "X-GitHub-Delivery": delivery_id,
            "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
            "Content-Type": "application/json",
        },
    )


def _delivery(number: int, guid: str, at, status_code: int) -> dict[str, Any]:
    return {
        "id": number,
        "guid": guid,
        "delivered_at": iso(at),
        "status_code": status_code,
        "event": "pull_request",
        "redelivery": False,
    }


def test_redis_outage_answers_503_then_redelivers_what_failed(settings, github, clock, tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    redis = Redis.from_url(server.url)
    settings = settings.model_copy(update={"redis_url": server.url})
    client = create_app(settings, redis, clock).test_client()
    lost, later = Pull(number=1, head_sha="1" * 40), Pull(number=2, head_sha="2" * 40)
    lost_event = lost.event("opened", clock.now())
    try:
        server.stop()
        assert post(client, lost_event, "lost-1").status_code == 503
        clock.advance(minutes=5)
        server.start()
        assert post(client, later.event("opened", clock.now()), "after-1").status_code == 202
        redelivery = Queue("stoplight", connection=redis).jobs[-1]
        assert redelivery.func_name == "stoplight.jobs.redeliver_since"
        assert redelivery.timeout == REDELIVER_TIMEOUT_SECONDS  # not the 25 s of other jobs

        listed = [
            _delivery(12, "after-1", clock.now(), 202),
            _delivery(11, "lost-1", clock.now() - timedelta(minutes=5), 503),
            _delivery(10, "long-ago", clock.now() - timedelta(hours=1), 503),
        ]
        asked: list[int] = []

        def attempt(request):
            asked.append(int(ATTEMPTS.match(request.url).group(1)))
            assert post(client, lost_event, "lost-1").status_code == 202  # GitHub sends again
            return 202, {}, "{}"

        github.mock.add(responses.GET, DELIVERIES, json=listed)
        github.mock.add_callback(responses.POST, ATTEMPTS, attempt)
        mark_as_seen(redis, clock)  # the outage kept the data: nothing to rebuild
        rt = runtime.Runtime.create(settings, redis, clock, budget=UNPACED)
        with runtime.installed(rt):
            run_jobs(rt)
            run_jobs(rt)  # the deliveries the redelivery brought in

        assert asked == [11]
        posted = {sha for sha, _, text in github.statuses() if text == DESCRIPTIONS[Level.GREEN]}
        assert posted == {"1" * 40, "2" * 40}
    finally:
        redis.close()
        server.stop()


def test_redeliver_command_pages_back_to_since_and_skips_what_succeeded(settings, github):
    now = datetime.now(UTC)  # the command reads the wall clock
    first = [
        _delivery(9, "ok-after-retry", now - timedelta(minutes=1), 200),
        _delivery(8, "failed", now - timedelta(minutes=10), 500),
    ]
    second = [
        _delivery(7, "ok-after-retry", now - timedelta(minutes=20), 503),
        _delivery(6, "too-old", now - timedelta(hours=3), 503),
    ]
    pages = iter([first, second])

    def page(request):
        items = next(pages)
        link = {"Link": f'<{API}/app/hook/deliveries?per_page=100&cursor=v1_7>; rel="next"'}
        return 200, link, json.dumps(items)

    asked: list[str] = []
    github.mock.add_callback(responses.GET, DELIVERIES, page)
    github.mock.add_callback(
        responses.POST, ATTEMPTS, lambda r: (asked.append(r.url.split("/")[-2]), (202, {}, "{}"))[1]
    )
    env = {"APP_ID": str(settings.app_id), "PRIVATE_KEY": settings.private_key.get_secret_value()}
    result = CliRunner().invoke(main, ["redeliver", "--since", "2h"], env=env)
    assert result.exit_code == 0, result.output
    assert asked == ["8"]
    assert "3 deliveries" in result.output and "1 redelivered" in result.output


def test_since_must_be_a_duration():
    assert schema.parse_duration("2h") == timedelta(hours=2)
    assert schema.parse_duration("30m") == timedelta(minutes=30)
    with pytest.raises(ValueError, match="not a duration"):
        schema.parse_duration("two hours")
    result = CliRunner().invoke(main, ["redeliver", "--since", "soon"], env={"APP_ID": "1"})
    assert result.exit_code == 2 and "--since" in result.output


def test_a_failed_attempt_is_asked_for_once_however_many_runs_look_at_it(rt, github, clock):
    # Each web process queues a run after an outage, and a heal may queue one more.
    github.mock.add(responses.GET, DELIVERIES, json=[_delivery(21, "lost", clock.now(), 503)])
    asked = []

    def attempt(request):
        asked.append(request.url)
        return 202, {}, "{}"

    github.mock.add_callback(responses.POST, ATTEMPTS, attempt)
    since = clock.now() - timedelta(minutes=5)
    first, second = (redeliver.redeliver_since(rt, since) for _ in range(2))
    assert [first.failed, second.failed] == [["lost"], []]
    assert len(asked) == 1

    github.mock.replace(
        responses.GET, DELIVERIES,
        json=[_delivery(22, "lost", clock.now(), 502), _delivery(21, "lost", clock.now(), 503)],
    )  # fmt: skip
    assert redeliver.redeliver_since(rt, since).failed == ["lost"]  # a new attempt failed
    assert len(asked) == 2


def test_after_an_outage_the_redelivery_is_queued_without_waiting_for_a_delivery(
    settings, clock, tmp_path, monkeypatch
):
    monkeypatch.setattr(outage, "LOOK_EVERY_SECONDS", 0.05)
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    redis = Redis.from_url(server.url)
    settings = settings.model_copy(update={"redis_url": server.url})
    client = create_app(settings, redis, clock).test_client()
    try:
        server.stop()
        assert post(client, Pull().event("opened", clock.now()), "lost-1").status_code == 503
        server.start()  # and nothing more is delivered: the org is quiet
        lane = Queue("stoplight", connection=redis)
        until(lambda: [job.func_name for job in lane.jobs] == ["stoplight.jobs.redeliver_since"],
              "the redelivery to be queued", timeout=10)  # fmt: skip
    finally:
        redis.close()
        server.stop()
