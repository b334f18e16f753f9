"""Chaos, measured: the org day through the production shape while a worker dies, Redis
restarts and Redis loses its data; then every PR's status and labels beside a fresh
recomputation from GitHub's state.

    python -m benchmarks.chaos [--seed 7] [--repos 12] [--pulls 80] [--installations 4]
                               [--heal-repos 50] [--heal-pulls 1900] [--keep DIR]

The production shape, on 127.0.0.1: two web processes (`python -m stoplight.ops.web_server`,
WEB_CONCURRENCY=2), two `stoplight worker` processes (each with its scheduler), one
redis-server with its append-only file (fsync always), and the fake GitHub of
tests/github_server.py, which learns from every delivery what GitHub holds (repositories,
open PRs, reviews) and so answers a sync as GitHub would. The org day's deliveries
(benchmarks/org_day.py, its times moved to end a minute ago, its repositories spread over
`--installations` installations so GitHub's pace of writes allows a run of minutes) are
signed and posted to the web tier in five rounds, each at a steady rate:

1. no fault (how long a round takes to settle without one);
2. SIGKILL of one worker's process group halfway through, started again 2 s later, as a
   supervisor would;
3. SIGKILL of redis-server halfway through, started again from its append-only file 5 s
   later: deliveries answered 503 meanwhile are asked for again by the app, and the fake
   GitHub sends them again, as GitHub's redelivery does;
4. FLUSHALL halfway through (a Redis restarted without its file, or failed over to an empty
   replica): the app notices, syncs every installation from GitHub and asks for what failed;
5. no fault.

A round has settled when no delivery is in flight, the lanes are empty, no team's effects
are due and GitHub has seen no request for 3 s; the time to settle is counted from the
fault. Then a fresh recomputation syncs every installation from the same fake GitHub into a
scratch Redis and applies the effects: its ledgers are seeded from what GitHub shows, so
every write it makes is a status or label the run left wrong (target 0). Also printed:
deliveries never accepted (target 0) and writes that changed nothing on GitHub (target 0).
GitHub's `labeled` deliveries for the app's own label writes are not simulated.

Last, the heal of a bigger org (`--heal-repos`, `--heal-pulls`: 50 repositories, about 500
PRs left open, one installation): GitHub is made to show every PR's status and labels (a
recomputation posts them), the production shape starts on an empty Redis and settles, then
FLUSHALL: the seconds to settle again, the GitHub reads it took, and its writes (target 0).
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from redis import Redis

from benchmarks.org_day import CONFIG_PATH, ORG, duplicate_writes, org_config, org_day, pull_files
from benchmarks.org_history import iso
from stoplight.backtest.history import Recorded
from stoplight.clients.pacing import WriteBudget
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.pipeline import runtime, sync
from stoplight.pipeline.worker import build_worker
from stoplight.settings import Settings
from stoplight.state import keys, rebuild
from stoplight.transport.lanes import Lanes
from tests.fakes import body_of, sign, throwaway_private_key
from tests.github_server import FakeGitHubState, serve_fake_github
from tests.redis_servers import Server, free_port

SECRET = "a webhook secret of the chaos run"  # logs redact it wherever it appears
FIRST_INSTALLATION = 91
RATE = 40  # deliveries a second, per round
QUIET_SECONDS = 3.0  # no GitHub request for this long, with nothing queued: settled
SETTLE_TIMEOUT = 600.0
# The recomputation writes nothing it need not: no pacing to wait out in its own process.
UNPACED = WriteBudget(min_gap=timedelta(0), per_minute=10**9, per_hour=10**9)


def spread(deliveries: list[Recorded], installations: int) -> list[Recorded]:
    """The org day, its times moved to end a minute ago and its repositories spread over
    `installations` installations."""
    shift = datetime.now(UTC) - timedelta(minutes=1) - deliveries[-1].at
    moved = []
    for recorded in deliveries:
        payload = _shifted(recorded.payload, shift)
        repo_index = payload["repository"]["id"] % installations
        payload["installation"] = {"id": FIRST_INSTALLATION + repo_index}
        moved.append(Recorded(recorded.at + shift, recorded.event, payload, recorded.delivery))
    return moved


def _shifted(value: Any, shift: timedelta) -> Any:
    if isinstance(value, dict):
        return {
            key: _moved_time(item, shift) if key.endswith("_at") else _shifted(item, shift)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_shifted(item, shift) for item in value]
    return value


def _moved_time(value: Any, shift: timedelta) -> Any:
    if not isinstance(value, str):
        return value
    return iso(datetime.fromisoformat(value.replace("Z", "+00:00")) + shift)


@dataclass
class Delivery:
    id: str
    event: str
    body: bytes
    answers: list[int] = field(default_factory=list)  # status of each attempt; 0: no answer

    @property
    def accepted(self) -> bool:
        return any(200 <= status < 300 for status in self.answers)


class Sender:
    """Posts deliveries to the web tier as GitHub does, and records each attempt where the
    app's redelivery looks for failures (GitHub's list of the hook's deliveries)."""

    def __init__(self, url: str, github: FakeGitHubState) -> None:
        self.url = url
        self.github = github
        self.sent: dict[str, Delivery] = {}
        self.by_attempt: dict[int, Delivery] = {}
        self.attempts = itertools.count(1)
        self.in_flight = 0
        self.lock = threading.Lock()
        github.on_redeliver = self.redeliver

    def learn(self, recorded: Recorded) -> None:
        """GitHub holds what the delivery tells of before it sends it."""
        self.github.learn(recorded.event, recorded.payload)
        if recorded.event.startswith("pull_request"):
            pull = recorded.payload["pull_request"]
            key = (recorded.payload["repository"]["full_name"], pull["number"])
            self.github.pull_files[key] = pull_files(recorded.payload)

    def first(self, recorded: Recorded, number: int) -> None:
        self.learn(recorded)
        delivery = Delivery(f"chaos-{number}", recorded.event, body_of(recorded.payload))
        self.sent[delivery.id] = delivery
        self.post(delivery)

    def redeliver(self, attempt: int) -> None:
        delivery = self.by_attempt[attempt]
        with self.lock:
            self.in_flight += 1  # counted now, so no round settles before it is sent
        threading.Thread(target=self._post_counted, args=(delivery,), daemon=True).start()

    def _post_counted(self, delivery: Delivery) -> None:
        try:
            self.post(delivery)
        finally:
            with self.lock:
                self.in_flight -= 1

    def post(self, delivery: Delivery) -> None:
        headers = {
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Delivery": delivery.id,
            "X-Hub-Signature-256": sign(SECRET, delivery.body),
            "Content-Type": "application/json",
        }
        try:
            answer = requests.post(self.url, data=delivery.body, headers=headers, timeout=10)
            status = answer.status_code
        except requests.RequestException:
            status = 0
        attempt = next(self.attempts)
        with self.lock:
            delivery.answers.append(status)
            self.by_attempt[attempt] = delivery
        record = {"id": attempt, "guid": delivery.id, "status_code": status,
                  "delivered_at": iso(datetime.now(UTC)), "event": delivery.event}  # fmt: skip
        with self.github.lock:
            self.github.hook_deliveries.insert(0, record)  # GitHub lists the newest first

    def busy(self) -> bool:
        with self.lock:
            return self.in_flight > 0


class Shape:
    """Web processes, workers and one Redis with its append-only file, on 127.0.0.1."""

    def __init__(self, directory: Path, github_host: str) -> None:
        self.directory = directory
        self.redis_server = Server(directory / "redis", free_port())
        self.port = free_port()
        self.env = {
            **os.environ,
            "APP_ID": "1",
            "PRIVATE_KEY": throwaway_private_key(),
            "WEBHOOK_SECRET": SECRET,
            "REDIS_URL": self.redis_server.url,
            "GHE_HOST": github_host,
            "GHE_PROTOCOL": "http",
            "BASE_URL": "https://stoplight.example",
            "LOG_LEVEL": "info",
        }
        self.workers: list[subprocess.Popen[bytes] | None] = [None, None]
        self.web: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/github/webhooks"

    def start(self) -> None:
        self.redis_server.start()
        env = {**self.env, "HOST": "127.0.0.1", "PORT": str(self.port), "WEB_CONCURRENCY": "2"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.web = self._spawn([sys.executable, "-m", "stoplight.ops.web_server"], "web", env)
        for index in range(len(self.workers)):
            self.start_worker(index)
        _until(lambda: _answers(f"http://127.0.0.1:{self.port}/readyz"), "/readyz", 60)

    def _spawn(self, command: list[str], name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.directory / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start_worker(self, index: int) -> None:
        command = [sys.executable, "-m", "stoplight", "worker"]
        self.workers[index] = self._spawn(command, f"worker-{index}", self.env)

    def kill_worker(self, index: int) -> None:
        """SIGKILL to the worker's process group (its scheduler too): a lost machine."""
        process = self.workers[index]
        assert process is not None
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in [self.web, *self.workers]:
            if process is not None and process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        self.redis_server.stop()

    def tracebacks(self) -> int:
        return sum(log.read_text().count("Traceback") for log in self.directory.glob("*.log"))


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _until(condition: Callable[[], object], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def idle(redis: Redis) -> bool:
    """Nothing waits in the lanes and no team's effects are due."""
    try:
        lanes = Lanes.on(redis)
        if any(lanes.waiting_deliveries().values()) or any(q.count for q in lanes.queues):
            return False
        dirty = redis.scan_iter(match=f"{keys.PREFIX}:i:*:effects:dirty", count=1000)
        return next(iter(dirty), None) is None
    except Exception:  # Redis away: not idle
        return False


def settle(shape: Shape, sender: Sender, github: FakeGitHubState) -> float:
    """Wait until the round has settled; the monotonic moment it did."""
    redis = shape.redis_server.client()
    deadline = time.monotonic() + SETTLE_TIMEOUT
    quiet_since, seen = time.monotonic(), -1
    while time.monotonic() < deadline:
        with github.lock:
            requests_seen = len(github.requests)
        if requests_seen != seen or sender.busy() or not idle(redis):
            quiet_since, seen = time.monotonic(), requests_seen
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            return quiet_since
        time.sleep(0.2)
    raise RuntimeError("the round did not settle")


def send_round(
    sender: Sender, batch: list[tuple[int, Recorded]], fault: Callable[[], None] | None
) -> float:
    """Post the batch at RATE a second, the fault halfway; the monotonic moment of the fault
    (or of the last delivery)."""
    moment = 0.0
    for index, (number, recorded) in enumerate(batch):
        if fault is not None and index == len(batch) // 2:
            moment = time.monotonic()
            fault()
        started = time.monotonic()
        sender.first(recorded, number)
        time.sleep(max(0.0, 1 / RATE - (time.monotonic() - started)))
    return moment or time.monotonic()


def heal_time(seed: int, repos: int, pulls: int, directory: Path) -> None:
    """How long the production shape takes to heal a FLUSHALL for an org of `repos`
    repositories whose PRs GitHub shows with their statuses and labels: the reads it makes,
    the writes (target 0), the seconds to settle."""
    day = spread(org_day(seed, repos, pulls), installations=1)
    with serve_fake_github() as (host, github):
        github.files[(f"{ORG}/.github", CONFIG_PATH)] = org_config()
        sender = Sender("", github)
        for recorded in day:
            sender.learn(recorded)
        # GitHub shows what the app had posted: a recomputation posts it.
        open_pulls = recompute(host, directory / "before")
        with production_shape(directory / "shape", host) as shape:
            settle(shape, sender, github)  # the first start's own sync
            with github.lock:
                requests_before, writes_before = len(github.requests), len(github.writes)
            wiped = time.monotonic()
            shape.redis_server.client().flushall()
            settled = settle(shape, sender, github)
            with github.lock:
                made = github.requests[requests_before:]
                writes = len(github.writes) - writes_before
    reads = sum(1 for _, method, _ in made if method == "GET")
    print(
        f"heal of an org of {repos} repositories and {open_pulls} open PRs after FLUSHALL: "
        f"settled in {settled - wiped:.1f} s, {reads} GitHub reads, {writes} writes (target 0)"
    )


def recompute(github_host: str, directory: Path) -> int:
    """Sync every installation from the fake GitHub into a scratch Redis and apply the
    effects; the number of writes that makes (its ledgers are seeded from GitHub)."""
    with EmbeddedRedis(directory / "recompute") as server:
        settings = Settings(
            _env_file=None,
            APP_ID=1,
            PRIVATE_KEY=throwaway_private_key(),
            REDIS_URL=server.url,
            GHE_HOST=github_host,
            GHE_PROTOCOL="http",
            BASE_URL="https://stoplight.example",
            DATA_DIR=directory,
        )
        rt = runtime.Runtime.create(settings, budget=UNPACED)
        rebuild.mark_scratch(rt.redis, datetime.now(UTC))
        with runtime.installed(rt):
            report = sync.sync_all(rt)
            assert report is not None
            build_worker(rt).work(burst=True, with_scheduler=False, logging_level="WARNING")
        rt.redis.close()
    return report.pulls


def _round_of(write: tuple[str, str, Any], marked: list[tuple[str, str, Any]]) -> str:
    """The round in which `write` was last made."""
    found, current = "", ""
    for each in marked:
        if each[0] == "ROUND":
            current = each[1]
        elif each == write:
            found = current
    return found


@contextmanager
def production_shape(directory: Path, github_host: str) -> Iterator[Shape]:
    shape = Shape(directory, github_host)
    try:
        shape.start()
        yield shape
    finally:
        shape.stop()


def run_rounds(shape: Shape, sender: Sender, rounds: list[list[tuple[int, Recorded]]]) -> None:
    """The five rounds, each with its fault, printing how long each took to settle."""
    redis = shape.redis_server.client()

    def kill_worker() -> None:
        shape.kill_worker(0)
        threading.Timer(2, shape.start_worker, args=(0,)).start()

    def restart_redis() -> None:
        shape.redis_server.kill()
        threading.Timer(5, shape.redis_server.start).start()

    def wipe_redis() -> None:
        redis.flushall()

    faults: list[tuple[str, Callable[[], None] | None]] = [
        ("no fault", None),
        ("a worker SIGKILLed", kill_worker),
        ("Redis SIGKILLed, restarted from its AOF", restart_redis),
        ("Redis FLUSHALL", wipe_redis),
        ("no fault", None),
    ]
    for (name, fault), batch in zip(faults, rounds, strict=True):
        with sender.github.lock:
            sender.github.writes.append(("ROUND", name, None))  # for attributing writes
        moment = send_round(sender, batch, fault)
        settled = settle(shape, sender, sender.github)
        print(f"  {name:<40} {len(batch):4d} deliveries, settled {settled - moment:5.1f} s "
              f"after {'the fault' if fault else 'the last'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repos", type=int, default=12)
    parser.add_argument("--pulls", type=int, default=80)
    parser.add_argument("--installations", type=int, default=4)
    parser.add_argument("--keep", type=Path, help="keep the processes' logs and Redis here")
    parser.add_argument("--heal-repos", type=int, default=50)
    parser.add_argument("--heal-pulls", type=int, default=1900, help="about 500 left open")
    args = parser.parse_args()
    day = list(enumerate(spread(org_day(args.seed, args.repos, args.pulls), args.installations)))
    size = -(-len(day) // 5)
    rounds = [day[start : start + size] for start in range(0, len(day), size)]
    print(
        f"org day: {len(day)} deliveries, {args.pulls} PRs, {args.repos} repositories over "
        f"{args.installations} installations; five rounds at {RATE} deliveries/s"
    )
    with (
        tempfile.TemporaryDirectory(prefix="stoplight-chaos-") as tmp,
        serve_fake_github() as (host, github),
    ):
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        github.files[(f"{ORG}/.github", CONFIG_PATH)] = org_config()
        started = time.monotonic()
        with production_shape(directory, host) as shape:
            sender = Sender(shape.url, github)
            run_rounds(shape, sender, rounds)
            tracebacks = shape.tracebacks()
        seconds = time.monotonic() - started
        writes = [write for write in github.writes if write[0] != "ROUND"]
        marked = list(github.writes)
        pulls = recompute(host, directory)
        mismatches = github.writes[len(marked) :]
    attempts = [status for delivery in sender.sent.values() for status in delivery.answers]
    refused = sum(1 for status in attempts if not 200 <= status < 300)
    lost = [delivery.id for delivery in sender.sent.values() if not delivery.accepted]
    print(f"  {seconds:.0f} s in all, {len(writes)} GitHub writes, {tracebacks} tracebacks logged")
    print(
        f"  {len(attempts)} attempts, {refused} answered 503 or not at all, "
        f"{len(github.redelivered)} asked for again by the app"
    )
    print(f"deliveries never accepted: {len(lost)} (target 0) {lost[:5] if lost else ''}")
    doubled = duplicate_writes(writes)
    print(f"writes that changed nothing on GitHub: {len(doubled)} (target 0)")
    for write in doubled[:10]:
        print(f"    in round {_round_of(write, marked)!r}: {write[0]} {write[1]} {write[2]}")
    print(
        f"statuses and labels a fresh recomputation over {pulls} open PRs would change: "
        f"{len(mismatches)} (target 0)"
    )
    for method, path, body in mismatches[:10]:
        print(f"    {method} {path} {body}")
    with tempfile.TemporaryDirectory(prefix="stoplight-heal-") as tmp:
        heal_time(args.seed, args.heal_repos, args.heal_pulls, args.keep or Path(tmp))


if __name__ == "__main__":
    main()
