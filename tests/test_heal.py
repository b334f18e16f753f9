"""Redis that comes back without its data: the workers notice and rebuild from GitHub, once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import responses
from rq.registry import ScheduledJobRegistry

from stoplight.core.light import Level
from stoplight.ops.heal import StateWatch
from stoplight.ops.sync import SCHEDULED_SYNC_PREFIX
from stoplight.state import keys
from stoplight.state.review_queue import QueueStore
from tests.conftest import api_root, deliver, run_jobs
from tests.fakes import Pull, iso
from tests.test_sync import GitHubReads

ROOT = api_root()
DELIVERIES = re.compile(rf"{ROOT}/app/hook/deliveries(\?.*)?$")
ATTEMPTS = re.compile(rf"{ROOT}/app/hook/deliveries/(\d+)/attempts$")


@pytest.fixture
def reads(github):
    return GitHubReads(github, {42: ["octo/shop"]})


def test_a_first_start_writes_the_marker_and_syncs_without_redelivering(rt, github, reads):
    rt.redis.delete(keys.STATE_MARKER)  # a Redis this app has never used
    watch = StateWatch()
    assert watch.check(rt) is True
    assert rt.redis.exists(keys.STATE_MARKER)
    run_jobs(rt)
    assert "/app/installations" in github.gets()
    assert not [path for path in github.gets() if "hook/deliveries" in path]
    assert watch.check(rt) is False  # marker in place: nothing to do


def test_a_wiped_redis_is_rebuilt_from_github_once_without_writing_anything_twice(
    rt, github, reads, clock
):
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, 6)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
        reads.add(pull, clock.now())
        clock.advance(minutes=1)
    first, second = StateWatch(), StateWatch()
    first.check(rt)
    second.check(rt)
    run_jobs(rt)
    written = github.writes()
    store = QueueStore(rt.redis, 42)
    assert store.light("octo/shop").level is Level.YELLOW

    clock.advance(minutes=2)
    failed_at = clock.now()
    rt.redis.flushall()  # what a Redis restarted without its append-only file looks like
    clock.advance(minutes=1)
    github.mock.add(
        responses.GET,
        DELIVERIES,
        json=[
            {"id": 7, "guid": "lost", "delivered_at": iso(failed_at), "status_code": 503},
            {"id": 6, "guid": "old", "delivered_at": iso(failed_at - timedelta(hours=1)),
             "status_code": 503},
        ],
    )  # fmt: skip
    github.mock.add(responses.POST, ATTEMPTS, status=202, json={})

    assert [first.check(rt), second.check(rt)] == [True, False]  # one heal, not one a worker
    run_jobs(rt)

    assert store.measures("octo/shop").waiting == 5
    assert store.light("octo/shop").level is Level.YELLOW
    redelivered = ("POST", "/app/hook/deliveries/7/attempts", None)
    # Only the redelivery: the ledgers were seeded from what GitHub shows.
    assert github.writes() == [*written, redelivered]
    scheduled = ScheduledJobRegistry(queue=rt.lanes.shared).get_job_ids()
    assert any(job.startswith(SCHEDULED_SYNC_PREFIX) for job in scheduled)
