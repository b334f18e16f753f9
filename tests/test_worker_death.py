"""A killed worker's job is taken up by another worker as soon as its heartbeat lapses."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq.registry import StartedJobRegistry
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler

from stoplight.transport.lanes import SHARED
from stoplight.transport.worker import JOB_HEARTBEAT_TTL, SCHEDULER_SILENT_SECONDS, SchedulerWatch
from tests.conftest import accept
from tests.fakes import FakeClock, Pull, body_of
from tests.github_server import serve_fake_github
from tests.test_crash import _settled, _wait_for, _worker_env, worker_process

# Heartbeat lapse, maintenance, retry and a freed scheduler lock take about ten seconds
# (deploy/README.md); RQ's defaults took a minute or more.
RECOVERY_BOUND_SECONDS = 30


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL for the worker and its scheduler process, as losing a machine would be."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def started_expiries(redis: Redis) -> list[float]:
    registry = StartedJobRegistry(SHARED, connection=redis)
    return [score for _, score in redis.zrange(registry.key, 0, -1, withscores=True)]


@pytest.mark.slow
def test_a_killed_workers_job_is_finished_by_the_other_worker(rt, settings, tmp_path):
    clock = FakeClock(datetime.now(UTC))
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, 5)]
    log = tmp_path / "workers.log"
    with serve_fake_github() as (host, state):
        state.hold_status_number = 3
        for pull in pulls:
            event, payload = pull.event("opened", clock.now())
            accept(rt, f"death-{pull.number}", event, body_of(payload))
        env = _worker_env(settings, host)
        with worker_process(env, log) as first, worker_process(env, log):
            assert state.held.wait(timeout=30), "the fan-out never reached the third status"
            # The first worker's job is marked alive for seconds at a time, not for its timeout.
            expiries = started_expiries(rt.redis)
            assert expiries and max(expiries) <= datetime.now(UTC).timestamp() + JOB_HEARTBEAT_TTL

            kill_group(first)
            state.release.set()
            _wait_for(lambda: _settled(rt.redis, state, pulls, "octo/shop"), RECOVERY_BOUND_SECONDS)

        statuses = state.status_writes()
        assert len(statuses) == len(set(statuses))  # the in-flight one was not redone


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_silent_schedulers_lock_is_freed_and_a_beating_ones_is_kept(redis):
    ticks = Ticks()
    watch = SchedulerWatch(monotonic=ticks)
    dead, alive = RQScheduler.get_locking_key("a"), RQScheduler.get_locking_key("b")
    redis.set(dead, "dead-scheduler")
    redis.set(alive, "live-scheduler")
    redis.hset(SCHEDULER_KEY_TEMPLATE % "dead-scheduler", "last_heartbeat", "09:00:00")
    for second in range(SCHEDULER_SILENT_SECONDS + 1):
        ticks.now = float(second)
        redis.hset(SCHEDULER_KEY_TEMPLATE % "live-scheduler", "last_heartbeat", f"09:00:{second}")
        assert redis.exists(dead)  # silent, but not for long enough yet
        watch.free_dead_locks(redis, ["a", "b"])
    assert not redis.exists(dead)
    assert redis.get(alive) == b"live-scheduler"


@pytest.mark.slow
def test_a_lane_whose_scheduler_died_has_its_timed_jobs_run_by_a_running_scheduler(
    rt, settings, tmp_path
):
    """Schedulers lock lanes one by one, so a dead scheduler may leave one lane's lock to a
    worker whose scheduler already runs for the other lanes; RQ's running scheduler looks for
    free locks every two minutes, and the lane's retries would wait that long."""
    lanes = rt.lanes.queues
    orphaned = lanes[-1]
    # As a scheduler killed with its worker leaves it: held for a minute, never beating again.
    rt.queue.set(RQScheduler.get_locking_key(orphaned.name), "killed-scheduler", ex=60)
    job = orphaned.enqueue_in(timedelta(0), "builtins.len", [])
    with (
        serve_fake_github() as (host, _),
        worker_process(_worker_env(settings, host), tmp_path / "worker.log"),
    ):
        _wait_for(lambda: rt.queue.exists(RQScheduler.get_locking_key(lanes[0].name)))
        _wait_for(lambda: job.get_status(refresh=True) == "finished", RECOVERY_BOUND_SECONDS)
        owners = {rt.queue.get(RQScheduler.get_locking_key(lane.name)) for lane in lanes}
    assert len(owners) == 1 and None not in owners  # one scheduler holds every lane again
