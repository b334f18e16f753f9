"""Queue store: cost of moving a PR, of reading a team's measures, and Redis memory per PR.

    python -m benchmarks.queue [--pulls 20000]

Measures must stay flat as the queue grows (a sorted set and a counter, never a scan).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis import Redis

from stoplight.core.changes import PullChange, PullSnapshot
from stoplight.core.pulls import Rules
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.state.review_queue import QueueStore, Team

START = datetime(2026, 11, 2, 9, tzinfo=UTC)
TEAM = Team(key="octo/shop", name="octo/shop")


def opened(number: int) -> PullChange:
    at = START + timedelta(seconds=number)
    pull = PullSnapshot(
        repo_id=1001, repo="octo/shop", number=number, title=f"Change {number}",
        url=f"https://github.com/octo/shop/pull/{number}", author="alice", author_is_bot=False,
        head_sha=f"{number:040x}", draft=False, open=True, updated_at=at, additions=40,
        deletions=10, requested_reviewers=("bob",),
    )  # fmt: skip
    return PullChange(action="opened", pull=pull, at=at)


def measures_cost(store: QueueStore, reads: int = 2000) -> float:
    started = time.perf_counter()
    for _ in range(reads):
        store.measures(TEAM.key)
    return (time.perf_counter() - started) / reads * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulls", type=int, default=20000)
    args = parser.parse_args()
    with EmbeddedRedis(Path(tempfile.mkdtemp()) / "redis", appendonly=False) as server:
        redis = Redis.from_url(server.url)
        store = QueueStore(redis, 42)
        baseline = redis.info("memory")["used_memory"]
        print(f"{'waiting PRs':>12} {'apply µs':>10} {'measures µs':>12}")
        done = 0
        for checkpoint in sorted({c for c in (100, 1000, 10000) if c < args.pulls} | {args.pulls}):
            batch = range(done + 1, checkpoint + 1)
            started = time.perf_counter()
            for number in batch:
                store.apply(opened(number), TEAM, Rules(), START + timedelta(days=1))
            apply_cost = (time.perf_counter() - started) / len(batch) * 1e6
            done = checkpoint
            print(f"{done:>12,} {apply_cost:>10.0f} {measures_cost(store):>12.0f}")
        per_pull = (redis.info("memory")["used_memory"] - baseline) / done
        print(f"Redis memory per open PR: {per_pull:,.0f} bytes")
        assert store.measures(TEAM.key).waiting == done


if __name__ == "__main__":
    main()
