"""/healthz answers while the process runs; /readyz only while Redis and a worker do."""

from __future__ import annotations

from datetime import timedelta

from rq.utils import now as rq_now

from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.worker import build_worker
from stoplight.web import create_app, web_redis
from tests.conftest import UNPACED
from tests.fakes import FakeClock
from tests.test_end_to_end import free_port


def test_healthz_answers_without_redis(settings):
    unreachable = web_redis(f"redis://127.0.0.1:{free_port()}")
    assert create_app(settings, unreachable).test_client().get("/healthz").status_code == 200


def test_readyz_is_503_with_redis_down(settings):
    unreachable = web_redis(f"redis://127.0.0.1:{free_port()}")
    response = create_app(settings, unreachable).test_client().get("/readyz")
    assert response.status_code == 503
    # The error names Redis's host and port: the log has it, an outsider's answer not.
    assert response.json == {"status": "unavailable", "reason": "Redis does not answer"}
    assert "127.0.0.1" not in response.text


def test_readyz_is_503_without_a_worker(settings, redis):
    response = create_app(settings, redis).test_client().get("/readyz")
    assert response.status_code == 503
    assert "no worker heartbeat" in response.json["reason"]


def test_readyz_follows_the_workers_heartbeat(settings, redis):
    worker = build_worker(Runtime.create(settings, redis, budget=UNPACED))
    worker.register_birth()

    answer = create_app(settings, redis).test_client().get("/readyz")
    assert (answer.status_code, answer.json) == (200, {"status": "ready", "workers": 1})

    later = FakeClock(rq_now() + timedelta(minutes=1, seconds=5))
    answer = create_app(settings, redis, later).test_client().get("/readyz")
    assert answer.status_code == 503
