"""Job lanes: one installation's flood cannot starve another's jobs, and nothing is lost."""

from __future__ import annotations

import time
from datetime import timedelta

from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry

from stoplight.pipeline.worker import build_worker
from stoplight.state import keys
from stoplight.state.review_queue import QueueStore
from stoplight.transport import jobs
from stoplight.transport.lanes import BACKLOG, SHARE, SHARED, STALE, applying_from
from stoplight.transport.worker import take_job
from tests.conftest import accept, run_jobs
from tests.fakes import Pull, Repo, body_of

FLOOD = Repo(id=2001, full_name="flood/app", installation_id=1)
QUIET = Repo(id=3001, full_name="quiet/app", installation_id=2)


def _counts(rt) -> tuple[int, int]:
    """Deliveries waiting in the shared lane and in the backlog."""
    waiting = rt.lanes.waiting_deliveries()
    return waiting[SHARED], waiting[BACKLOG]


def _open(rt, clock, repo: Repo, number: int) -> str:
    delivery_id = f"{repo.full_name.replace('/', '-')}-{number}"
    event, payload = Pull(repo=repo, number=number, head_sha=f"{number:040x}").event(
        "opened", clock.now()
    )
    accept(rt, delivery_id, event, body_of(payload))
    return delivery_id


def test_a_flood_from_one_installation_does_not_starve_another(
    rt, github, clock, applied_deliveries
):
    flood = [_open(rt, clock, FLOOD, number) for number in range(1, 121)]
    quiet = _open(rt, clock, QUIET, 1)
    # The flood's first deliveries, then the quiet one; the rest of the flood in the backlog.
    assert _counts(rt) == (SHARE + 1, len(flood) - SHARE)

    run_jobs(rt)

    # Taken first come, first served, the quiet delivery would have been the 121st.
    assert applied_deliveries.index(quiet) <= 2 * SHARE
    # Nothing of the flood is lost in the backlog.
    assert sorted(applied_deliveries) == sorted([*flood, quiet])
    assert len(QueueStore(rt.redis, 1).open_pulls("flood/app")) == len(flood)
    assert QueueStore(rt.redis, 2).measures("quiet/app").waiting == 1


def test_work_a_backlog_delivery_or_job_sets_off_stays_in_the_backlog(rt):
    assert rt.lanes.following(None) == rt.lanes.shared
    with applying_from(BACKLOG):
        assert rt.lanes.following(None) == rt.lanes.backlog
    with applying_from(SHARED):
        assert rt.lanes.following(None) == rt.lanes.shared
    backlog_job = rt.lanes.backlog.enqueue_call("stoplight.jobs.refresh_team", args=(1, "a"))
    shared_job = rt.lanes.shared.enqueue_call("stoplight.jobs.refresh_team", args=(1, "b"))
    assert rt.lanes.following(backlog_job) == rt.lanes.backlog
    assert rt.lanes.following(shared_job) == rt.lanes.shared


def test_a_count_left_by_a_lost_job_is_forgotten(rt, clock):
    # Deliveries counted as waiting whose jobs never start (say Redis lost them) would
    # otherwise keep the installation in the backlog for good.
    for number in range(1, SHARE + 1):
        _open(rt, clock, FLOOD, number)
    rt.redis.delete(rt.lanes.streams[0])  # the deliveries are lost; the count of them stays
    _open(rt, clock, FLOOD, SHARE + 1)
    assert _counts(rt) == (0, 1)
    clock.advance(seconds=STALE.total_seconds() + 1)
    _open(rt, clock, FLOOD, SHARE + 2)
    assert _counts(rt) == (1, 1)


def test_a_job_leaving_the_lane_makes_room(rt, clock):
    first, *_ = [_open(rt, clock, FLOOD, number) for number in range(1, SHARE + 1)]
    rt.lanes.leave(1, first)
    newest = _open(rt, clock, FLOOD, SHARE + 1)
    assert _counts(rt) == (SHARE + 1, 0)
    # A repeated delivery id is counted once.
    _open(rt, clock, FLOOD, SHARE + 1)
    assert _counts(rt) == (SHARE + 1, 0)
    waiting = rt.redis.zrange(keys.InstallationKeys(1).waiting_deliveries, 0, -1)
    assert len(waiting) == SHARE and newest.encode() in waiting


def test_an_idle_worker_takes_a_job_in_either_lane(rt, clock):
    worker = build_worker(rt)
    assert take_job(rt.redis, worker.queues) is None  # never waits
    job = rt.lanes.backlog.enqueue_call("stoplight.jobs.refresh_team", args=(1, "flood/app"))
    assert worker.work_once()
    assert job.get_status(refresh=True) == "finished"


def test_an_idle_worker_applies_a_delivery_that_arrives_while_it_waits(
    rt, github, clock, applied_deliveries
):
    worker = build_worker(rt)
    worker.delivery_streams.ensure_groups()
    job = rt.lanes.shared.enqueue_call("stoplight.jobs.refresh_team", args=(2, "quiet/app"))
    delivery_id = _open(rt, clock, QUIET, 1)
    assert worker.work_once(block_ms=5000)
    assert applied_deliveries == [delivery_id]  # the delivery first, then the job
    assert job.get_status(refresh=True) == "finished"


def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_retried(rt, github, clock):
    rt.enqueue(jobs.refresh_team(2, "quiet/app"))  # with the jobs' retries
    [job] = rt.lanes.shared.jobs
    worker = build_worker(rt)
    taken = take_job(rt.redis, worker.queues)
    assert taken is not None
    _, lane = taken
    # The worker dies here: the job is in no lane, but in the lane's intermediate list.
    assert lane.count == 0
    assert job.id in lane.intermediate_queue.get_job_ids()

    # Maintenance notes the job, and a minute on hands it back with one retry fewer.
    worker.clean_registries()
    first_seen = lane.intermediate_queue.get_first_seen_key(job.id)
    rt.redis.set(first_seen, time.time() - timedelta(minutes=2).total_seconds())
    worker.clean_registries()
    scheduled = ScheduledJobRegistry(queue=lane)
    assert scheduled.get_job_ids() == [job.id]

    scheduled.remove(job)
    lane.enqueue_job(job)
    run_jobs(rt)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
