"""`stoplight sync`: the queue state rebuilt from the GitHub API, without needless writes."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from rq.registry import ScheduledJobRegistry

from stoplight.cli import main
from stoplight.core.pulls import Phase
from stoplight.pipeline import runtime, sync
from stoplight.state import keys
from stoplight.state.review_queue import QueueStore
from tests.conftest import UNPACED, FakeGitHub, api_root, deliver, mark_as_seen, run_jobs
from tests.fakes import Pull, Repo, iso
from tests.github_server import serve_fake_github

ROOT = api_root()


class GitHubReads:
    """The read side of the fake API that a sync uses: open PRs, reviews, sizes."""

    def __init__(self, github: FakeGitHub, installations: dict[int, list[str]]) -> None:
        mock = github.mock
        self.github = github
        self.installations = installations
        self.pulls: dict[str, dict[int, dict[str, Any]]] = {}
        self.reviews: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.commit_dates: dict[str, datetime] = {}
        query = r"(\?.*)?$"
        mock.add_callback(
            responses.GET, re.compile(rf"{ROOT}/app/installations{query}"), self._apps
        )
        mock.add_callback(
            responses.GET, re.compile(rf"{ROOT}/installation/repositories{query}"), self._repos
        )
        mock.add_callback(
            responses.GET, re.compile(rf"{ROOT}/repos/([^/]+/[^/]+)/pulls{query}"), self._list
        )
        mock.add_callback(
            responses.GET, re.compile(rf"{ROOT}/repos/([^/]+/[^/]+)/pulls/(\d+){query}"), self._one
        )
        mock.add_callback(
            responses.GET,
            re.compile(rf"{ROOT}/repos/([^/]+/[^/]+)/pulls/(\d+)/reviews{query}"),
            self._reviews,
        )
        mock.add_callback(
            responses.GET,
            re.compile(rf"{ROOT}/repos/[^/]+/[^/]+/commits/(\w+){query}"),
            self._commit,
        )

    def add(self, pull: Pull, at, reviews: list[dict[str, Any]] = ()) -> None:
        self.pulls.setdefault(pull.repo.full_name, {})[pull.number] = pull.as_json(at)
        self.reviews[(pull.repo.full_name, pull.number)] = list(reviews)

    @staticmethod
    def _path(request: Any) -> str:
        return re.sub(rf"^{ROOT}", "", request.url.split("?")[0])

    def _apps(self, request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps([{"id": i} for i in self.installations])

    def _repos(self, request: Any) -> tuple[int, dict[str, str], str]:
        installation = int(request.headers["Authorization"].rpartition("_for_")[2])
        repos = [
            {"id": 1001, "full_name": name, "name": name.split("/")[1]}
            for name in self.installations[installation]
        ]
        return 200, {}, json.dumps({"total_count": len(repos), "repositories": repos})

    def _list(self, request: Any) -> tuple[int, dict[str, str], str]:
        repo = self._path(request).split("/pulls")[0].removeprefix("/repos/")
        listed = [p for p in self.pulls.get(repo, {}).values() if p["state"] == "open"]
        listed = [
            {k: v for k, v in p.items() if k not in ("additions", "deletions")}
            | {"labels": self._labels(repo, p)}
            for p in listed
        ]
        body = json.dumps(listed)
        etag = f'"{abs(hash(body))}"'
        if request.headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, ""
        return 200, {"ETag": etag}, body

    def _labels(self, repo: str, pull: dict[str, Any]) -> list[dict[str, str]]:
        """The PR's own labels and those the app put on it."""
        carried = self.github.carried_labels(repo, pull["number"])
        return [{"name": name} for name in sorted(carried | {n["name"] for n in pull["labels"]})]

    def _one(self, request: Any) -> tuple[int, dict[str, str], str]:
        _, _, owner, name, _, number = self._path(request).split("/")
        return 200, {}, json.dumps(self.pulls[f"{owner}/{name}"][int(number)])

    def _commit(self, request: Any) -> tuple[int, dict[str, str], str]:
        sha = self._path(request).rpartition("/")[2]
        if sha not in self.commit_dates:
            return 404, {}, json.dumps({"message": "No commit found for SHA"})
        committer = {"name": "Ada", "date": iso(self.commit_dates[sha])}
        return 200, {}, json.dumps({"sha": sha, "commit": {"committer": committer}})

    def _reviews(self, request: Any) -> tuple[int, dict[str, str], str]:
        _, _, owner, name, _, number, _ = self._path(request).split("/")
        return 200, {}, json.dumps(self.reviews[(f"{owner}/{name}", int(number))])


@pytest.fixture
def reads(github):
    return GitHubReads(github, {42: ["octo/shop"]})


def _review(login: str, state: str, commit: str, at) -> dict[str, Any]:
    return {
        "user": {"login": login, "type": "User"},
        "state": state,
        "commit_id": commit,
        "submitted_at": iso(at),
    }


def _wipe_queue_state(rt, installation_id: int) -> None:
    """Lose every record of the queue but the ledger of what was posted."""
    root = keys.InstallationKeys(installation_id).root
    for name in rt.redis.scan_iter(match=f"{root}:*"):
        if b":posted:" not in name and not name.endswith(b":token"):
            rt.redis.delete(name)


def _opened_queue(rt, reads, clock) -> list[Pull]:
    pulls = [Pull(number=n, head_sha=f"{n:040x}", additions=10 * n) for n in range(1, 6)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
        reads.add(pull, clock.now())
        clock.advance(minutes=10)
    approved = pulls[0]
    deliver(rt, approved.review("bob", "approved", clock.now()))
    reads.add(approved, clock.now(), [_review("bob", "APPROVED", approved.head_sha, clock.now())])
    return pulls


def test_sync_after_a_wipe_restores_the_lights_without_posting_again(rt, github, reads, clock):
    _opened_queue(rt, reads, clock)
    store = QueueStore(rt.redis, 42)
    light, measures = store.light("octo/shop"), store.measures("octo/shop")
    writes = len(github.writes())

    _wipe_queue_state(rt, 42)
    assert store.light("octo/shop") is None
    report = sync.sync_all(rt)
    run_jobs(rt)

    assert report is not None and report.pulls == 5
    assert store.light("octo/shop").level == light.level
    assert store.measures("octo/shop") == measures
    assert store.pull("1001#1").phase is Phase.APPROVED
    assert len(github.writes()) == writes  # every status and label already stood


def test_sync_finds_a_missed_close_and_a_missed_approval(rt, github, reads, clock):
    pulls = _opened_queue(rt, reads, clock)
    store = QueueStore(rt.redis, 42)
    closed, approved = pulls[1], pulls[2]
    clock.advance(minutes=5)
    closed.state = "closed"
    reads.add(closed, clock.now())
    reads.add(approved, clock.now(), [_review("carol", "APPROVED", approved.head_sha, clock.now())])

    report = sync.sync_all(rt)
    run_jobs(rt)
    assert report.closed == 1
    assert store.pull("1001#2").phase is Phase.CLOSED
    assert store.pull("1001#3").phase is Phase.APPROVED
    assert store.measures("octo/shop").waiting == 2


def test_an_unchanged_repository_costs_one_conditional_request(rt, github, reads, clock):
    _opened_queue(rt, reads, clock)
    sync.sync_all(rt)
    before = len(github.mock.calls)
    report = sync.sync_all(rt)
    new_calls = [call.request for call in github.mock.calls[before:]]
    listed = [r for r in new_calls if "/pulls" in r.url]
    assert report.unchanged_repositories == 1
    assert len(listed) == 1 and listed[0].headers.get("If-None-Match")


def test_one_sync_at_a_time(rt, github, reads):
    held = rt.redis.lock(keys.SYNC_LOCK, timeout=60)
    assert held.acquire(blocking=False)
    assert sync.sync_all(rt) is None
    held.release()


def test_a_new_installation_is_synced_and_the_schedule_keeps_one_run_ahead(
    rt, github, reads, clock
):
    pull = Pull()
    reads.add(pull, clock.now())
    created = {
        "action": "created",
        "installation": {"id": 42},
        "repositories": [{"id": 1001, "full_name": "octo/shop"}],
    }
    deliver(rt, ("installation", created))
    assert QueueStore(rt.redis, 42).measures("octo/shop").waiting == 1

    sync.ensure_sync_scheduled(rt)
    sync.ensure_sync_scheduled(rt)
    scheduled = [
        job
        for job in ScheduledJobRegistry(queue=rt.lanes.shared).get_job_ids()
        if job.startswith(sync.SCHEDULED_SYNC_PREFIX)
    ]
    assert len(scheduled) == 1


def test_the_sync_command_reports_what_it_read(rt, settings, github, reads, clock):
    _opened_queue(rt, reads, clock)
    env = {
        "APP_ID": str(settings.app_id),
        "PRIVATE_KEY": settings.private_key.get_secret_value(),
        "REDIS_URL": settings.redis_url,
    }
    result = CliRunner().invoke(main, ["sync"], env=env)
    assert result.exit_code == 0, result.output
    assert "synced 1 installations, 1 repositories, 5 open PRs (0 found closed)" in result.output


def test_a_pr_known_only_from_a_sync_counts_lines_as_its_team_says(rt, github, reads, clock):
    github.put_config("octo/shop", "size: {exclude: ['*.lock']}")
    github.pull_files[("octo/shop", 1)] = [("yarn.lock", 800, 0), ("src/app.py", 40, 10)]
    reads.add(Pull(additions=840, deletions=10), clock.now())  # its opening was missed

    sync.sync_all(rt)
    run_jobs(rt)
    assert QueueStore(rt.redis, 42).measures("octo/shop").lines == 50
    assert ("POST", "/repos/octo/shop/issues/1/labels", ["size/M"]) in github.writes()


def test_sync_drops_a_repository_the_installation_no_longer_grants(rt, github, reads, clock):
    _opened_queue(rt, reads, clock)
    gone = Pull(repo=Repo(id=1002, full_name="octo/gone"), head_sha="9" * 40)
    deliver(rt, gone.event("opened", clock.now()))
    store = QueueStore(rt.redis, 42)
    assert store.measures("octo/gone").waiting == 1

    sync.sync_all(rt)  # the `installation_repositories` removal was missed
    run_jobs(rt)
    assert store.pull("1002#1") is None
    assert store.measures("octo/gone").waiting == 0
    assert store.measures("octo/shop").waiting == 4


def test_the_sync_interval_comes_from_the_environment(rt, clock):
    rt.settings = rt.settings.model_copy(update={"sync_interval_hours": 1.5})
    sync.ensure_sync_scheduled(rt)
    registry = ScheduledJobRegistry(queue=rt.lanes.shared)
    [scheduled] = registry.get_job_ids()
    expected = (clock.now() + timedelta(hours=1.5)).replace(second=0, microsecond=0)
    assert registry.get_scheduled_time(scheduled) == expected


def test_a_sync_interval_that_is_not_positive_is_refused():
    result = CliRunner().invoke(main, ["status"], env={"SYNC_INTERVAL_HOURS": "0"})
    assert result.exit_code == 1
    assert "invalid environment: SYNC_INTERVAL_HOURS: Input should be greater than 0" in (
        result.output
    )


def test_a_pr_pushed_to_after_a_verdict_waits_from_the_push(rt, github, reads, clock):
    opened = clock.now()
    verdict, push = opened + timedelta(days=1), opened + timedelta(days=2)
    pushed, unknown = Pull(number=1, head_sha="b" * 40), Pull(number=2, head_sha="c" * 40)
    for pull in (pushed, unknown):
        reads.add(pull, opened, [_review("bob", "CHANGES_REQUESTED", "a" * 40, verdict)])
        reads.pulls["octo/shop"][pull.number]["updated_at"] = iso(push)
    reads.commit_dates["b" * 40] = push  # the other head's commit cannot be read
    clock.advance(days=2, hours=1)

    sync.sync_all(rt)
    store = QueueStore(rt.redis, 42)
    assert store.pull("1001#1").wait_since == push
    assert store.pull("1001#2").wait_since == verdict  # never before the verdict it answers


def test_the_local_fake_github_serves_a_sync_what_its_deliveries_told(settings, redis, clock):
    """The fake GitHub that real worker processes and benchmarks.chaos talk to answers a sync
    from the deliveries it was fed, as GitHub would after sending them."""
    opened, other = Pull(number=1, head_sha="a" * 40), Pull(number=2, head_sha="b" * 40)
    with serve_fake_github() as (host, github):
        for event in (
            opened.event("opened", clock.now()),
            opened.review("bob", "approved", clock.now() + timedelta(minutes=5)),
            other.event("opened", clock.now()),
            replace(other, state="closed").event("closed", clock.now() + timedelta(minutes=9)),
        ):
            github.learn(*event)
        local = settings.model_copy(update={"ghe_host": host, "ghe_protocol": "http"})
        mark_as_seen(redis, clock)
        with runtime.installed(runtime.Runtime.create(local, redis, clock, budget=UNPACED)) as rt:
            report = sync.sync_all(rt)
    assert (report.installations, report.repositories, report.pulls) == (1, 1, 1)
    record = QueueStore(redis, 42).pull("1001#1")
    assert record is not None and record.phase is Phase.APPROVED
    assert QueueStore(redis, 42).pull("1001#2") is None  # closed: not in GitHub's open list
