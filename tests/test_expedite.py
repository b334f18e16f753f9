"""Labels a person adds or removes on a held PR: the expedite label admits it at once."""

from __future__ import annotations

from typing import Any

from rq.registry import FinishedJobRegistry

from stoplight.core.light import Level
from stoplight.core.pulls import Phase
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver
from tests.fakes import Pull
from tests.test_teams import HEIJUNKA, WEB, labels_of, last_status, open_pulls

EXPEDITE = "stoplight:expedite"


def labeled(pull: Pull, action: str, label: str, at, sender: str = "carol") -> tuple[str, Any]:
    name, payload = pull.event(action, at, label={"name": label})
    payload["sender"] = {"login": sender, "type": "User"}
    return name, payload


def held_lane(rt, clock) -> list[Pull]:
    """A red team (five waiting) with three PRs held behind it."""
    open_pulls(rt, clock, 5)
    return open_pulls(rt, clock, 3, start=6)


def test_the_expedite_label_admits_a_held_pr_at_once_and_the_line_moves_up(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    first, second, third = held_lane(rt, clock)
    store = QueueStore(rt.redis, 42)
    assert store.light(WEB).level is Level.RED

    first.labels.append(EXPEDITE)
    deliver(rt, labeled(first, "labeled", EXPEDITE, clock.now()))

    record = store.pull("1001#6")
    assert record.phase is Phase.WAITING and record.wait_since == clock.now()
    assert store.held_keys(WEB) == ["1001#7", "1001#8"]
    assert last_status(github, first)[1].startswith("Red:")
    assert "stoplight:held" not in labels_of(github, first)
    assert last_status(github, second)[1].startswith("Held (1st in line)")
    assert last_status(github, third)[1].startswith("Held (2nd in line)")


def test_removing_the_expedite_label_does_not_hold_the_pr_again(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    first, _, _ = held_lane(rt, clock)
    first.labels.append(EXPEDITE)
    deliver(rt, labeled(first, "labeled", EXPEDITE, clock.now()))
    clock.advance(minutes=1)

    first.labels.remove(EXPEDITE)
    deliver(rt, labeled(first, "unlabeled", EXPEDITE, clock.now()))

    store = QueueStore(rt.redis, 42)
    assert store.pull("1001#6").phase is Phase.WAITING
    assert store.held_keys(WEB) == ["1001#7", "1001#8"]


def test_a_person_removing_the_held_label_gets_it_back_while_the_pr_is_held(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    first, _, _ = held_lane(rt, clock)
    writes = len(github.writes())

    deliver(rt, labeled(first, "unlabeled", "stoplight:held", clock.now()))

    assert QueueStore(rt.redis, 42).held_keys(WEB)[0] == "1001#6"
    assert github.writes()[writes:] == [
        ("POST", "/repos/octo/shop/issues/6/labels", ["stoplight:held"])
    ]


def test_labels_the_app_itself_writes_set_off_no_work(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    pull = open_pulls(rt, clock, 1)[0]
    finished = FinishedJobRegistry(queue=rt.lanes.shared)
    jobs = finished.count

    pull.labels.append("size/M")
    deliver(rt, labeled(pull, "labeled", "size/M", clock.now(), sender="stoplight[bot]"))
    pull.labels.remove("size/M")
    deliver(rt, labeled(pull, "unlabeled", "size/XL", clock.now(), sender="stoplight[bot]"))

    assert finished.count == jobs  # no effects pass (deliveries are applied outside jobs)
