"""Recovery from a Redis that lost everything: a sync reads what GitHub shows before writing."""

from __future__ import annotations

import re

from stoplight.core.light import Level
from stoplight.pipeline import sync
from stoplight.state.review_queue import QueueStore
from tests.conftest import run_jobs
from tests.fakes import Pull
from tests.test_sync import GitHubReads

SHOP_TEAM = "octo/shop"


def test_a_sync_over_a_wiped_redis_writes_nothing_github_already_shows(rt, github, clock):
    reads = GitHubReads(github, {42: ["octo/shop"]})
    pulls = [Pull(number=n, head_sha=f"{n:040x}", additions=10 * n) for n in range(1, 5)]
    for pull in pulls:
        reads.add(pull, clock.now())
    sync.sync_all(rt)
    run_jobs(rt)
    store = QueueStore(rt.redis, 42)
    assert store.light(SHOP_TEAM).level is Level.YELLOW
    assert len(github.statuses()) == 4
    writes, calls = len(github.writes()), len(github.mock.calls)

    rt.redis.flushall()  # a new Redis: queues, ledgers, tokens, all gone
    clock.advance(minutes=5)
    sync.sync_all(rt)
    run_jobs(rt)

    assert store.light(SHOP_TEAM).level is Level.YELLOW
    assert github.writes()[writes:] == []
    reads_since = [call.request.url for call in github.mock.calls[calls:]]
    status_reads = [url for url in reads_since if re.search(r"/commits/\w+/status$", url)]
    assert len(status_reads) == 4  # one read of the combined status per head commit
