"""A real worker process killed mid-fan-out, and Redis restarted from its append-only file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from stoplight.effects.plan import DESCRIPTIONS
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.pipeline.runtime import Runtime, installed
from stoplight.pipeline.worker import build_worker
from stoplight.state import keys
from stoplight.state.review_queue import QueueStore
from stoplight.transport import jobs
from stoplight.transport.worker import JOB_HEARTBEAT_TTL, MAINTENANCE_SECONDS
from tests.conftest import UNPACED, WEBHOOK_SECRET, accept, deliver
from tests.fakes import FakeClock, Pull, body_of
from tests.github_server import FakeGitHubState, serve_fake_github

pytestmark = pytest.mark.slow


def _worker_env(settings, host: str) -> dict[str, str]:
    return {
        **os.environ,
        "APP_ID": str(settings.app_id),
        "PRIVATE_KEY": settings.private_key.get_secret_value(),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REDIS_URL": settings.redis_url,
        "GHE_HOST": host,
        "GHE_PROTOCOL": "http",
        "BASE_URL": "https://stoplight.example",
        "LOG_LEVEL": "info",
    }


@contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `stoplight worker` in a process group of its own, with its scheduler process."""
    command = [sys.executable, "-c", "from stoplight.cli import main; main()", "worker"]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)
        # A worker killed alone leaves its scheduler running; it must not outlive the test.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the workers did not settle"
        time.sleep(0.05)


def _settled(
    redis: Redis, state: FakeGitHubState, pulls: list[Pull], team: str, lanes: Redis | None = None
) -> bool:
    """The team's light is shown on every PR, and no effects pass is due (its counter is on
    `lanes`, the lanes' Redis, when that is another)."""
    light = QueueStore(redis, 42).light(team)
    dirty = keys.InstallationKeys(42).team(team).effects_dirty
    if light is None or (lanes or redis).exists(dirty):
        return False
    with state.lock:
        latest = {sha: posted[0]["description"] for sha, posted in state.statuses.items()}
    return all(latest.get(pull.head_sha) == DESCRIPTIONS[light.level] for pull in pulls)


def test_worker_killed_mid_fan_out_recovers_without_writing_twice(rt, settings, tmp_path):
    clock = FakeClock(datetime.now(UTC))
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, 5)]
    with serve_fake_github() as (host, state):
        state.hold_status_number = 3
        for pull in pulls:
            event, payload = pull.event("opened", clock.now())
            accept(rt, f"crash-{pull.number}", event, body_of(payload))
        env = _worker_env(settings, host)
        log = tmp_path / "worker.log"
        with worker_process(env, log) as first:
            assert state.held.wait(timeout=30), "the fan-out never reached the third status"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        state.release.set()

        # Time passes: the dead worker's effects lock and its job's registry entry expire,
        # and maintenance hands the job back to the queue with one retry fewer.
        rt.redis.delete(keys.InstallationKeys(42).team("octo/shop").effects_lock)
        expired = time.time() + JOB_HEARTBEAT_TTL + 1
        StartedJobRegistry(queue=rt.lanes.shared).cleanup(timestamp=expired)

        with worker_process(env, log):
            _wait_for(lambda: _settled(rt.redis, state, pulls, "octo/shop"))

        statuses = state.status_writes()
        assert len(statuses) == len(set(statuses)) == 4  # the in-flight one was not redone
        label_writes = [(m, p, str(b)) for m, p, b in state.writes if "label" in p]
        assert len(label_writes) == len(set(label_writes))
    worker_log = log.read_text()
    for secret in (settings.private_key.get_secret_value(), WEBHOOK_SECRET, "ghs_local42"):
        assert secret not in worker_log


def test_a_dead_workers_job_is_retried_within_a_minute(rt):
    worker = build_worker(rt)
    rt.enqueue(jobs.refresh_team(42, "octo/shop"))
    job = rt.lanes.shared.jobs[0]
    assert job.retries_left and job.retries_left > 0
    retry_delay = 2  # the first of JOB_RETRY's intervals
    found_after = worker.get_heartbeat_ttl(job) + MAINTENANCE_SECONDS
    assert found_after + retry_delay < 60


def contents(redis: Redis) -> dict[bytes, object]:
    """Every stoplight key's value, compared by content: a reload may reorder a hash's fields,
    which changes DUMP's bytes but not the data."""
    readers = {
        b"string": redis.get,
        b"hash": redis.hgetall,
        b"set": redis.smembers,
        b"zset": lambda name: redis.zrange(name, 0, -1, withscores=True),
        b"list": lambda name: redis.lrange(name, 0, -1),
        # A lane's stream: its entries, and its consumer group's progress through them.
        b"stream": lambda name: (
            redis.xrange(name),
            [(g["name"], g["pending"], g["last-delivered-id"]) for g in redis.xinfo_groups(name)],
        ),
    }
    return {name: readers[redis.type(name)](name) for name in redis.scan_iter(match="stoplight:*")}


def test_redis_restarted_from_its_append_only_file_keeps_all_state(
    settings, tmp_path, github, clock
):
    server = EmbeddedRedis(tmp_path / "aof", appendonly=True).start()
    try:
        redis = Redis.from_url(server.url)
        rt = Runtime.create(settings, redis, clock, budget=UNPACED)
        with installed(rt):
            deliver(rt, Pull().event("opened", clock.now()))
        before = contents(redis)
        scheduled = ScheduledJobRegistry(queue=rt.lanes.shared).get_job_ids()
        assert before and scheduled
        redis.close()
        server.stop()
        server.start()
        redis = Redis.from_url(server.url)
        after = contents(redis)
        assert after == before
        assert (
            ScheduledJobRegistry(connection=redis, name=rt.lanes.shared.name).get_job_ids()
            == scheduled
        )
        assert QueueStore(redis, 42).measures("octo/shop").waiting == 1
        redis.close()
    finally:
        server.stop()
