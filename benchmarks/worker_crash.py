"""Recovery from a killed worker: how long a team goes without GitHub writes, and until settled.

    python -m benchmarks.worker_crash [--runs 3] [--pulls 12]

Two `stoplight worker` processes against one Redis and a local fake GitHub; a burst of opened
PRs; the worker in the middle of the team's fan-out is killed with SIGKILL together with its
scheduler process (its process group, as when a machine or container is lost) while one of its
status writes is in flight. Reported per run: seconds from the kill to the next GitHub write,
and to the team showing its light on every PR.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from redis import Redis

from stoplight.effects.plan import DESCRIPTIONS
from stoplight.events import intake
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.state.keys import InstallationKeys
from stoplight.state.review_queue import QueueStore
from stoplight.transport.lanes import Lanes
from tests.fakes import Pull, body_of, throwaway_private_key
from tests.github_server import FakeGitHubState, serve_fake_github

TEAM = "octo/shop"


def worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "stoplight", "worker"]
    with log.open("ab") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def settled(redis: Redis, state: FakeGitHubState, pulls: list[Pull]) -> bool:
    light = QueueStore(redis, 42).light(TEAM)
    if light is None or redis.exists(InstallationKeys(42).team(TEAM).effects_dirty):
        return False
    with state.lock:
        latest = {sha: posted[0]["description"] for sha, posted in state.statuses.items()}
    return all(latest.get(pull.head_sha) == DESCRIPTIONS[light.level] for pull in pulls)


def one_run(redis_url: str, key: str, pulls_count: int, log: Path) -> tuple[float, float]:
    redis = Redis.from_url(redis_url)
    redis.flushall()
    lanes = Lanes.on(redis)
    now = datetime.now(UTC)
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, pulls_count + 1)]
    with serve_fake_github() as (host, state):
        state.hold_status_number = pulls_count // 2
        for pull in pulls:
            event, payload = pull.event("opened", now)
            intake.accept(lanes, f"run-{pull.number}", event, body_of(payload),
                          installation_id=42, now=now)  # fmt: skip
        env = {
            **os.environ, "APP_ID": "1", "PRIVATE_KEY": key, "WEBHOOK_SECRET": "secret",
            "REDIS_URL": redis_url, "GHE_HOST": host, "GHE_PROTOCOL": "http",
            "BASE_URL": "https://stoplight.example", "LOG_LEVEL": "info",
        }  # fmt: skip
        victim = worker(env, log)
        survivor = None
        try:
            if not state.held.wait(timeout=60):
                raise RuntimeError("the fan-out never reached the held write")
            survivor = worker(env, log)
            time.sleep(2)  # the second worker is up and waiting for jobs
            with state.lock:
                writes_before = len(state.writes)
            os.killpg(victim.pid, signal.SIGKILL)
            killed = time.monotonic()
            victim.wait()
            state.release.set()
            first_write = None
            while not settled(redis, state, pulls):
                with state.lock:
                    if first_write is None and len(state.writes) > writes_before:
                        first_write = time.monotonic() - killed
                if time.monotonic() - killed > 300:
                    raise RuntimeError("not settled five minutes after the kill")
                time.sleep(0.05)
            done = time.monotonic() - killed
            return (first_write if first_write is not None else done), done
        finally:
            for process in (victim, survivor):
                if process is not None and process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=30)
            redis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pulls", type=int, default=7)  # red, with held PRs, at 8
    args = parser.parse_args()
    key = throwaway_private_key()
    with tempfile.TemporaryDirectory() as scratch, EmbeddedRedis(Path(scratch)) as server:
        log = Path(scratch) / "workers.log"
        results = [one_run(server.url, key, args.pulls, log) for _ in range(args.runs)]
    for number, (first, done) in enumerate(results, 1):
        print(
            f"run {number}: next write {first:5.1f} s after the kill, settled after {done:5.1f} s"
        )
    firsts, dones = zip(*results, strict=True)
    median_first, median_done = statistics.median(firsts), statistics.median(dones)
    print(f"median: next write {median_first:.1f} s, settled {median_done:.1f} s")
    print(f"worst: next write {max(firsts):.1f} s, settled {max(dones):.1f} s")


if __name__ == "__main__":
    main()
