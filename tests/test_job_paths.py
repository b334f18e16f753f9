"""RQ keeps a job's function as a dotted path in Redis: jobs queued by an earlier version must
still run after an upgrade, whatever the package's layout."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rq.utils import import_attribute

from stoplight.state.review_queue import QueueStore
from stoplight.transport import jobs
from tests.conftest import deliver, run_jobs
from tests.fakes import Pull

# Every entry point an earlier version queued, with its parameters.
QUEUED_BEFORE = {
    "stoplight.jobs.process_delivery": ["delivery_id", "installation_id"],
    "stoplight.jobs.refresh_team": ["installation_id", "team"],
    "stoplight.jobs.apply_effects": ["installation_id", "team"],
    "stoplight.jobs.send_light_notice": [
        "installation_id", "team", "previous_level", "previous_since", "level", "since",
    ],
    "stoplight.jobs.update_red_notice": ["installation_id", "team"],
    "stoplight.jobs.update_claimed_notice": ["installation_id", "team"],
    "stoplight.jobs.answer_slack_click": ["click_id", "installation_id", "pull_key"],
    "stoplight.jobs.answer_slack_command": ["command_id"],
    "stoplight.jobs.sync_installation": ["installation_id"],
    "stoplight.jobs.scheduled_sync": [],
    "stoplight.jobs.redeliver_since": ["since_timestamp"],
    "stoplight.jobs.heal_lost_state": ["since_timestamp"],
    "stoplight.jobs.post_merge_group_status": ["installation_id", "repo", "sha"],
    "stoplight.jobs.send_digest": ["installation_id", "team", "moment_timestamp"],
}  # fmt: skip
PACKAGE = Path(__file__).resolve().parents[1] / "stoplight"


@pytest.mark.parametrize("path", sorted(QUEUED_BEFORE))
def test_a_path_an_earlier_version_queued_still_names_the_same_job(path):
    function = import_attribute(path)
    assert list(inspect.signature(function).parameters) == QUEUED_BEFORE[path]


def job_functions() -> dict[str, Callable[..., jobs.Job]]:
    """The transport's typed job functions, by the name of the entry point each returns."""
    return {
        name: function
        for name, function in inspect.getmembers(jobs, inspect.isfunction)
        if inspect.signature(function).return_annotation in ("Job", jobs.Job)
    }


def test_every_entry_point_has_a_typed_job_function_with_its_parameters():
    functions = job_functions()
    assert {f"{jobs.ENTRY_POINTS}.{name}" for name in functions} == set(QUEUED_BEFORE)
    for name, function in functions.items():
        parameters = list(inspect.signature(function).parameters)
        job = function(*parameters)  # the arguments stand in for themselves
        assert job.path == f"{jobs.ENTRY_POINTS}.{name}"
        assert parameters == QUEUED_BEFORE[job.path]
        assert job.args == tuple(parameters)  # passed on in the entry point's order


def test_job_paths_are_spelled_out_only_by_the_transports_job_functions():
    spelling = re.compile(r"[\"'](stoplight\.jobs\.\w+)[\"']")
    spelled = {
        source.relative_to(PACKAGE).as_posix()
        for source in PACKAGE.rglob("*.py")
        if spelling.search(source.read_text())
    }
    assert spelled == set()


def test_a_job_stored_by_path_runs(rt, github, clock):
    deliver(rt, Pull().event("opened", clock.now()))
    store = QueueStore(rt.redis, 42)
    rt.redis.delete(store.keys.team("octo/shop").light)
    rt.lanes.shared.enqueue_call("stoplight.jobs.refresh_team", args=(42, "octo/shop"))
    run_jobs(rt)
    light = store.light("octo/shop")
    assert light is not None and light.level.label == "Green"
