"""A real worker process, and the web tier, through a Redis that loses its data or goes away."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler

from stoplight.pipeline import worker as worker_module
from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.worker import build_worker, run_worker
from stoplight.state import keys, locks
from stoplight.state.connection import Patience, connect
from stoplight.web import create_app
from tests.conftest import UNPACED, accept
from tests.fakes import FakeClock, Pull, body_of
from tests.github_server import serve_fake_github
from tests.redis_servers import Server, free_port, servers, until
from tests.test_crash import _settled, _worker_env, worker_process

TEAM = "octo/shop"


def _open(rt: Runtime, pull: Pull, clock: FakeClock) -> None:
    event, payload = pull.event("opened", clock.now())
    accept(rt, f"loss-{pull.number}", event, body_of(payload))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _ready(app) -> int:
    return app.test_client().get("/readyz").status_code


@pytest.mark.slow
def test_a_worker_outlives_a_flushall_heals_and_goes_on(rt, settings, tmp_path):
    clock = FakeClock(datetime.now(UTC))
    before, after = (Pull(number=n, head_sha=f"{n:040x}") for n in (1, 2))
    log = tmp_path / "worker.log"
    app = create_app(settings, rt.redis, clock)
    with serve_fake_github() as (host, github):
        _open(rt, before, clock)
        with worker_process(_worker_env(settings, host), log) as worker:
            until(lambda: _settled(rt.redis, github, [before], TEAM), "the first delivery")
            until(lambda: _ready(app) == 200, "the worker to be ready")
            # A delivery GitHub could not hand over while Redis was away: the heal asks for it.
            failed = {"id": 7, "guid": "lost", "status_code": 503, "delivered_at": _now()}
            github.hook_deliveries.append(failed)

            rt.redis.flushall()  # a Redis restarted without its append-only file
            until(lambda: github.redelivered == [7], "the heal to ask for the failed delivery")
            _open(rt, after, clock)
            until(lambda: _settled(rt.redis, github, [after], TEAM), "a delivery after the loss")
            until(lambda: _ready(app) == 200, "the worker to be known again")
            scheduler_lock = RQScheduler.get_locking_key(rt.lanes.shared.name)
            until(lambda: rt.redis.exists(scheduler_lock), "RQ's scheduler to lock its lane again")
            assert worker.poll() is None
            assert rt.redis.exists(keys.STATE_MARKER)

    text = log.read_text()
    assert text.count("Redis lost its data (last seen") == 1  # one worker heals, once
    assert text.count("the delivery streams are gone") == 1
    assert text.count("registered it again") == 1
    assert "Traceback" not in text


@pytest.mark.slow
def test_readyz_is_503_while_redis_is_away_and_200_once_it_is_back(settings, tmp_path):
    server = Server(tmp_path / "redis", free_port())
    with servers(server):
        redis_settings = settings.model_copy(update={"redis_url": server.url})
        rt = Runtime.create(redis_settings, budget=UNPACED)
        build_worker(rt).register_birth()  # a worker beating, as far as /readyz can tell
        app = create_app(redis_settings)
        assert _ready(app) == 200

        server.kill()
        assert _ready(app) == 503
        server.start()  # its append-only file held the worker's registration
        until(lambda: _ready(app) == 200, "/readyz to see Redis again", timeout=15)


class Pauses:
    """A sleep that records each pause and, after `limit` of them, stops the worker loop as
    a SIGTERM would."""

    def __init__(self, limit: int) -> None:
        self.taken: list[float] = []
        self.limit = limit

    def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)
        if len(self.taken) == self.limit:
            raise StopRequested


def test_a_worker_starts_again_after_pauses_that_double_to_a_minute(settings, caplog):
    impatient = Patience(connect_timeout=0.1, socket_timeout=0.1, retries=0, backoff_cap=0)
    dead = connect(f"redis://127.0.0.1:{free_port()}/0", impatient)
    rt = Runtime.create(settings, dead, budget=UNPACED)
    pauses = Pauses(limit=9)
    run_worker(rt, sleep=pauses)
    assert pauses.taken == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert caplog.text.count("Redis does not answer") == 9


def test_a_worker_that_ran_a_while_starts_again_after_the_first_pause(settings, monkeypatch):
    rt = Runtime.create(settings, budget=UNPACED)
    ticks = iter(range(0, 10_000, 100))  # each worker "runs" 100 s, then 200, 300...
    elapsed = {"now": 0.0}

    def monotonic() -> float:
        return elapsed["now"]

    def work_then_fail(self, *args, **kwargs):
        elapsed["now"] += next(ticks)
        raise RedisConnectionError("gone")

    monkeypatch.setattr(worker_module.StoplightWorker, "work", work_then_fail)
    pauses = Pauses(limit=4)
    run_worker(rt, sleep=pauses, monotonic=monotonic)
    # 0 s and 100 s runs: pauses grow; 200 s and 300 s runs outlast RESTART_RESET_SECONDS.
    assert pauses.taken == [1, 2, 1, 1]


def test_a_stop_ends_the_loop_without_another_worker(rt, monkeypatch):
    started: list[int] = []

    def stopped_by_signal(self, *args, **kwargs):
        started.append(1)
        self.stopping = True
        return True

    monkeypatch.setattr(worker_module.StoplightWorker, "work", stopped_by_signal)
    run_worker(rt, sleep=pytest.fail)
    assert started == [1]


def test_run_worker_stops_between_pauses_on_a_signal(rt, monkeypatch):
    """A worker that stopped on an error waits; a SIGTERM in that wait ends the loop."""
    started: list[int] = []

    def fails(self, *args, **kwargs):
        started.append(1)
        return False  # RQ's loop returned on an error it logged

    monkeypatch.setattr(worker_module.StoplightWorker, "work", fails)
    pauses = Pauses(limit=1)
    run_worker(rt, sleep=pauses)
    assert started == [1] and pauses.taken == [1]


def test_a_lock_gone_from_under_its_holder_is_let_go_with_a_line(redis, caplog):
    lock = redis.lock("stoplight:test:lock", timeout=10)
    assert lock.acquire(blocking=False)
    redis.flushall()
    locks.release(lock, "test lock")
    assert "the test lock was gone by the time it was released" in caplog.text
