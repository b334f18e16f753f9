"""The image's health check: a web process answers /healthz, a worker heartbeats."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from rq import Worker

from stoplight.ops.healthcheck import HEARTBEAT_WINDOW, web_answers, worker_heartbeats
from tests.test_end_to_end import free_port


def test_a_worker_of_this_host_that_heartbeats_is_healthy(settings, redis):
    worker = Worker(["stoplight"], connection=redis, name="healthy-one")
    worker.register_birth()
    worker.heartbeat()
    now = datetime.now(UTC)
    assert worker_heartbeats(settings, socket.gethostname(), now)
    assert not worker_heartbeats(settings, "another-container", now)
    assert not worker_heartbeats(settings, socket.gethostname(), now + 2 * HEARTBEAT_WINDOW)


def test_no_web_server_on_the_port_is_no_health():
    assert not web_answers(str(free_port()))
