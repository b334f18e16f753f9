"""The lanes' delivery streams: each delivery applied once, none lost to a dead worker, a
failing one handed to a job that retries it."""

from __future__ import annotations

import zlib

import pytest
from rq import Queue

from stoplight.events import intake
from stoplight.pipeline import deliveries
from stoplight.pipeline.worker import apply_handed_over, delivery_streams
from stoplight.state.review_queue import QueueStore
from stoplight.transport import records
from stoplight.transport.lanes import SHARED, WORKERS_GROUP
from stoplight.transport.streams import DeliveryStreams
from tests.conftest import accept, run_jobs
from tests.fakes import Pull, body_of


def _accept_opened(rt, clock, number: int) -> str:
    delivery_id = f"open-{number}"
    name, payload = Pull(number=number, head_sha=f"{number:040x}").event("opened", clock.now())
    assert accept(rt, delivery_id, name, body_of(payload)) is intake.Outcome.QUEUED
    return delivery_id


def _waiting(rt) -> int:
    return QueueStore(rt.redis, 42).measures("octo/shop").waiting


def _pending(rt) -> int:
    return sum(rt.redis.xpending(stream, WORKERS_GROUP)["pending"] for stream in rt.lanes.streams)


@pytest.fixture
def streams(rt) -> DeliveryStreams:
    consumer = delivery_streams(rt, "worker-a")
    consumer.ensure_groups()
    return consumer


def test_deliveries_are_applied_then_acknowledged_and_deleted(rt, github, clock):
    for number in range(1, 4):
        _accept_opened(rt, clock, number)
    assert rt.lanes.waiting_deliveries() == {"stoplight": 3, "stoplight-backlog": 0}

    run_jobs(rt)

    assert _waiting(rt) == 3
    assert rt.lanes.waiting_deliveries() == {"stoplight": 0, "stoplight-backlog": 0}
    assert _pending(rt) == 0
    # The id stays, without a body: a redelivery is still known as a repeat.
    assert records.load(rt.redis, "open-1") is None
    assert rt.redis.exists("stoplight:delivery:open-1")


def test_a_claimed_delivery_is_applied_by_its_entry_never_by_another(rt, github, clock, streams):
    delivery_id = _accept_opened(rt, clock, 1)
    [entry] = streams.read()
    assert records.claim(rt.redis, delivery_id, entry.entry_id)
    assert not records.claim(rt.redis, delivery_id, "job-b")
    assert records.claim(rt.redis, delivery_id, entry.entry_id)  # the entry's own retry

    apply_handed_over(rt, delivery_id, 42, "job-b")  # another's: it does nothing
    assert _waiting(rt) == 0
    streams.apply([entry])
    assert _waiting(rt) == 1


def test_entries_a_dead_worker_took_are_taken_over_and_applied_once(
    rt, github, clock, streams, applied_deliveries
):
    ids = [_accept_opened(rt, clock, number) for number in range(1, 4)]
    taken = streams.read()  # worker-a takes the batch and dies before applying it
    assert len(taken) == 3 and _pending(rt) == 3

    # A live worker's batch is not taken over while its entries are fresh...
    assert delivery_streams(rt, "worker-b").reclaim() == 0
    # ...and a dead one's is, once idle (here: at once).
    assert delivery_streams(rt, "worker-b", claim_idle_ms=0).reclaim() == 3
    assert sorted(applied_deliveries) == sorted(ids)
    assert _waiting(rt) == 3 and _pending(rt) == 0
    assert rt.lanes.waiting_deliveries()[SHARED] == 0
    assert delivery_streams(rt, "worker-c", claim_idle_ms=0).reclaim() == 0


def test_a_delivery_that_fails_passes_to_a_job_that_retries_it(rt, github, clock, monkeypatch):
    delivery_id = _accept_opened(rt, clock, 1)
    apply = deliveries.apply_delivery
    calls: list[str] = []

    def failing_once(rt_, delivery_id_, event, body):
        calls.append(delivery_id_)
        if len(calls) == 1:
            raise ConnectionError("GitHub did not answer")
        apply(rt_, delivery_id_, event, body)

    monkeypatch.setattr(deliveries, "apply_delivery", failing_once)
    run_jobs(rt)

    assert calls == [delivery_id, delivery_id]  # the entry, then the job it handed over to
    assert _waiting(rt) == 1
    assert _pending(rt) == 0
    assert Queue(SHARED, connection=rt.redis).count == 0
    assert records.load(rt.redis, delivery_id) is None  # the job dropped the body it kept


def test_a_delivery_an_earlier_version_queued_as_a_job_is_still_applied(rt, github, clock):
    # Before streams, intake kept the body zlib-compressed in the delivery's hash and queued
    # one RQ job for it; jobs queued so before an upgrade run on the new workers.
    name, payload = Pull().event("opened", clock.now())
    rt.redis.hset(
        "stoplight:delivery:queued-before",
        mapping={"event": name, "zbody": zlib.compress(body_of(payload), 1)},
    )
    rt.lanes.shared.enqueue_call("stoplight.jobs.process_delivery", args=("queued-before", 42))

    run_jobs(rt)

    assert _waiting(rt) == 1
    assert records.load(rt.redis, "queued-before") is None


def test_an_entry_that_is_no_delivery_is_dropped(rt, streams, caplog):
    rt.redis.xadd(rt.lanes.streams[0], {"something": "else"})
    assert streams.read() == []
    assert rt.lanes.waiting_deliveries()[SHARED] == 0
    assert "is not a delivery" in caplog.text


def test_streams_deleted_under_a_worker_are_made_again(rt, github, clock, streams):
    rt.redis.flushall()
    assert streams.read() == []  # NOGROUP: the group is created again
    _accept_opened(rt, clock, 1)
    assert len(streams.read()) == 1


def test_stopped_workers_names_leave_the_group_unless_they_hold_deliveries(rt, github, clock):
    holding, stopped = delivery_streams(rt, "died-holding"), delivery_streams(rt, "stopped")
    stopped.ensure_groups()
    _accept_opened(rt, clock, 1)
    stopped.apply(stopped.read())  # it applied what it read: nothing pending
    for number in range(2, 4):
        _accept_opened(rt, clock, number)
    [first, second] = holding.read()
    holding.apply([first])  # the second stays pending: its name must stay

    def names() -> set[str]:
        stream = rt.lanes.streams[0]
        return {c["name"].decode() for c in rt.redis.xinfo_consumers(stream, WORKERS_GROUP)}

    assert names() == {"stopped", "died-holding"}
    assert delivery_streams(rt, "live").forget_stopped_consumers() == 0  # not idle an hour yet
    assert delivery_streams(rt, "live").forget_stopped_consumers(idle_ms=0) == 1
    assert names() == {"died-holding"}
    assert second.entry_id in [
        entry["message_id"].decode()
        for entry in rt.redis.xpending_range(rt.lanes.streams[0], WORKERS_GROUP, "-", "+", 10)
    ]
