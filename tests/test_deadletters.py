"""Poison deliveries: one that raises every time, runs out of time or kills its worker is
tried 3 times and set aside, while the deliveries after it go on; `stoplight deadletters`
lists them and puts one back."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from stoplight import cli, metrics
from stoplight.pipeline import deliveries, runtime
from stoplight.state import keys
from stoplight.state.review_queue import QueueStore
from stoplight.transport import dead_letters, poison, records
from stoplight.transport.lanes import WORKERS_GROUP, Lanes
from tests.conftest import UNPACED, accept, run_jobs
from tests.fakes import FakeClock, Pull, body_of
from tests.github_server import serve_fake_github
from tests.test_crash import _wait_for, _worker_env

APPLY = deliveries.apply_delivery
FAILURE = "RuntimeError: the handler fails on this payload"


def _accept(rt: runtime.Runtime, delivery_id: str, number: int) -> None:
    name, payload = Pull(number=number, head_sha=f"{number:040x}").event("opened", rt.clock.now())
    accept(rt, delivery_id, name, body_of(payload))


def _waiting(redis: Redis) -> int:
    return QueueStore(redis, 42).measures("octo/shop").waiting


def _run_retries(rt: runtime.Runtime) -> None:
    """Run the retries RQ scheduled: RQ dates them by the wall clock, tests by a fake one."""
    registry = ScheduledJobRegistry(queue=rt.lanes.shared)
    for job in Job.fetch_many(registry.get_job_ids(), connection=rt.redis):
        if job is not None and job.id.startswith("delivery-"):
            registry.remove(job)
            rt.lanes.shared.enqueue_job(job)
    run_jobs(rt)


def _settled_streams(redis: Redis) -> bool:
    """Every entry of the lanes' streams acknowledged and gone: nothing will be redelivered."""
    for stream in Lanes.on(redis).streams:
        if redis.xlen(stream) or redis.xpending(stream, WORKERS_GROUP)["pending"]:
            return False
    return True


def _dead_lettered(redis: Redis, event: str = "pull_request") -> float:
    samples = metrics.DEAD_LETTERS.collect(redis).samples
    assert all(sample.name == "stoplight_deliveries_dead_lettered_total" for sample in samples)
    return sum(sample.value for sample in samples if sample.labels == {"event": event})


@pytest.fixture
def tries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Deliveries whose id starts with `poison` raise whenever they are applied; every try."""
    tried: list[str] = []

    def raising(rt: runtime.Runtime, delivery_id: str, event: str, body: bytes) -> None:
        tried.append(delivery_id)
        if delivery_id.startswith("poison"):
            raise RuntimeError("the handler fails on this payload")
        APPLY(rt, delivery_id, event, body)

    monkeypatch.setattr(deliveries, "apply_delivery", raising)
    return tried


def test_a_delivery_that_raises_every_time_is_set_aside_after_3_tries(rt, github, tries, caplog):
    _accept(rt, "poison-1", 1)
    _accept(rt, "good-2", 2)

    run_jobs(rt)  # the stream's try and the good delivery, then the job it hands over to
    assert tries == ["poison-1", "good-2", "poison-1"]
    assert _waiting(rt.redis) == 1  # good-2 went on
    assert dead_letters.listed(rt.redis) == []
    _run_retries(rt)  # RQ's retry: the third try
    _run_retries(rt)  # and nothing after it

    assert tries.count("poison-1") == 3
    [letter] = dead_letters.listed(rt.redis)
    assert letter.delivery_id == "poison-1"
    assert (letter.event, letter.installation_id, letter.repo) == ("pull_request", 42, "octo/shop")
    assert (letter.reason, letter.attempts, letter.at) == (FAILURE, 3, rt.clock.now())
    assert _dead_lettered(rt.redis) == 1
    assert _settled_streams(rt.redis)
    assert "delivery-poison-1" not in ScheduledJobRegistry(queue=rt.lanes.shared).get_job_ids()
    [said] = [r for r in caplog.records if "set aside" in r.getMessage()]
    assert said.levelno == logging.ERROR
    assert said.getMessage().startswith("delivery poison-1 (pull_request, octo/shop) set aside")
    assert _waiting(rt.redis) == 1  # the poison one never got in


def test_tries_that_raised_and_tries_that_died_count_together(rt, github, tries):
    _accept(rt, "poison-1", 1)
    rt.redis.hincrby(keys.delivery("poison-1"), records.ATTEMPTS_FIELD, 1)  # a worker died on it

    run_jobs(rt)  # the stream's try (the second) raises; the job's (the third) too
    assert tries == ["poison-1", "poison-1"]
    [letter] = dead_letters.listed(rt.redis)
    assert (letter.attempts, letter.reason) == (3, FAILURE)


def test_a_job_whose_worker_died_on_its_last_try_sets_the_delivery_aside(rt, github, tries):
    _accept(rt, "poison-1", 1)
    run_jobs(rt)  # the stream's try and the job's raise
    rt.redis.hincrby(keys.delivery("poison-1"), records.ATTEMPTS_FIELD, 1)  # the third died
    _run_retries(rt)  # as RQ's retry of the abandoned job

    assert tries == ["poison-1", "poison-1"]
    [letter] = dead_letters.listed(rt.redis)
    assert (letter.attempts, letter.reason) == (3, poison.WORKER_DIED)


@pytest.fixture
def rt_1s(settings, redis) -> Iterator[runtime.Runtime]:
    """The runtime with a time budget of 1 s to apply a delivery."""
    budget = settings.model_copy(update={"delivery_timeout_seconds": 1})
    created = runtime.Runtime.create(budget, redis, FakeClock(), budget=UNPACED)
    with runtime.installed(created) as installed:
        yield installed


def test_a_stuck_delivery_runs_out_of_time_on_each_try(rt_1s, github, monkeypatch):
    spins: list[str] = []

    def stuck(rt: runtime.Runtime, delivery_id: str, event: str, body: bytes) -> None:
        if delivery_id != "stuck":
            APPLY(rt, delivery_id, event, body)
            return
        spins.append(delivery_id)
        while True:  # pure Python, and it swallows what an Exception would say
            try:
                while True:
                    pass
            except Exception:
                continue

    monkeypatch.setattr(deliveries, "apply_delivery", stuck)
    _accept(rt_1s, "stuck", 1)
    _accept(rt_1s, "good", 2)

    run_jobs(rt_1s)  # in the stream, then in the job
    assert _waiting(rt_1s.redis) == 1
    _run_retries(rt_1s)

    assert spins == ["stuck"] * 3
    [letter] = dead_letters.listed(rt_1s.redis)
    assert (letter.delivery_id, letter.attempts) == ("stuck", 3)
    assert letter.reason == "took longer than 1 s"
    assert _settled_streams(rt_1s.redis)


def test_the_budget_puts_back_the_alarm_of_the_job_around_it():
    signal.setitimer(signal.ITIMER_REAL, 30)  # as RQ's timeout of a job does
    try:
        with poison.time_budget(5):
            assert signal.getitimer(signal.ITIMER_REAL)[0] <= 5
        assert 29 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
        with poison.time_budget(60):  # the job's timeout comes first: it stays
            assert 29 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def test_deadletters_lists_them_and_retry_puts_one_back(rt, github, tries, monkeypatch, settings):
    _accept(rt, "poison-1", 1)
    run_jobs(rt)
    _run_retries(rt)
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    runner = CliRunner()

    listed = runner.invoke(cli.main, ["deadletters"])
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()
    assert header.split() == ["ID", "EVENT", "REPO", "TRIES", "WHEN", "(UTC)", "REASON"]
    assert row.split()[:4] == ["poison-1", "pull_request", "octo/shop", "3"]
    assert row.endswith(f"2026-11-02 09:00:00  {FAILURE}")
    as_json = json.loads(runner.invoke(cli.main, ["deadletters", "--json"]).output)
    assert as_json == [
        {
            "delivery_id": "poison-1",
            "event": "pull_request",
            "installation_id": 42,
            "repo": "octo/shop",
            "reason": FAILURE,
            "attempts": 3,
            "at": "2026-11-02T09:00:00+00:00",
        }
    ]

    monkeypatch.setattr(deliveries, "apply_delivery", APPLY)  # the bug is fixed
    retried = runner.invoke(cli.main, ["deadletters", "--retry", "poison-1"])
    assert retried.exit_code == 0, retried.output
    assert retried.output == "delivery poison-1 (pull_request) is queued again\n"
    assert dead_letters.listed(rt.redis) == []
    run_jobs(rt)
    assert _waiting(rt.redis) == 1  # applied this time, at its first try
    assert rt.redis.hget(keys.delivery("poison-1"), records.ATTEMPTS_FIELD) == b"1"
    assert _settled_streams(rt.redis)
    empty = runner.invoke(cli.main, ["deadletters"])
    assert empty.output == "No deliveries are set aside.\n"

    unknown = runner.invoke(cli.main, ["deadletters", "--retry", "nope"])
    assert unknown.exit_code == 1
    assert "no delivery 'nope' is set aside" in unknown.stderr


def test_the_list_keeps_the_newest(redis):
    start = datetime.now(UTC).timestamp()
    for number in range(dead_letters.KEPT + 5):
        at = datetime.fromtimestamp(start + number, UTC)
        letter = dead_letters.DeadLetter(f"d-{number}", "push", 42, None, "x", 3, at)
        dead_letters.keep(redis, letter, b"body")
    kept = dead_letters.listed(redis)
    assert len(kept) == dead_letters.KEPT == redis.hlen(keys.DEAD_LETTER_BODIES)
    assert kept[0].delivery_id == f"d-{dead_letters.KEPT + 4}"  # newest first
    assert kept[-1].delivery_id == "d-5"  # the five oldest went


# A worker whose process dies applying `poison`, as one the kernel kills for its memory does.
KILLING_WORKER = """
import os, signal
from stoplight.pipeline import deliveries
apply = deliveries.apply_delivery
def deadly(rt, delivery_id, event, body):
    if delivery_id == "poison":
        os.kill(os.getpid(), signal.SIGKILL)
    apply(rt, delivery_id, event, body)
deliveries.apply_delivery = deadly
from stoplight.cli import main
main(["worker"])
"""


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-c", KILLING_WORKER],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its scheduler process with it, to kill them together
        )


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """Kill the worker's process group: a worker that died alone leaves its scheduler process
    running, which would go on writing into the tests' shared Redis for the rest of the run."""
    with suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def _group_is_gone(worker: subprocess.Popen[bytes]) -> bool:
    try:
        os.killpg(worker.pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_a_delivery_that_kills_its_worker_3_times_is_set_aside(rt, settings, tmp_path):
    rt.clock = FakeClock(datetime.now(UTC))
    log = tmp_path / "workers.log"
    with serve_fake_github() as (host, _state):
        env = _worker_env(settings, host)
        _accept(rt, "poison", 1)
        deaths = 0
        started: list[subprocess.Popen[bytes]] = []
        while not dead_letters.listed(rt.redis):
            assert deaths <= 3, "the poison delivery was tried a fourth time"
            worker = _start_worker(env, log)
            started.append(worker)
            try:
                _wait_for(lambda w=worker: w.poll() is not None or dead_letters.listed(rt.redis))
            except AssertionError:
                _stop(worker)
                raise
            if worker.poll() is None:
                break  # the one that set it aside lives on
            _stop(worker)
            assert worker.returncode == -signal.SIGKILL, log.read_text()[-2000:]
            deaths += 1
            if deaths == 1:  # deliveries after the poison one go on meanwhile
                _accept(rt, "good-after", 2)
        try:
            _accept(rt, "good-last", 3)
            _wait_for(lambda: _waiting(rt.redis) == 2)
            assert worker.poll() is None
        finally:
            _stop(worker)

    _wait_for(lambda: all(_group_is_gone(worker) for worker in started), timeout=10)
    assert deaths == 3
    [letter] = dead_letters.listed(rt.redis)
    assert (letter.delivery_id, letter.attempts, letter.reason) == ("poison", 3, poison.WORKER_DIED)
    assert letter.repo == "octo/shop"
    assert _dead_lettered(rt.redis) == 1
    assert _settled_streams(rt.redis)
