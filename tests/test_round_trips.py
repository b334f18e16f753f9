"""How many times applying a delivery waits on Redis: each round trip is most of its cost."""

from __future__ import annotations

from typing import Any

from redis import ConnectionPool, Redis, UnixDomainSocketConnection

from stoplight.pipeline.deliveries import apply_delivery
from stoplight.pipeline.runtime import Runtime
from tests.conftest import UNPACED, deliver
from tests.fakes import Pull, body_of


class CountingConnection(UnixDomainSocketConnection):
    """Counts what it sends: one command, or one pipeline or transaction, is one round trip."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def counting_runtime(rt: Runtime) -> Runtime:
    pool = ConnectionPool.from_url(rt.settings.redis_url)
    pool.connection_class = CountingConnection
    return Runtime.create(rt.settings, Redis(connection_pool=pool), rt.clock, budget=UNPACED)


def round_trips(rt: Runtime, event: tuple[str, dict[str, Any]], delivery_id: str) -> int:
    name, payload = event
    CountingConnection.sent = 0
    apply_delivery(rt, delivery_id, name, body_of(payload))
    return CountingConnection.sent


def test_a_review_takes_five_round_trips(rt, github, clock):
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in (1, 2)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=5)
    counted = counting_runtime(rt)
    # The first queues the team's effects job, which the second then finds waiting.
    first = round_trips(counted, pulls[0].review("bob", "commented", clock.now()), "first")
    second = round_trips(counted, pulls[1].review("bob", "commented", clock.now()), "second")

    # Admission and configuration; the change (WATCH, reads, MULTI..EXEC), which reads the
    # team as it leaves it; the effects' mark with the tick's place. The light stays green.
    assert second == 5
    assert first > second
