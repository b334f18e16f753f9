"""The image's health check: `python -m stoplight.ops.healthcheck` exits 0 while the
container's process does its work.

One image runs both processes, so the check asks after both: the web process answers
/healthz on PORT; a worker serves no HTTP, but heartbeats in RQ's registry of workers under
its host's name (a container's own). Either one is health. It imports little, as it runs
every half minute beside the process it checks.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from rq import Worker

from stoplight.settings import Settings
from stoplight.state.connection import WEB, connect

# A worker heartbeats each second while idle and at every job; a minute of silence is a problem.
HEARTBEAT_WINDOW = timedelta(minutes=1)
ANSWER_SECONDS = 2


def web_answers(port: str) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/healthz", timeout=ANSWER_SECONDS
        ) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def worker_heartbeats(settings: Settings, host: str, now: datetime) -> bool:
    """A worker of `host` heartbeat within the window /readyz allows."""
    url = settings.redis_queue_url or settings.redis_url
    if url is None:
        return False
    try:
        workers = Worker.all(connection=connect(url, WEB))
    except RedisError:
        return False
    return any(
        worker.hostname == host
        and worker.last_heartbeat is not None
        and now - worker.last_heartbeat <= HEARTBEAT_WINDOW
        for worker in workers
    )


def healthy() -> bool:
    if web_answers(os.environ.get("PORT", "3000")):
        return True
    return worker_heartbeats(Settings(), socket.gethostname(), datetime.now(UTC))


if __name__ == "__main__":
    sys.exit(0 if healthy() else 1)
