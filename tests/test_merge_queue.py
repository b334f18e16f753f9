"""Merge queues: a group's head commit gets `success` at once, and the queue's own branches
are not PR activity."""

from __future__ import annotations

import json
from typing import Any

import responses
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from stoplight.pipeline.merge_groups import MERGE_GROUP_DESCRIPTION
from stoplight.pipeline.runtime import Runtime
from stoplight.state import keys, rebuild
from stoplight.web.setup import manifest
from tests.conftest import deliver, run_due_jobs, run_jobs
from tests.fakes import START, Pull, Repo, iso

BASE_SHA = "b" * 40
GROUP_SHA = "c0ffee" + "1" * 34
PR_SHA = "d" * 40
ZERO_SHA = "0" * 40
QUEUE_REF = f"refs/heads/gh-readonly-queue/main/pr-123-{PR_SHA}"


def _repository(repo: Repo) -> dict[str, Any]:
    owner = repo.full_name.split("/")[0]
    return {
        "id": repo.id,
        "node_id": "R_kgDOshop",
        "name": repo.name,
        "full_name": repo.full_name,
        "private": True,
        "owner": {"login": owner, "id": 9001, "type": "Organization"},
        "html_url": f"https://github.com/{repo.full_name}",
        "default_branch": "main",
    }


def _commit(sha: str, message: str) -> dict[str, Any]:
    person = {"name": "GitHub", "email": "noreply@github.com"}
    return {
        "id": sha,
        "tree_id": "e" * 40,
        "message": message,
        "timestamp": iso(START),
        "author": {"name": "Alice", "email": "alice@example.com"},
        "committer": person,
    }


def _envelope(repo: Repo) -> dict[str, Any]:
    owner = repo.full_name.split("/")[0]
    return {
        "repository": _repository(repo),
        "organization": {"login": owner, "id": 9001},
        "installation": {"id": repo.installation_id, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbA"},
        "sender": {"login": "alice", "id": 7, "type": "User"},
    }


def merge_group(
    action: str = "checks_requested", repo: Repo | None = None, head_sha: str = GROUP_SHA
) -> tuple[str, dict[str, Any]]:
    """A merge_group delivery as GitHub sends it when PR #123 enters main's queue."""
    repo = repo or Repo()
    group = {
        "head_sha": head_sha,
        "head_ref": QUEUE_REF,
        "base_sha": BASE_SHA,
        "base_ref": "refs/heads/main",
        "head_commit": _commit(head_sha, "Merge pull request #123 from octo/topic\n\nAdd it"),
    }
    payload: dict[str, Any] = {"action": action, "merge_group": group, **_envelope(repo)}
    if action == "destroyed":
        payload["reason"] = "merged"
    return "merge_group", payload


def queue_branch_push(*, deleted: bool = False) -> tuple[str, dict[str, Any]]:
    """The push GitHub sends when the queue makes (or, once merged, deletes) its branch: the
    group's commit changes the configuration file, as the queued PR does."""
    repo = Repo()
    commit = {
        **_commit(GROUP_SHA, "Merge pull request #123 from octo/topic"),
        "url": f"https://github.com/{repo.full_name}/commit/{GROUP_SHA}",
        "distinct": True,
        "added": [],
        "removed": [],
        "modified": [".github/stoplight.yml"],
    }
    payload = {
        "ref": QUEUE_REF,
        "before": GROUP_SHA if deleted else ZERO_SHA,
        "after": ZERO_SHA if deleted else GROUP_SHA,
        "created": not deleted,
        "deleted": deleted,
        "forced": False,
        "base_ref": None,
        "compare": f"https://github.com/{repo.full_name}/compare/{QUEUE_REF}",
        "commits": [] if deleted else [commit],
        "head_commit": None if deleted else commit,
        "pusher": {"name": "github-merge-queue[bot]", "email": None},
        **_envelope(repo),
    }
    return "push", payload


def group_statuses(github) -> list[dict[str, Any]]:
    """Every status request sent for the group's commit, with its body."""
    return [
        body
        for method, path, body in github.writes()
        if method == "POST" and path == f"/repos/octo/shop/statuses/{GROUP_SHA}"
    ]


def test_the_manifest_subscribes_to_merge_groups_and_may_read_merge_queues(settings):
    app = manifest(settings)
    assert "merge_group" in app["default_events"]
    assert app["default_permissions"]["merge_queues"] == "read"  # GitHub sends it only then


def test_checks_requested_gets_one_success_on_the_group_head(rt, github):
    deliver(rt, merge_group())
    assert group_statuses(github) == [
        {
            "state": "success",
            "target_url": "https://stoplight.example/teams/42/octo%2Fshop",
            "description": MERGE_GROUP_DESCRIPTION,
            "context": "stoplight",
        }
    ]
    assert len(MERGE_GROUP_DESCRIPTION) <= 140
    assert not rt.redis.exists(keys.InstallationKeys(42).team("octo/shop").light)  # no PR


def test_the_group_of_a_configured_team_points_at_its_page(rt, github, clock):
    github.put_config("octo/shop", "teams: [{name: web}]")
    deliver(rt, Pull().event("opened", clock.now()))
    deliver(rt, merge_group())
    [status] = group_statuses(github)
    assert status["target_url"] == "https://stoplight.example/teams/42/web%40octo%2Fshop"


def test_a_redelivered_group_posts_nothing_more(rt, github):
    deliver(rt, merge_group(), "group-1")
    deliver(rt, merge_group(), "group-1-again")  # GitHub's redelivery has an id of its own
    assert len(group_statuses(github)) == 1


def test_destroyed_changes_nothing(rt, github):
    deliver(rt, merge_group())
    writes = len(github.writes())
    deliver(rt, merge_group("destroyed"))
    assert len(github.writes()) == writes


def test_a_group_of_a_repository_not_granted_is_ignored(rt, github):
    rt.redis.sadd(keys.InstallationKeys(42).repositories, 2002)  # octo/shop (1001) is not
    deliver(rt, merge_group())
    assert group_statuses(github) == []


def _fail_status_writes(github, times: int) -> None:
    answers = iter([502] * times)

    def failing(request):
        status = next(answers, 201)
        return status, {}, request.body if status == 201 else '{"message": "Bad Gateway"}'

    github.mock.remove(responses.POST, github.status_route)
    github.mock.add_callback(responses.POST, github.status_route, failing)


def _status_answers(github) -> list[int]:
    return [
        call.response.status_code for call in github.mock.calls if "/statuses/" in call.request.url
    ]


def _run_retries(rt: Runtime) -> None:
    """Run the retries RQ scheduled: RQ dates them by the wall clock, tests by a fake one."""
    registry = ScheduledJobRegistry(queue=rt.lanes.shared)
    for job in Job.fetch_many(registry.get_job_ids(), connection=rt.queue):
        if job is not None:
            registry.remove(job)
            rt.lanes.shared.enqueue_job(job)
    run_jobs(rt)


def test_github_failing_is_retried_and_the_status_lands_once(rt, github, monkeypatch):
    monkeypatch.setattr("stoplight.clients.github.RETRY_BACKOFF_SECONDS", 0)
    _fail_status_writes(github, times=4)  # one request and the client's three quick retries
    deliver(rt, merge_group())
    assert _status_answers(github) == [502] * 4

    _run_retries(rt)  # the job's own retry
    assert _status_answers(github) == [502] * 4 + [201]
    assert github.statuses()[-1] == (GROUP_SHA, "success", MERGE_GROUP_DESCRIPTION)
    _run_retries(rt)
    deliver(rt, merge_group())
    assert _status_answers(github) == [502] * 4 + [201]  # recorded: a redelivery posts nothing


def test_a_throttled_status_waits_for_the_pause_then_lands(rt, github, clock):
    refused: list[str] = []

    def throttle_once(request):
        if not refused:
            refused.append(request.url)
            message = {"message": "You have exceeded a secondary rate limit"}
            return 403, {"Retry-After": "3"}, json.dumps(message)
        return 201, {}, request.body

    github.mock.remove(responses.POST, github.status_route)
    github.mock.add_callback(responses.POST, github.status_route, throttle_once)
    deliver(rt, merge_group())
    assert _status_answers(github) == [403]
    clock.advance(seconds=2)
    run_due_jobs(rt, clock)
    assert _status_answers(github) == [403]  # still paused: nothing goes out
    clock.advance(seconds=1)
    run_due_jobs(rt, clock)
    assert _status_answers(github) == [403, 201]
    assert github.statuses()[-1] == (GROUP_SHA, "success", MERGE_GROUP_DESCRIPTION)


def test_pushes_to_the_queues_branches_record_and_queue_nothing(rt, github):
    deliver(rt, queue_branch_push(), "queue-push")
    deliver(rt, queue_branch_push(deleted=True), "queue-push-deleted")

    assert len(github.mock.calls) == 0  # no configuration read, no status
    stored = {name.decode() for name in rt.redis.scan_iter()}
    assert {name for name in stored if name.startswith("rq:job:")} == set()
    assert {name for name in stored if name.startswith(keys.InstallationKeys(42).root)} == set()
    assert {keys.delivery("queue-push"), keys.delivery("queue-push-deleted")} <= stored
    assert all(rt.queue.xlen(stream) == 0 for stream in rt.lanes.streams)


def test_while_lost_state_is_rebuilt_the_group_is_read_before_it_is_written(rt, github, clock):
    deliver(rt, merge_group(), "group-1")
    rt.redis.delete(keys.InstallationKeys(42).status_posted("octo/shop", GROUP_SHA))
    rebuild.begin(rt.redis, clock.now())  # the ledgers do not know what GitHub shows
    deliver(rt, merge_group(), "group-1-again")
    assert len(group_statuses(github)) == 1
    assert github.gets()[-1] == f"/repos/octo/shop/commits/{GROUP_SHA}/status"
