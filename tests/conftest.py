"""Fixtures: a real Redis server for the whole session, a fake clock, a faked GitHub API."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import responses
from pytest_httpserver import HTTPServer
from redis import Redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from slack_sdk.http_retry import FixedValueRetryIntervalCalculator

from stoplight.clients import slack
from stoplight.clients.pacing import WriteBudget
from stoplight.events import intake
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.pipeline import deliveries, runtime
from stoplight.pipeline.worker import build_worker
from stoplight.settings import Settings
from stoplight.state import keys
from tests.fakes import FakeClock, body_of, iso, throwaway_private_key
from tests.slack_fake import FakeSlack

API = "https://api.github.com"


def api_root(api: str = API) -> str:
    """The API's base URL as a regex: PyGithub names the port (":443") in some URLs."""
    return re.escape(api) + "(?::443)?"


WEBHOOK_SECRET = "It's a Secret to Everybody"
# Most tests are about what is written, not when: they write without a budget.
UNPACED = WriteBudget(min_gap=timedelta(0), per_minute=10**9, per_hour=10**9)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False) as server:
        yield server


@pytest.fixture
def redis(redis_server: EmbeddedRedis) -> Iterator[Redis]:
    connection = Redis.from_url(redis_server.url)
    connection.flushall()
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def private_key_pem() -> str:
    return throwaway_private_key()


@pytest.fixture
def settings(private_key_pem: str, redis_server: EmbeddedRedis, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        APP_ID=1234,
        PRIVATE_KEY=private_key_pem,
        WEBHOOK_SECRET=WEBHOOK_SECRET,
        REDIS_URL=redis_server.url,
        DATA_DIR=tmp_path,
        BASE_URL="https://stoplight.example",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def mark_as_seen(redis: Redis, clock: FakeClock) -> None:
    """A Redis the app has already seen: a worker's first look finds the state marker and
    heals nothing (tests of a Redis that lost its data delete it, or flush)."""
    redis.set(keys.STATE_MARKER, clock.now().isoformat())


@pytest.fixture
def rt(settings: Settings, redis: Redis, clock: FakeClock) -> Iterator[runtime.Runtime]:
    mark_as_seen(redis, clock)
    with runtime.installed(
        runtime.Runtime.create(settings, redis, clock, budget=UNPACED)
    ) as installed:
        yield installed


class FakeGitHub:
    """GitHub's REST API as `responses` fakes it: tokens, statuses, labels, recorded.

    `files` holds file contents on default branches, by (owner/repo, path); others are 404.
    """

    def __init__(self, mock: responses.RequestsMock, clock: FakeClock, api: str = API) -> None:
        self.mock = mock
        self.clock = clock
        self.api = api
        self.tokens_issued = 0
        self.files: dict[tuple[str, str], str | bytes] = {}
        self.pull_files: dict[tuple[str, int], list[tuple[str, int, int]]] = {}
        root = api_root(api)
        # Routes a test may replace to make GitHub fail or throttle.
        self.status_route = re.compile(rf"{root}/repos/[^/]+/[^/]+/statuses/\w+")
        self.new_label_route = re.compile(rf"{root}/repos/[^/]+/[^/]+/labels")
        self._token_numbers = itertools.count(1)
        mock.add_callback(
            responses.POST, re.compile(rf"{root}/app/installations/\d+/access_tokens"), self._token
        )
        mock.add_callback(responses.POST, self.status_route, self._ok)
        mock.add_callback(responses.POST, self.new_label_route, self._ok)
        mock.add_callback(
            responses.POST, re.compile(rf"{root}/repos/[^/]+/[^/]+/issues/\d+/labels"), self._ok
        )
        mock.add_callback(
            responses.GET, re.compile(rf"{root}/repos/[^/]+/[^/]+/contents/.+"), self._contents
        )
        mock.add_callback(
            responses.GET, re.compile(rf"{root}/repos/[^/]+/[^/]+/pulls/\d+/files.*"), self._files
        )
        mock.add_callback(
            responses.DELETE,
            re.compile(rf"{root}/repos/[^/]+/[^/]+/issues/\d+/labels/.+"),
            self._ok,
        )
        mock.add_callback(
            responses.GET,
            re.compile(rf"{root}/repos/[^/]+/[^/]+/commits/\w+/status(\?.*)?$"),
            self._combined_status,
        )

    def _token(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.tokens_issued += 1
        expires = self.clock.now() + timedelta(hours=1)
        installation = request.url.split("/installations/")[1].split("/")[0]
        # The token names its installation, so fakes can tell who is asking.
        token = f"ghs_test{next(self._token_numbers)}_for_{installation}"
        return 201, {}, json.dumps({"token": token, "expires_at": iso(expires)})

    def _contents(self, request: Any) -> tuple[int, dict[str, str], str]:
        found = re.search(r"/repos/([^/]+/[^/]+)/contents/([^?]+)", request.url)
        assert found is not None
        text = self.files.get((found[1], found[2]))
        if text is None:
            return 404, {}, json.dumps({"message": "Not Found"})
        data = text.encode() if isinstance(text, str) else text
        content = base64.b64encode(data).decode()
        name = found[2].rsplit("/", 1)[-1]
        body = {"type": "file", "encoding": "base64", "path": found[2], "name": name,
                "size": len(data)}  # fmt: skip
        return 200, {}, json.dumps({**body, "content": content})

    def _files(self, request: Any) -> tuple[int, dict[str, str], str]:
        found = re.search(r"/repos/([^/]+/[^/]+)/pulls/(\d+)/files", request.url)
        assert found is not None
        files = self.pull_files.get((found[1], int(found[2])), [])
        body = [
            {"filename": name, "additions": added, "deletions": deleted, "status": "modified"}
            for name, added, deleted in files
        ]
        return 200, {}, json.dumps(body)

    def _combined_status(self, request: Any) -> tuple[int, dict[str, str], str]:
        """The latest status of each context posted to the commit, as GitHub combines them."""
        found = re.search(r"/repos/([^/]+/[^/]+)/commits/(\w+)/status", request.url)
        assert found is not None
        latest: dict[str, Any] = {}
        for method, path, body in self.writes():
            if method == "POST" and path == f"/repos/{found[1]}/statuses/{found[2]}":
                latest[body["context"]] = body
        return 200, {}, json.dumps({"sha": found[2], "statuses": list(latest.values())})

    def put_config(self, repo: str, text: str | bytes) -> None:
        self.files[(repo, ".github/stoplight.yml")] = text

    @staticmethod
    def _ok(request: Any) -> tuple[int, dict[str, str], str]:
        return 201 if request.method == "POST" else 200, {}, request.body or "{}"

    def writes(self) -> list[tuple[str, str, Any]]:
        """Every write after token exchange: (method, path, JSON body)."""
        found = []
        for call in self.mock.calls:
            request = call.request
            if "access_tokens" in request.url or request.method == "GET":
                continue
            body = json.loads(request.body) if request.body else None
            found.append((request.method, _path(request.url), body))
        return found

    def statuses(self) -> list[tuple[str, str, str]]:
        """(sha, state, description) of every status posted, in order."""
        return [
            (path.rsplit("/", 1)[1], body["state"], body["description"])
            for method, path, body in self.writes()
            if "/statuses/" in path
        ]

    def carried_labels(self, repo: str, number: int) -> set[str]:
        """The labels a PR carries, replayed from the label writes."""
        prefix = f"/repos/{repo}/issues/{number}/labels"
        carried: set[str] = set()
        for method, path, body in self.writes():
            if method == "POST" and path == prefix:
                carried |= set(body)
            elif method == "DELETE" and path.startswith(prefix + "/"):
                carried.discard(unquote(path[len(prefix) + 1 :]))
        return carried

    def gets(self) -> list[str]:
        """Paths of every GET, in order."""
        return [_path(call.request.url) for call in self.mock.calls if call.request.method == "GET"]


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+(/api/v3)?", "", url)


@pytest.fixture
def fake_slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    """Slack's Web API and incoming webhooks on a local server; retries without pauses."""
    monkeypatch.setattr(slack, "RETRY_INTERVAL", FixedValueRetryIntervalCalculator(0))
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield FakeSlack(server)
    server.clear()
    server.stop()


@pytest.fixture
def github(clock: FakeClock) -> Iterator[FakeGitHub]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeGitHub(mock, clock)


def deliver(
    rt: runtime.Runtime, event: tuple[str, dict[str, Any]], delivery_id: str | None = None
) -> None:
    """Take a delivery in as the webhook does, then run every job it sets off."""
    name, payload = event
    accept(rt, delivery_id or f"d-{next(_delivery_numbers)}", name, body_of(payload))
    run_jobs(rt)


def accept(rt: runtime.Runtime, delivery_id: str, name: str, body: bytes) -> intake.Outcome:
    """Take a delivery in as the webhook does, without running its job."""
    return intake.accept(
        rt.lanes, delivery_id, name, body, installation_id=owner_of(body), now=rt.clock.now()
    )


@pytest.fixture
def applied_deliveries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Delivery ids in the order workers applied them."""
    order: list[str] = []
    apply = deliveries.apply_delivery

    def recording(rt: runtime.Runtime, delivery_id: str, event: str, body: bytes) -> None:
        order.append(delivery_id)
        apply(rt, delivery_id, event, body)

    monkeypatch.setattr(deliveries, "apply_delivery", recording)
    return order


def owner_of(body: bytes) -> int:
    """The installation a body names, as intake sees it; 0 for a body that is no JSON object."""
    try:
        payload = json.loads(body)
    except ValueError:
        return 0
    return intake.installation_of(payload) if isinstance(payload, dict) else 0


_delivery_numbers = itertools.count(1)


def run_jobs(rt: runtime.Runtime) -> None:
    build_worker(rt).work(burst=True, with_scheduler=False)


def run_due_jobs(rt: runtime.Runtime, clock: FakeClock) -> int:
    """Move the jobs scheduled up to the fake clock's now into the queue, then run all jobs.

    RQ's own scheduler compares with the wall clock; tests move time with the fake one.
    """
    due = 0
    for lane in rt.lanes.queues:
        registry = ScheduledJobRegistry(queue=lane)
        job_ids = registry.get_jobs_to_schedule(int(clock.now().timestamp()))
        for job in Job.fetch_many(job_ids, connection=rt.queue):
            if job is not None:
                registry.remove(job)
                lane.enqueue_job(job)
        due += len(job_ids)
    run_jobs(rt)
    return due
