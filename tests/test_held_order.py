"""The held lane is first in, first out: ties within a second keep the order of arrival."""

from __future__ import annotations

from stoplight.core.light import Level
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver
from tests.fakes import Pull
from tests.test_teams import HEIJUNKA, WEB, open_pulls


def test_prs_held_within_one_second_keep_their_order_of_arrival(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    queue = open_pulls(rt, clock, 5)
    store = QueueStore(rt.redis, 42)
    assert store.light(WEB).level is Level.RED
    same_second = clock.now()
    arrivals = [Pull(number=n, head_sha=f"{n:040x}") for n in (9, 6, 10)]
    for pull in arrivals:
        deliver(rt, pull.event("opened", same_second))
    assert store.held_keys(WEB) == ["1001#9", "1001#6", "1001#10"]

    clock.advance(minutes=1)
    deliver(rt, arrivals[0].event("opened", same_second))  # GitHub redelivers the first
    arrivals[1].title = "Retitled"
    deliver(rt, arrivals[1].event("edited", clock.now()))
    assert store.held_keys(WEB) == ["1001#9", "1001#6", "1001#10"]

    admitted = []
    for pull in queue:
        deliver(rt, pull.review("bob", "approved", clock.now()))
        admitted += [
            key
            for key in ("1001#9", "1001#6", "1001#10")
            if key not in admitted and key not in store.held_keys(WEB)
        ]
    assert admitted == ["1001#9", "1001#6", "1001#10"]
