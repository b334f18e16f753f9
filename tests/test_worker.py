"""The worker's own loop over streams and RQ, and what a batch decides for each delivery."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stoplight.pipeline.worker import build_worker, run_worker
from stoplight.transport import poison, records
from stoplight.transport.applying import apply_batch
from stoplight.transport.memory import MemoryTransport
from stoplight.transport.protocol import Entry
from tests.conftest import accept
from tests.fakes import Pull, body_of


def entry(number: int, delivery_id: str | None = None) -> Entry:
    return Entry(
        lane="stoplight",
        entry_id=f"{number}-0",
        delivery_id=delivery_id or f"d-{number}",
        event="pull_request",
        installation_id=42,
        compressed_body=records.compress(b"{}"),
    )


class Applied:
    """A delivery handler that records what it applies and raises for `failing` ids."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.ids: list[str] = []

    def __call__(self, delivery_id: str, event: str, body: bytes) -> None:
        self.ids.append(delivery_id)
        if delivery_id in self.failing:
            raise RuntimeError(f"{delivery_id} fails")


def test_a_batch_applies_its_deliveries_then_acknowledges_them_all():
    transport, applied = MemoryTransport(), Applied()
    for number in range(1, 4):
        transport.add(entry(number))
    batch = transport.claim_batch()
    apply_batch(transport, batch, applied, budget_seconds=5)
    assert applied.ids == ["d-1", "d-2", "d-3"]
    assert transport.acknowledged == [claimed.entry for claimed in batch]
    assert transport.queued == [] and transport.set_aside_for == {}


def test_a_repeated_delivery_is_applied_by_its_first_entry_only():
    transport, applied = MemoryTransport(), Applied()
    transport.add(entry(1, "d-1"))
    transport.add(entry(2, "d-1"))  # GitHub sent it twice, under the same id
    apply_batch(transport, transport.claim_batch(), applied, budget_seconds=5)
    assert applied.ids == ["d-1"]
    assert len(transport.acknowledged) == 2


def test_a_delivery_that_raises_is_handed_to_a_job_until_its_last_try_sets_it_aside():
    transport, applied = MemoryTransport(), Applied(failing=frozenset({"d-1"}))
    for _ in range(poison.MAX_ATTEMPTS):
        transport.add(entry(1))  # the entry tried again, as after a take-over
        apply_batch(transport, transport.claim_batch(), applied, budget_seconds=5)
    assert [queued.job.name for queued in transport.queued] == ["process_delivery"] * 2
    assert transport.queued[0].job.args == ("d-1", 42)
    assert transport.set_aside_for == {"d-1": "RuntimeError: d-1 fails"}


def test_a_delivery_whose_tries_all_ended_with_their_worker_is_set_aside_unapplied():
    transport, applied = MemoryTransport(), Applied()
    transport.tries["d-1"] = poison.MAX_ATTEMPTS  # three workers died applying it
    transport.add(entry(1))
    apply_batch(transport, transport.claim_batch(), applied, budget_seconds=5)
    assert applied.ids == []
    assert transport.set_aside_for == {"d-1": poison.WORKER_DIED}


def test_a_worker_with_a_max_idle_time_applies_what_waits_then_stops(rt, github, clock):
    event, payload = Pull().event("opened", clock.now())
    accept(rt, "idle-1", event, body_of(payload))
    job = rt.lanes.shared.enqueue_call("builtins.len", args=([],))

    assert build_worker(rt).work(max_idle_seconds=0.2)

    assert records.load(rt.queue, "idle-1") is None  # applied: its body is gone
    assert job.get_status(refresh=True) == "finished"


def test_run_worker_returns_once_idle_for_its_max_idle_time(rt):
    run_worker(rt, max_idle_seconds=0.2, sleep=pytest.fail)


def test_stoplight_worker_stops_at_its_max_idle_time(settings):
    command = [sys.executable, "-m", "stoplight", "worker", "--max-idle-time", "0.5"]
    env = {"PATH": "", "REDIS_URL": settings.redis_url, "LOG_LEVEL": "info"}
    finished = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
    assert finished.returncode == 0, finished.stderr.decode()
    assert b"idle for 0.5 s, it stops" in finished.stderr


def test_max_idle_time_must_be_positive(settings):
    command = [sys.executable, "-m", "stoplight", "worker", "--max-idle-time", "0"]
    env = {"PATH": "", "REDIS_URL": settings.redis_url}
    finished = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
    assert finished.returncode == 2  # click's usage error, before any worker starts
    assert b"--max-idle-time" in finished.stderr
