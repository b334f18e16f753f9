"""The state's transactions and scripts on a real Redis Cluster of three masters.

Every key of an installation carries its id as a hash tag, so each transaction and script
(all of one installation's keys) runs on the one node that owns the slot. RQ's lanes are not
cluster-safe: they go on a Redis of their own (REDIS_QUEUE_URL), and the last test runs the
web tier and two workers that way.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from redis import Redis
from redis.cluster import RedisCluster, key_slot
from redis.exceptions import RedisClusterException
from rq import Queue

from stoplight.clients.pacing import Pacer, WriteBudget
from stoplight.core.changes import PullChange, PullSnapshot, ReviewChange
from stoplight.core.light import Level, LightState, Measures, Policy, Thresholds, evaluate
from stoplight.core.pulls import Rules
from stoplight.effects.ledgers import record
from stoplight.state import keys
from stoplight.state.history import read_history
from stoplight.state.installations import Installation, installation_ids
from stoplight.state.review_queue import QueueStore, Team
from tests.fakes import FakeClock, Pull
from tests.github_server import serve_fake_github
from tests.redis_cluster import redis_cluster
from tests.redis_servers import Server, free_port, servers, until
from tests.test_crash import _settled, _worker_env, worker_process
from tests.test_end_to_end import post_delivery

pytestmark = pytest.mark.slow

WEB, API = Team("web", "web"), Team("api", "api")
POLICY = Policy(yellow=Thresholds(waiting=2), red=Thresholds(waiting=3), cooldown=timedelta(0))


@pytest.fixture(scope="session")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def cluster(cluster_server: RedisCluster) -> RedisCluster:
    cluster_server.flushall()
    return cluster_server


def snapshot(number: int, at: datetime) -> PullSnapshot:
    return PullSnapshot(
        repo_id=1001, repo="octo/shop", number=number, title=f"PR {number}",
        url=f"https://github.com/octo/shop/pull/{number}", author="alice", author_is_bot=False,
        head_sha=f"{number:040x}", draft=False, open=True, updated_at=at, additions=5,
        deletions=5,
    )  # fmt: skip


def opened(store: QueueStore, number: int, clock: FakeClock) -> None:
    change = PullChange(action="opened", pull=snapshot(number, clock.now()), at=clock.now())
    store.apply(change, WEB, Rules(), clock.now())
    store.update_light(WEB.key, lambda measures, previous: _decide(measures, previous, clock))


def approved(store: QueueStore, number: int, clock: FakeClock) -> None:
    review = ReviewChange(action="submitted", pull=snapshot(number, clock.now()), reviewer="bob",
                          state="approved", commit_id=f"{number:040x}", at=clock.now())  # fmt: skip
    store.apply(review, WEB, Rules(), clock.now())
    store.update_light(WEB.key, lambda measures, previous: _decide(measures, previous, clock))


def _decide(measures: Measures, previous: LightState | None, clock: FakeClock) -> LightState:
    return evaluate(measures, POLICY, previous, clock.now()).state


def test_every_key_of_an_installation_hashes_to_one_slot():
    installation = keys.InstallationKeys(42)
    team = installation.team("web@octo/shop")
    ledger = installation.status_posted("octo/shop", "a" * 40)
    names = [
        installation.teams, installation.token, installation.writes, installation.writes_paused,
        installation.deleted, installation.repositories, installation.waiting_deliveries,
        installation.sync_lock, installation.pulls_etag("octo/shop"), installation.pull("1#1"),
        ledger, installation.sending(ledger), installation.labels_on("1#1"),
        installation.labels_in_repo("octo/shop"), installation.config("octo/shop"),
        installation.files("octo/shop", "a" * 40), installation.team_homes,
        team.waiting, team.lines, team.held, team.held_order, team.open, team.light,
        team.effects_lock, team.effects_dirty, team.slack_notice("red"),
        team.history.lights, team.history.samples, team.history.entries, team.history.exits,
    ]  # fmt: skip
    assert {key_slot(name.encode()) for name in names} == {key_slot(b"42")}
    assert key_slot(keys.InstallationKeys(43).root.encode()) != key_slot(b"42")


def test_the_queue_store_holds_admits_and_moves_prs_on_a_cluster(cluster):
    clock = FakeClock()
    store = QueueStore(cluster, 42)
    for number in range(1, 5):
        opened(store, number, clock)
        clock.advance(minutes=1)
    assert store.light(WEB.key).level is Level.RED
    assert store.measures(WEB.key).waiting == 3
    assert store.held_keys(WEB.key) == ["1001#4"]

    approved(store, 1, clock)
    approved(store, 2, clock)
    assert [record.key for record in store.admit_held(WEB.key, POLICY, Rules(), clock.now())] == [
        "1001#4"
    ]
    assert store.measures(WEB.key).waiting == 2

    assert store.move_repository("octo/shop", API, clock.now()) == {WEB.key}
    assert (store.measures(WEB.key).waiting, store.measures(API.key).waiting) == (0, 2)
    assert store.forget_repository("octo/shop", clock.now()) == {API.key}
    assert store.measures(API.key).waiting == 0
    assert installation_ids(cluster) == [42]


def test_history_is_written_in_the_stores_transactions_on_a_cluster(cluster):
    clock = FakeClock()
    store = QueueStore(cluster, 42)
    start = clock.now()
    opened(store, 1, clock)
    clock.advance(minutes=5)
    approved(store, 1, clock)

    history = read_history(cluster, 42, WEB.key, start, clock.now())

    assert [entry.pull for entry in history.entries] == ["1001#1"]
    assert [(exit.pull, exit.waiting_since) for exit in history.exits] == [("1001#1", start)]
    assert [change.level for change in history.lights] == [Level.GREEN]
    assert [sample.waiting for sample in history.samples] == [1, 0]


def test_ledgers_write_budget_and_registry_on_a_cluster(cluster):
    installation = keys.InstallationKeys(42)
    ledger = installation.status_posted("octo/shop", "a" * 40)
    cluster.set(installation.sending(ledger), "intent")
    record(cluster, ledger, installation.sending(ledger), "posted")
    assert cluster.get(ledger) == b"posted"
    assert not cluster.exists(installation.sending(ledger))

    clock = FakeClock()
    pacer = Pacer(cluster, clock, WriteBudget(min_gap=timedelta(seconds=1)))
    assert pacer.acquire(42) is None
    assert pacer.acquire(42) == clock.now() + timedelta(seconds=1)
    assert pacer.pause(42, clock.now() + timedelta(minutes=5)) == clock.now() + timedelta(minutes=5)

    registry = Installation(cluster, 42)
    registry.grant_exactly([1001])
    assert registry.admission(1001).granted and not registry.admission(1002).granted
    registry.forget()
    assert registry.admission(1001).deleted
    assert installation_ids(cluster) == []


def test_rq_cannot_take_jobs_from_lanes_in_two_slots(cluster):
    lanes = [Queue(name, connection=cluster) for name in ("stoplight-a", "stoplight-b")]
    assert len({key_slot(lane.key.encode()) for lane in lanes}) == 2
    with pytest.raises(RedisClusterException, match="same key slot"):
        Queue.dequeue_any(lanes, timeout=1, connection=cluster)


def _keys_on(cluster: RedisCluster) -> set[str]:
    found: set[str] = set()
    for node in cluster.get_primaries():
        with Redis(host=node.host, port=node.port) as client:
            found.update(name.decode() for name in client.keys("*"))
    return found


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_web_and_two_workers_run_with_the_state_on_the_cluster_and_the_lanes_beside_it(
    cluster, settings, tmp_path
):
    node = cluster.get_primaries()[0]
    lanes_server = Server(tmp_path / "lanes", free_port())
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, 4)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with servers(lanes_server), serve_fake_github() as (host, github):
        env = {
            **_worker_env(settings, host),
            "REDIS_URL": f"redis+cluster://{node.host}:{node.port}",
            "REDIS_QUEUE_URL": lanes_server.url,
        }
        web_env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2"}
        web_env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the server's settings make their own
        with (
            (tmp_path / "web.log").open("wb") as web_log,
            subprocess.Popen(
                [sys.executable, "-m", "stoplight.ops.web_server"],
                env=web_env,
                cwd=tmp_path,
                stdout=web_log,
                stderr=subprocess.STDOUT,
            ) as web,
            worker_process(env, tmp_path / "worker-1.log"),
            worker_process(env, tmp_path / "worker-2.log"),
        ):
            try:
                until(lambda: _ready(base), "the web tier to see both workers")
                for pull in pulls:
                    event = pull.event("opened", datetime.now(UTC))
                    answer = post_delivery(base, event, f"cluster-{pull.number}")
                    assert answer.status_code == 202, answer.text
                lanes = lanes_server.client()
                until(
                    lambda: _settled(cluster, github, pulls, "octo/shop", lanes),
                    "every PR to show the team's light",
                )
                state, queue = _keys_on(cluster), {name.decode() for name in lanes.keys("*")}
            finally:
                web.terminate()
        with github.lock:
            assert {sha: len(posted) for sha, posted in github.statuses.items()} == {
                pull.head_sha: 1 for pull in pulls
            }  # one status each: nothing written twice
    assert keys.InstallationKeys(42).team("octo/shop").light in state
    assert keys.STATE_MARKER in state and keys.STATE_MARKER in queue
    assert not any(name.startswith(("rq:", "stoplight:deliveries:")) for name in state)
    assert "stoplight:deliveries:stoplight" in queue and "rq:workers" in queue
    for log in ("web.log", "worker-1.log", "worker-2.log"):
        assert "Traceback" not in (tmp_path / log).read_text(), log
