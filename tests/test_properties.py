"""Property-based tests: the light's hysteresis, and the held lane against real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stoplight.core.changes import PullChange, PullSnapshot, ReviewChange
from stoplight.core.light import Level, LightState, Measures, Policy, Thresholds, evaluate
from stoplight.core.pulls import Phase
from stoplight.pipeline import deliveries
from stoplight.state.review_queue import QueueStore

POLICY = Policy(
    yellow=Thresholds(waiting=2), red=Thresholds(waiting=4), cooldown=timedelta(minutes=10)
)
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
steps = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 900)), min_size=1, max_size=40
)  # (waiting PRs, seconds until the next evaluation)


def called_for(waiting: int) -> Level:
    return Level.RED if waiting >= 4 else Level.YELLOW if waiting >= 2 else Level.GREEN


@given(steps)
def test_light_rises_at_once_and_falls_only_after_its_cooldown(sequence):
    now = T0
    previous: LightState | None = None
    lower_since: datetime | None = None  # measures have called for less than the light since
    last_fall: datetime | None = None
    for waiting, pause in sequence:
        state = evaluate(Measures(waiting=waiting), POLICY, previous, now).state
        wanted = called_for(waiting)
        if previous is None or wanted > previous.level:
            assert state.level is wanted  # rises at once
        elif previous is not None and state.level < previous.level:
            assert lower_since is not None and now - lower_since >= POLICY.cooldown
            assert last_fall is None or now - last_fall >= POLICY.cooldown  # no flapping
            last_fall = now
        else:
            assert state.level == previous.level
        lower_since = (lower_since or now) if wanted < state.level else None
        previous = state
        now += timedelta(seconds=pause)


HEIJUNKA = (
    "teams: [{name: web, thresholds: {yellow: {waiting: 2}, red: {waiting: 3}}, cooldown: 0s}]"
)
actions = st.lists(
    st.tuples(st.sampled_from(["open", "approve", "close"]), st.integers(0, 30)),
    min_size=1,
    max_size=30,
)


def snapshot(number: int, at: datetime, *, open_: bool = True) -> PullSnapshot:
    return PullSnapshot(
        repo_id=1001, repo="octo/shop", number=number, title=f"PR {number}",
        url=f"https://github.com/octo/shop/pull/{number}", author="alice", author_is_bot=False,
        head_sha=f"{number:040x}", draft=False, open=open_, updated_at=at, additions=5,
        deletions=5,
    )  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions)
def test_held_lane_is_fifo_never_counted_and_empties_with_the_queue(rt, github, clock, plan):
    rt.redis.flushall()
    github.put_config("octo/shop", HEIJUNKA)
    store = QueueStore(rt.redis, 42)
    held_order: list[str] = []
    admitted: list[str] = []
    numbers = iter(range(1, 1000))

    def apply(change) -> None:
        before = {key: store.pull(key) for key in store.held_keys("web")}
        deliveries.apply_change(rt, 42, change)
        for key, record in before.items():
            after = store.pull(key)
            if after is not None and after.phase is Phase.WAITING and record is not None:
                admitted.append(key)
        held_order.extend(k for k in store.held_keys("web") if k not in held_order)
        waiting_keys = {
            m.decode() for m in rt.redis.zrange("stoplight:i:{42}:t:web:waiting", 0, -1)
        }
        assert not waiting_keys & set(store.held_keys("web"))  # a held PR is never counted
        assert store.measures("web").waiting == len(waiting_keys)

    def approve_all() -> None:
        for key in [m.decode() for m in rt.redis.zrange("stoplight:i:{42}:t:web:waiting", 0, -1)]:
            number = int(key.split("#")[1])
            change = ReviewChange(action="submitted", pull=snapshot(number, clock.now()),
                                  reviewer="bob", state="approved",
                                  commit_id=f"{number:040x}", at=clock.now())  # fmt: skip
            apply(change)

    for action, pick in plan:
        clock.advance(seconds=1)
        if action == "open":
            apply(PullChange(action="opened", pull=snapshot(next(numbers), clock.now()),
                             at=clock.now()))  # fmt: skip
        elif action == "approve":
            approve_all()
        elif store.held_keys("web"):
            held = store.held_keys("web")
            number = int(held[pick % len(held)].split("#")[1])
            closed = snapshot(number, clock.now(), open_=False)
            apply(PullChange(action="closed", pull=closed, at=clock.now()))

    for _ in range(len(held_order) + 1):  # drain: nobody stays held once the queue empties
        clock.advance(seconds=1)
        approve_all()
    assert store.held_keys("web") == []
    assert admitted == [key for key in held_order if key in admitted]  # first in, first out
