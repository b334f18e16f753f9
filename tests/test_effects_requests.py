"""Requests for a team's GitHub effects share the job that waits for them."""

from __future__ import annotations

from stoplight.pipeline.fanout import request_effects
from stoplight.state import keys
from tests.conftest import run_jobs

TEAM = "octo/shop"


def effects_jobs(rt) -> int:
    jobs = [rt.lanes.shared.fetch_job(job_id) for job_id in rt.lanes.shared.job_ids]
    return sum(job.func_name == "stoplight.jobs.apply_effects" for job in jobs if job)


def test_requests_while_a_pass_waits_queue_one_job(rt):
    for _ in range(3):
        request_effects(rt, 42, TEAM)

    assert effects_jobs(rt) == 1
    assert rt.redis.get(keys.InstallationKeys(42).team(TEAM).effects_dirty) == b"3"


def test_a_request_after_the_pass_started_queues_another(rt):
    request_effects(rt, 42, TEAM)
    run_jobs(rt)

    request_effects(rt, 42, TEAM)

    assert effects_jobs(rt) == 1
