"""A team's tick: the timed evaluation that turns its light when time alone calls for it."""

from __future__ import annotations

from datetime import timedelta

from rq.registry import ScheduledJobRegistry

from stoplight.core.clock import from_timestamp
from stoplight.core.light import Level
from stoplight.state.keys import job_id
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver, run_due_jobs
from tests.fakes import Pull

TEAM = "octo/shop"


def tick_at(rt):
    scheduled = ScheduledJobRegistry(queue=rt.lanes.shared)
    moment = scheduled.get_scheduled_time(job_id("tick", 42, TEAM))
    return from_timestamp(moment.timestamp())


def test_a_tick_due_sooner_stays_and_schedules_the_next_as_it_runs(rt, github, clock):
    first, second = Pull(number=1), Pull(number=2, head_sha="b" * 40)
    deliver(rt, first.event("opened", clock.now()))
    first_waits_since = clock.now()
    clock.advance(hours=1)
    deliver(rt, second.event("opened", clock.now()))
    deliver(rt, first.review("bob", "approved", clock.now()))

    # Only the second waits now, so the light turns an hour later than the tick; the tick
    # stays, and moves on when it runs.
    assert tick_at(rt) == first_waits_since + timedelta(hours=24)
    clock.advance(hours=23)
    assert run_due_jobs(rt, clock) == 1
    assert QueueStore(rt.redis, 42).light(TEAM).level is Level.GREEN
    assert tick_at(rt) == first_waits_since + timedelta(hours=25)

    clock.advance(hours=1)
    assert run_due_jobs(rt, clock) == 1
    assert QueueStore(rt.redis, 42).light(TEAM).level is Level.YELLOW


def test_a_change_calling_for_a_sooner_evaluation_moves_the_tick(rt, github, clock):
    pull = Pull(additions=1500)  # over the yellow line count
    deliver(rt, pull.event("opened", clock.now()))
    assert tick_at(rt) == clock.now() + timedelta(hours=48)  # red, should it wait that long

    clock.advance(hours=1)
    pull.additions = 40  # green is called for, and the light turns once the cooldown is over
    deliver(rt, pull.event("synchronize", clock.now()))

    assert tick_at(rt) == clock.now() + timedelta(minutes=10)
