"""Bad input: each case gets a clear log line and changes nothing else; nothing raises."""

from __future__ import annotations

import copy
import itertools
import json
import logging
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rq.job import Job

from stoplight.pipeline.worker import delivery_streams
from stoplight.state import keys
from stoplight.state.installations import installation_ids
from stoplight.state.review_queue import QueueStore
from stoplight.transport.lanes import BACKLOG, SHARED, WORKERS_GROUP, delivery_stream
from tests.conftest import accept, deliver
from tests.fakes import Pull, Repo

_ids = itertools.count(1)


def process(rt, name: str, payload: Any) -> str:
    """Take a delivery in and process it, as its job would, without running effects; its id."""
    delivery_id = f"bad-{next(_ids)}"
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    accept(rt, delivery_id, name, body)
    streams = delivery_streams(rt, "bad-input")
    streams.ensure_groups()
    streams.apply(streams.read())
    return delivery_id


def state_of(rt) -> dict[bytes, bytes]:
    """Every key of the app's state but delivery ids and jobs, dumped for comparison."""
    return {
        name: rt.redis.dump(name) for name in rt.redis.scan_iter(match=f"{keys.PREFIX}:i:*")
    } | {keys.INSTALLATIONS.encode(): rt.redis.dump(keys.INSTALLATIONS)}


def _opened(clock) -> tuple[str, dict[str, Any]]:
    return Pull().event("opened", clock.now())


def test_missing_and_mistyped_fields_are_logged_and_change_nothing(rt, github, clock, caplog):
    deliver(rt, _opened(clock))
    before = state_of(rt)
    name, payload = Pull(number=2).event("opened", clock.now())
    missing = copy.deepcopy(payload)
    del missing["pull_request"]["head"]
    mistyped = copy.deepcopy(payload)
    mistyped["pull_request"]["additions"] = "many"
    naive_time = copy.deepcopy(payload)
    naive_time["pull_request"]["updated_at"] = "2026-11-02T09:00:00"
    huge = copy.deepcopy(payload)
    huge["pull_request"]["additions"] = 10**30
    no_installation = copy.deepcopy(payload)
    del no_installation["installation"]
    # Values that would end up in an API path: /repos//contents, /statuses/x, /issues/0.
    nameless = copy.deepcopy(payload)
    nameless["repository"]["full_name"] = ""
    not_a_sha = copy.deepcopy(payload)
    not_a_sha["pull_request"]["head"]["sha"] = "../../labels"
    number_zero = copy.deepcopy(payload)
    number_zero["pull_request"]["number"] = 0
    bad = (missing, mistyped, naive_time, huge, no_installation, nameless, not_a_sha, number_zero)
    with caplog.at_level(logging.INFO, logger="stoplight"):
        for each in bad:
            process(rt, name, each)
        process(rt, name, b"[1, 2]")
        process(rt, name, b"not json")
    assert state_of(rt) == before
    ignored = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) == 10
    assert any("pull_request.head: Field required" in line for line in ignored)
    assert any("installation.id: missing" in line for line in ignored)
    assert any("repository.full_name: String should match" in line for line in ignored)
    assert any("pull_request.head.sha: String should match" in line for line in ignored)


def test_unknown_action_is_logged_and_changes_nothing(rt, github, clock, caplog):
    deliver(rt, _opened(clock))
    before = state_of(rt)
    name, payload = Pull().event("assigned", clock.now())
    with caplog.at_level(logging.INFO, logger="stoplight"):
        process(rt, name, payload)
    assert state_of(rt) == before
    assert "(pull_request.assigned): nothing stoplight uses" in caplog.text


def test_a_late_delivery_for_a_deleted_installation_changes_nothing(rt, github, clock, caplog):
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    deleted = {"action": "deleted", "installation": {"id": 42}, "repositories": []}
    deliver(rt, ("installation", deleted))
    assert 42 not in installation_ids(rt.redis)
    with caplog.at_level(logging.INFO, logger="stoplight"):
        deliver(rt, pull.event("synchronize", clock.now()))
    assert QueueStore(rt.redis, 42).pull("1001#1") is None
    assert 42 not in installation_ids(rt.redis)
    assert "installation 42 was deleted" in caplog.text


def test_a_pull_request_for_a_repository_not_in_the_installation_is_ignored(
    rt, github, clock, caplog
):
    created = {
        "action": "created",
        "installation": {"id": 42},
        "repositories": [{"id": 1001, "full_name": "octo/shop"}],
    }
    process(rt, "installation", created)
    stranger = Pull(repo=Repo(id=2002, full_name="octo/elsewhere"))
    with caplog.at_level(logging.INFO, logger="stoplight"):
        process(rt, *stranger.event("opened", clock.now()))
    assert QueueStore(rt.redis, 42).pull("2002#1") is None
    assert "octo/elsewhere is not among installation 42's repositories" in caplog.text
    process(rt, *Pull().event("opened", clock.now()))
    assert QueueStore(rt.redis, 42).pull("1001#1") is not None


def test_a_pr_from_a_fork_is_handled_like_any_other(rt, github, clock):
    name, payload = Pull().event("opened", clock.now())
    payload["pull_request"]["head"]["repo"] = {"id": 9, "full_name": "someone/shop", "fork": True}
    deliver(rt, (name, payload))
    assert QueueStore(rt.redis, 42).measures("octo/shop").waiting == 1


def test_a_renamed_repository_moves_its_prs_to_the_new_name(rt, github, clock):
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(minutes=1)
    pull.repo.full_name = "octo/store"
    deliver(rt, pull.event("edited", clock.now()))
    store = QueueStore(rt.redis, 42)
    assert store.pull("1001#1").repo == "octo/store"
    assert store.measures("octo/shop").waiting == 0
    assert store.measures("octo/store").waiting == 1


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["2026-11-02T09:00:00Z", "2026-11-02T09:00:00", "open", "APPROVED"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_payloads(draw) -> tuple[str, Any]:
    pull = Pull()
    from tests.fakes import START

    name, payload = draw(
        st.sampled_from(
            [
                pull.event("opened", START),
                pull.event("review_requested", START, requested_reviewer={"login": "bob"}),
                pull.review("bob", "approved", START),
                (
                    "installation",
                    {
                        "action": "created",
                        "installation": {"id": 42},
                        "repositories": [{"id": 1001, "full_name": "octo/shop"}],
                    },
                ),
            ]
        )
    )
    payload = copy.deepcopy(payload)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(payload)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = payload
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return name, payload


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(delivery=mutated_payloads() | st.tuples(st.just("pull_request"), json_values))
def test_no_payload_raises_out_of_processing(rt, github, delivery):
    name, payload = delivery
    delivery_id = process(rt, name, payload)
    # The consumer catches what applying raises and hands the delivery to a retry job: a
    # payload that raised would show as that job, so none may exist.
    assert not Job.exists(f"delivery-{delivery_id}", connection=rt.redis), "applying it raised"
    assert rt.redis.hlen(keys.DEAD_LETTERS) == 0
    for lane in (SHARED, BACKLOG):
        stream = delivery_stream(lane)
        if rt.redis.exists(stream):
            assert rt.redis.xpending(stream, WORKERS_GROUP)["pending"] == 0  # acknowledged
    store = QueueStore(rt.redis, 42)
    for team in store.teams():
        store.open_pulls(team)  # whatever was stored still loads
