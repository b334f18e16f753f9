"""The image and the compose file's services, run: signed deliveries to the web container
become `stoplight` statuses at a fake GitHub on the host; each container is healthy and stops
within its grace period; Redis restarted from its append-only file keeps the queue; and an
upgrade from the previous release, workers first, loses no delivery."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from compose import (
    FAILED,
    Project,
    docker,
    docker_succeeds,
    logs,
    published_url,
    step,
    stop_seconds,
    wait_healthy,
)

from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS
from stoplight.state.upgrade import KEY_SCHEMA_VERSION
from tests.fakes import Pull, Repo, body_of, sign, throwaway_private_key
from tests.github_server import FakeGitHubState, serve_fake_github

WEBHOOK_SECRET = "container-test-secret"
WEB_PORT = 3000
DELIVERY_SECONDS = 60  # a delivery refused (Redis restarting) is sent again until then
STATUS_SECONDS = 90


@pytest.fixture
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    made = Project(f"stoplight-test-{os.getpid()}-{time.monotonic_ns()}", tmp_path / ".env")
    made.create()
    try:
        yield made
    finally:
        if request.node.stash.get(FAILED, False):
            for container in made.containers:
                print(f"\n--- {container}\n{logs(container)}")
        made.remove()


@pytest.fixture
def github(project: Project) -> Iterator[FakeGitHubState]:
    with serve_fake_github(host=project.gateway()) as (address, state):
        # What the compose file reads from deploy/.env: the app's settings, one a line (the
        # key's line breaks written out as \n, as hosting dashboards keep it).
        key = throwaway_private_key().strip().replace("\n", "\\n")
        project.env_file.write_text(
            "APP_ID=1234\n"
            f"PRIVATE_KEY={key}\n"
            f"WEBHOOK_SECRET={WEBHOOK_SECRET}\n"
            f"GHE_HOST={address}\n"
            "GHE_PROTOCOL=http\n"
        )
        yield state


def deliver(url: str, pull: Pull, delivery: str) -> None:
    """Posts the PR's `opened` as GitHub would, again while it is refused, as GitHub's
    redelivery (or `stoplight redeliver`) would."""
    name, payload = pull.event("opened", datetime.now(UTC))
    body = body_of(payload)
    headers = {
        "X-GitHub-Event": name,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
        "Content-Type": "application/json",
    }
    deadline = time.monotonic() + DELIVERY_SECONDS
    while True:
        try:
            answer = requests.post(
                f"{url}/api/github/webhooks", data=body, headers=headers, timeout=5
            )
            if answer.status_code == 202:
                return
            refusal = f"{answer.status_code} {answer.text}"
        except requests.RequestException as error:
            refusal = str(error)
        assert time.monotonic() < deadline, f"delivery {delivery} refused: {refusal}"
        time.sleep(0.5)


def wait_for(
    condition: Callable[[], object],
    what: str,
    timeout: float = STATUS_SECONDS,
    found: Callable[[], object] = lambda: None,
) -> None:
    """Waits for `condition`; on timeout, says what was `found` instead."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}; found {found()}"
        time.sleep(0.2)


def latest_statuses(github: FakeGitHubState) -> dict[str, dict]:
    # The fake keeps a commit's statuses newest first, as GitHub lists them.
    with github.lock:
        return {sha: written[0] for sha, written in github.statuses.items() if written}


def stoplight_status(github: FakeGitHubState, pull: Pull) -> dict | None:
    status = latest_statuses(github).get(pull.head_sha)
    return status if status and status["context"] == "stoplight" else None


def ready_workers(url: str) -> int:
    try:
        answer = requests.get(f"{url}/readyz", timeout=2)
    except requests.RequestException:
        return 0
    return answer.json().get("workers", 0) if answer.status_code == 200 else 0


def redis_cli(project: Project, *args: str) -> str:
    return docker("exec", f"{project.name}-redis-1", "redis-cli", *args)


def start_redis(project: Project) -> str:
    redis = project.run("redis")
    # depends_on: condition: service_healthy, as Compose waits
    wait_healthy(redis)
    return redis


def test_services_take_deliveries_to_statuses_keep_the_queue_and_stop_in_time(
    project: Project, github: FakeGitHubState, image: str
) -> None:
    with step("Redis healthy"):
        redis = start_redis(project)
    with step("web and two workers ready"):
        web = project.run("web", image=image)
        workers = [project.run("worker", number, image=image) for number in (1, 2)]
        url = published_url(web, WEB_PORT)
        wait_for(lambda: ready_workers(url) == 2, "/readyz counts both workers")

    # One team's queue: three PRs leave it green, a fourth turns it yellow.
    pulls = [Pull(number=n, head_sha=f"{n}" * 40) for n in (1, 2, 3, 4)]
    with step("three deliveries to `stoplight` statuses"):
        for pull in pulls[:3]:
            deliver(url, pull, f"opened-{pull.number}")
        wait_for(lambda: all(stoplight_status(github, p) for p in pulls[:3]), "three statuses")
    assert {stoplight_status(github, p)["state"] for p in pulls[:3]} == {"success"}

    with step("Redis killed and started again from its append-only file"):
        time.sleep(1.5)  # appendfsync everysec: the last second's writes reach the file
        docker("kill", redis)
        docker("start", redis)
        wait_healthy(redis)
    with step("a fourth PR turns the surviving queue yellow"):
        deliver(url, pulls[3], "opened-4")
        yellow = DESCRIPTIONS[Level.YELLOW]
        wait_for(
            lambda: all(
                (status := stoplight_status(github, p)) and status["description"] == yellow
                for p in pulls
            ),
            "four yellow statuses: the three PRs were still waiting",
            found=lambda: latest_statuses(github),
        )

    with step("every container healthy by its own check"):
        for container in (web, *workers, redis):
            wait_healthy(container)
    for container, service in [(web, "web"), *((w, "worker") for w in workers), (redis, "redis")]:
        grace = project.grace_seconds(service)
        took = stop_seconds(container)
        print(f"\n  docker stop {service}: {took:.1f} s (grace period {grace} s)", end="")
        assert took < grace


class Deliveries:
    """A delivery every quarter second, each a PR of an installation of its own (so the
    one-write-a-second pace per installation does not hold statuses back), to whichever web
    container `url` names at the time."""

    INTERVAL_SECONDS = 0.25

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: list[Pull] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="deliveries", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        assert self.errors == []

    def wait_for_more(self, count: int) -> None:
        target = len(self.sent) + count
        wait_for(lambda: len(self.sent) >= target or self.errors, f"{count} more deliveries")

    def _send(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            repo = Repo(id=5000 + number, full_name=f"octo/r{number}", installation_id=number)
            pull = Pull(repo=repo, number=1, head_sha=f"{number:040x}")
            try:
                deliver(self.url, pull, f"upgrade-{number}")
            except BaseException as error:  # the test fails on it, in its own thread
                self.errors.append(error)
                return
            self.sent.append(pull)
            time.sleep(self.INTERVAL_SECONDS)


def heartbeats(container: str) -> bool:
    """The image's health check passes in the container (a worker's: its heartbeat)."""
    return docker_succeeds("exec", container, "python", "-m", "stoplight.ops.healthcheck")


def test_upgrade_from_the_previous_release_workers_first_loses_no_delivery(
    project: Project, github: FakeGitHubState, image: str, previous_image: str
) -> None:
    with step("the previous release: Redis, web and two workers ready"):
        start_redis(project)
        old_web = project.run("web", image=previous_image)
        old_workers = [project.run("worker", n, image=previous_image) for n in (1, 2)]
        deliveries = Deliveries(published_url(old_web, WEB_PORT))
        wait_for(lambda: ready_workers(deliveries.url) == 2, "the old workers heartbeat")
    deliveries.start()
    deliveries.wait_for_more(8)

    with step("workers rolled, one at a time, with deliveries flowing"):
        for number, old in zip((3, 4), old_workers, strict=True):
            new = project.run("worker", number, image=image)
            wait_for(lambda new=new: heartbeats(new), f"{new} heartbeats")
            docker("stop", old)
            deliveries.wait_for_more(4)
    # Each new worker renames the earlier version's keys at start-up.
    assert redis_cli(project, "get", "stoplight:key-schema") == str(KEY_SCHEMA_VERSION)

    with step("web rolled: the new one up, traffic moved, the old one stopped"):
        new_web = project.run("web", 2, image=image)
        new_url = published_url(new_web, WEB_PORT)
        wait_for(lambda: ready_workers(new_url) == 2, "the new web sees both workers")
        deliveries.url = new_url
        deliveries.wait_for_more(2)
        docker("stop", old_web)
        deliveries.wait_for_more(8)
    deliveries.stop()

    with step("`stoplight migrate` once the last old process stopped"):
        migrated = project.run_once(image, "stoplight", "migrate")
    # The old workers wrote old names until they stopped; migrate renames those, and leaves
    # (and counts) the few whose new names the new workers had written meanwhile.
    renamed = re.search(r"^(\d+) keys renamed$", migrated, re.MULTILINE)
    left = re.search(r"^(\d+) keys of the earlier version left", migrated, re.MULTILINE)
    assert renamed, migrated
    old_names = redis_cli(project, "--scan", "--pattern", "stoplight:i:[0-9]*").split()
    assert len(old_names) == (int(left[1]) if left else 0), (migrated, old_names)

    with step(f"every one of {len(deliveries.sent)} PRs' statuses on GitHub"):
        wait_for(
            lambda: all(stoplight_status(github, pull) for pull in deliveries.sent),
            "a status for every PR",
            found=lambda: [p.head_sha for p in deliveries.sent if not stoplight_status(github, p)],
        )
