"""Worker throughput: deliveries applied per second, in one process and by real worker processes.

    python -m benchmarks.worker [--deliveries 5000] [--workers 1 2] [--in-process-only]

On an embedded Redis, with no worker running, N deliveries of a realistic mix (three
installations, two configured teams and one unconfigured repository each; PRs opened, review
requested, pushed to, labelled, reviewed, closed; bodies of GitHub's size) are taken in through
`stoplight.events.intake.accept`, as the webhook takes them. Then:

- in-process: `apply_delivery` on each in a loop, reporting deliveries/s, CPU per delivery in
  this process and in Redis, and Redis round trips per delivery (counted by a connection that
  counts what it sends: a pipeline or transaction block is one). This is the loop to profile:
  `py-spy record -o profile.svg -- python -m benchmarks.worker --in-process-only`.
- with workers: K `stoplight worker --burst` processes started together, timed until all have
  exited (burst mode stops once every lane is empty), for each K asked; then the ratio. An
  idle worker's run before each gives the start-up time and CPU, which the rate "less
  start-up" and the CPU per delivery leave out.

GitHub is unset in the workers (no APP_ID): the pipeline then records effects (the team's dirty
counter and its effects job, as with GitHub) and the effects job ends at once without sending
anything, so the figures are the delivery's own work. The teams' configurations are put in
the configuration cache beforehand, as a worker with GitHub would have fetched them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis import ConnectionPool, Redis, UnixDomainSocketConnection

from benchmarks.payload import pull_request_payload
from stoplight.config.repos import ORG_CONFIG_REPO, RepoConfigs
from stoplight.config.schema import CONFIG_PATH
from stoplight.core.clock import SystemClock
from stoplight.events import intake
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.pipeline.deliveries import apply_delivery
from stoplight.pipeline.runtime import Runtime
from stoplight.settings import Settings
from stoplight.state import keys
from stoplight.transport.lanes import Lanes
from tests.fakes import Pull, Repo, body_of

INSTALLATIONS = (42, 43, 44)
REPOS_PER_INSTALLATION = 5  # four in two configured teams, one a team of its own
OPEN_AT_ONCE = 40  # PRs whose lives interleave in the stream
ORG_CONFIG = """
teams:
  - name: payments
    repos: [shop, billing]
  - name: platform
    repos: [infra, tools]
"""


@dataclass(frozen=True)
class Received:
    delivery_id: str
    event: str
    body: bytes


class CountingConnection(UnixDomainSocketConnection):
    """Counts what it sends to Redis: one command, or one pipeline, is one round trip."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def repos_of(installation_id: int) -> list[Repo]:
    owner = f"org{installation_id}"
    names = ("shop", "billing", "infra", "tools", "docs")[:REPOS_PER_INSTALLATION]
    return [
        Repo(id=installation_id * 100 + n, full_name=f"{owner}/{name}",
             installation_id=installation_id)
        for n, name in enumerate(names)
    ]  # fmt: skip


def life(pull: Pull, start: datetime) -> Iterator[tuple[str, dict[str, Any]]]:
    """One PR's deliveries, from opened to closed."""
    at = (start + timedelta(minutes=minute) for minute in itertools.count())
    pull.reviewers = ["bob"]
    yield pull.event("opened", next(at))
    yield pull.event("review_requested", next(at), requested_reviewer={"login": "carol"})
    if pull.number % 3 == 0:
        yield pull.review("carol", "changes_requested", next(at))
        pull.head_sha = f"{pull.number + 1:040x}"
        yield pull.event("synchronize", next(at))
    yield pull.event("labeled", next(at), label={"name": "backend"})
    yield pull.review("bob", "approved", next(at))
    pull.state = "closed"
    yield pull.event("closed", next(at))


def github_sized(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The small payload the tests build, with the bulk of a real one around it."""
    bulky = pull_request_payload(payload.get("number", 1))
    repository = {**bulky["repository"], **payload["repository"]}
    pull = {**bulky["pull_request"], **payload["pull_request"]}
    for side in ("head", "base"):
        pull[side] = {**bulky["pull_request"][side], **payload["pull_request"][side]}
        pull[side]["repo"] = repository
    return {**payload, "repository": repository, "pull_request": pull, "sender": bulky["sender"]}


def deliveries(count: int, start: datetime) -> list[Received]:
    """`count` deliveries: the lives of many PRs, OPEN_AT_ONCE of them interleaved."""
    repos = [repo for installation in INSTALLATIONS for repo in repos_of(installation)]
    numbers = itertools.count(1)
    lives: list[Iterator[tuple[str, dict[str, Any]]]] = []
    found: list[Received] = []
    while len(found) < count:
        while len(lives) < OPEN_AT_ONCE:
            number = next(numbers)
            pull = Pull(repo=repos[number % len(repos)], number=number, head_sha=f"{number:040x}")
            lives.append(life(pull, start + timedelta(seconds=number)))
        slot = len(found) % len(lives)
        step = next(lives[slot], None)
        if step is None:
            lives.pop(slot)
            continue
        event, payload = step
        body = body_of(github_sized(event, payload))
        found.append(Received(f"bench-{len(found)}", event, body))
    return found


class ConfigFiles:
    """The org-wide configuration file of each installation, read as a worker reads it."""

    def read_file(self, repo: str, path: str) -> str | None:
        return ORG_CONFIG if repo.endswith(f"/{ORG_CONFIG_REPO}") and path == CONFIG_PATH else None


def prepare(redis: Redis, received: list[Received]) -> None:
    """An empty store with the configurations cached and every delivery taken in."""
    redis.flushall()
    for installation_id in INSTALLATIONS:
        configs = RepoConfigs(redis, installation_id, ConfigFiles())
        for repo in repos_of(installation_id):
            configs.reload(repo.full_name)
    lanes = Lanes.on(redis)
    now = datetime.now(UTC)
    for delivery in received:
        installation_id = intake.installation_of(intake.parse_body(delivery.body))
        intake.accept(
            lanes,
            delivery.delivery_id,
            delivery.event,
            delivery.body,
            installation_id=installation_id,
            now=now,
        )


def applied(redis: Redis, received: list[Received]) -> int:
    """How many of the deliveries a worker took (claimed) to apply."""
    with redis.pipeline(transaction=False) as pipe:
        for delivery in received:
            pipe.hexists(keys.delivery(delivery.delivery_id), "claim")
        return sum(pipe.execute())


def redis_cpu(redis: Redis) -> float:
    cpu = redis.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def children_cpu() -> float:
    """CPU seconds of the child processes that have ended (the workers and their forks)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def in_process(url: str, received: list[Received]) -> None:
    pool = ConnectionPool.from_url(url)  # the embedded server's unix socket
    pool.connection_class = CountingConnection
    redis = Redis(connection_pool=pool)
    prepare(redis, received)
    settings = Settings(_env_file=None, REDIS_URL=url, LOG_LEVEL="warning")
    rt = Runtime.create(settings, redis, SystemClock())
    CountingConnection.sent = 0
    redis_before, cpu_before, started = redis_cpu(redis), time.process_time(), time.perf_counter()
    for delivery in received:
        apply_delivery(rt, delivery.delivery_id, delivery.event, delivery.body)
    elapsed = time.perf_counter() - started
    cpu, round_trips = time.process_time() - cpu_before, CountingConnection.sent
    redis_cost = redis_cpu(redis) - redis_before
    n = len(received)
    print(
        f"in-process apply_delivery: {n / elapsed:,.0f} deliveries/s; per delivery "
        f"{cpu / n * 1e3:.2f} ms CPU here + {redis_cost / n * 1e3:.2f} ms in Redis, "
        f"{round_trips / n:.1f} round trips"
    )


def run_workers(url: str, workers: int, log: Path) -> tuple[float, float]:
    """Start `workers` burst workers together; seconds until all ended, and their CPU seconds."""
    env = {**os.environ, "REDIS_URL": url, "LOG_LEVEL": "warning", "DATA_DIR": str(log.parent)}
    for name in ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "SLACK_BOT_TOKEN"):
        env.pop(name, None)
    command = [sys.executable, "-m", "stoplight", "worker", "--burst"]
    cpu_before, started = children_cpu(), time.perf_counter()
    with log.open("ab") as output:
        processes = [
            subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
            for _ in range(workers)
        ]
        failed = [process.args for process in processes if process.wait() != 0]
    if failed:
        raise RuntimeError(f"a worker failed; see {log}")
    return time.perf_counter() - started, children_cpu() - cpu_before


def with_workers(url: str, received: list[Received], workers: int, log: Path) -> float:
    redis = Redis.from_url(url)
    redis.flushall()
    # A worker with nothing to do: how long it takes to start and stop, and its CPU for that.
    start_up_wall, start_up = run_workers(url, 1, log)
    prepare(redis, received)
    redis_before = redis_cpu(redis)
    elapsed, cpu = run_workers(url, workers, log)
    redis_cost = redis_cpu(redis) - redis_before
    done = applied(redis, received)
    if done != len(received):
        raise RuntimeError(f"only {done} of {len(received)} deliveries were applied")
    n = len(received)
    rate, started_rate = n / elapsed, n / max(elapsed - start_up_wall, 1e-3)
    applying = cpu - workers * start_up
    print(
        f"{workers} worker process(es): {rate:,.0f} deliveries/s in {elapsed:.1f} s, "
        f"{started_rate:,.0f}/s less start-up ({start_up_wall:.1f} s); per delivery "
        f"{applying / n * 1e3:.2f} ms CPU in the workers (less {start_up:.1f} s a process "
        f"to start) + {redis_cost / n * 1e3:.2f} ms in Redis"
    )
    return started_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--in-process-only", action="store_true")
    args = parser.parse_args()
    received = deliveries(args.deliveries, datetime.now(UTC) - timedelta(days=1))
    with (
        tempfile.TemporaryDirectory() as scratch,
        EmbeddedRedis(Path(scratch) / "redis", appendonly=False) as server,
    ):
        in_process(server.url, received)
        if args.in_process_only:
            return
        log = Path(scratch) / "workers.log"
        rates = {k: with_workers(server.url, received, k, log) for k in args.workers}
    if len(rates) > 1:
        fewest, most = min(rates), max(rates)
        print(f"{most} workers / {fewest}: {rates[most] / rates[fewest]:.2f}x")


if __name__ == "__main__":
    main()
