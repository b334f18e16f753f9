"""Redis that comes back without its data: the workers notice and rebuild from GitHub, once."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
import responses
from rq.registry import ScheduledJobRegistry

from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS
from stoplight.pipeline import runtime
from stoplight.pipeline.heal import StateWatch
from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.sync import SCHEDULED_SYNC_PREFIX
from stoplight.pipeline.worker import build_worker
from stoplight.state import keys
from stoplight.state.review_queue import QueueStore
from stoplight.transport.lanes import delivery_stream
from tests.conftest import UNPACED, accept, api_root, deliver, run_jobs
from tests.fakes import Pull, body_of, iso
from tests.test_sync import GitHubReads

ROOT = api_root()
DELIVERIES = re.compile(rf"{ROOT}/app/hook/deliveries(\?.*)?$")
ATTEMPTS = re.compile(rf"{ROOT}/app/hook/deliveries/(\d+)/attempts$")


@pytest.fixture
def reads(github):
    return GitHubReads(github, {42: ["octo/shop"]})


def _opened(rt, reads, clock, count: int) -> list[Pull]:
    """`count` PRs opened a minute apart, applied, and listed by GitHub as open."""
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, count + 1)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
        reads.add(pull, clock.now())
        clock.advance(minutes=1)
    return pulls


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
    _opened(rt, reads, clock, 5)
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


def test_lanes_of_their_own_that_lose_their_data_alone_are_healed_too(
    settings, redis, clock, github, reads
):
    lanes_url = f"{settings.redis_url}?db=1"  # another database: a Redis of its own, as seen
    lanes_settings = settings.model_copy(update={"redis_queue_url": lanes_url})
    pull = Pull(number=1)
    with runtime.installed(Runtime.create(lanes_settings, redis, clock, budget=UNPACED)) as rt:
        assert rt.queue is not rt.redis
        watch = StateWatch()
        assert watch.check(rt) is True  # neither marker yet: a first start
        run_jobs(rt)
        assert redis.exists(keys.STATE_MARKER) and rt.queue.exists(keys.STATE_MARKER)
        deliver(rt, pull.event("opened", clock.now()))
        reads.add(pull, clock.now())
        assert rt.queue.exists(delivery_stream(rt.lanes.shared.name))
        assert not redis.exists(delivery_stream(rt.lanes.shared.name))
        written = github.writes()

        clock.advance(minutes=2)
        failed_at = clock.now()
        rt.queue.flushdb()  # the lanes' Redis restarted empty; the state is whole
        github.mock.add(
            responses.GET,
            DELIVERIES,
            json=[{"id": 9, "guid": "lost", "delivered_at": iso(failed_at), "status_code": 503}],
        )
        github.mock.add(responses.POST, ATTEMPTS, status=202, json={})
        assert watch.check(rt) is True
        assert watch.check(rt) is False
        run_jobs(rt)

    assert QueueStore(redis, 42).measures("octo/shop").waiting == 1
    assert github.writes() == [*written, ("POST", "/app/hook/deliveries/9/attempts", None)]


def _run_jobs_before_any_worker_noticed(rt) -> None:
    """Jobs run by a worker whose maintenance has not yet looked for the marker: the few
    seconds between a loss and the next maintenance of any worker."""
    worker = build_worker(rt)
    worker.maintenance = lambda: False  # its state watch has not looked for the marker
    worker.work(burst=True, with_scheduler=False)


def test_effects_wait_from_the_loss_until_the_rebuild_then_post_only_what_differs(
    rt, github, reads, clock
):
    pulls = _opened(rt, reads, clock, 3)
    watch = StateWatch()
    watch.check(rt)
    written = github.writes()
    assert len([w for w in written if "/statuses/" in w[1]]) == 3

    rt.redis.flushall()
    # Before any worker notices: a delivery makes one PR's record again (with no ledger), and
    # a new PR opens. Their effects wait: the ledgers know nothing of what GitHub shows.
    clock.advance(minutes=1)
    labeled = pulls[0].event("labeled", clock.now(), label={"name": "bug"})
    new = Pull(number=4, head_sha=f"{4:040x}")
    for delivery_id, (name, payload) in [
        ("again-1", labeled),
        ("new-4", new.event("opened", clock.now())),
    ]:
        accept(rt, delivery_id, name, body_of(payload))
    reads.add(pulls[0], clock.now())
    reads.add(new, clock.now())
    _run_jobs_before_any_worker_noticed(rt)
    assert github.writes() == written
    assert rt.queue.smembers(keys.REBUILD_WAITERS) == {b"42/octo/shop"}

    assert watch.check(rt) is True
    assert rt.redis.exists(keys.REBUILDING)
    run_jobs(rt)  # the rebuild, then the passes that waited for it

    assert not rt.redis.exists(keys.REBUILDING)
    assert not rt.queue.exists(keys.REBUILD_WAITERS)
    store = QueueStore(rt.redis, 42)
    assert store.measures("octo/shop").waiting == 4
    assert store.light("octo/shop").level is Level.YELLOW  # the fourth PR turned it
    after = github.writes()[len(written) :]
    statuses = sorted((path.rsplit("/", 1)[1], body["description"]) for _, path, body in after
                      if "/statuses/" in path)  # fmt: skip
    assert statuses == [(pull.head_sha, DESCRIPTIONS[Level.YELLOW]) for pull in [*pulls, new]]
    # The size labels GitHub already showed on the three PRs are not added again.
    assert [path for _, path, _ in after if "/issues/" in path] == [
        "/repos/octo/shop/issues/4/labels"
    ]


def test_a_pass_under_way_when_redis_loses_its_data_stops_writing_and_waits(
    rt, github, reads, clock, caplog
):
    caplog.set_level(logging.INFO)
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, 4)]
    for pull in pulls:
        name, payload = pull.event("opened", clock.now())
        accept(rt, f"open-{pull.number}", name, body_of(payload))
    first_status = []

    def status_then_loss(request):
        if not first_status:
            first_status.append(request.url)
            rt.redis.flushall()  # between this write and the next
        return 201, {}, request.body

    github.mock.remove(responses.POST, github.status_route)
    github.mock.add_callback(responses.POST, github.status_route, status_then_loss)
    _run_jobs_before_any_worker_noticed(rt)

    statuses = [path for _, path, _ in github.writes() if "/statuses/" in path]
    assert statuses == [f"/repos/octo/shop/statuses/{pulls[0].head_sha}"]  # none after the loss
    assert rt.queue.smembers(keys.REBUILD_WAITERS) == {b"42/octo/shop"}
    assert "effects wait for the state to be rebuilt" in caplog.text
    assert "Traceback" not in caplog.text
