"""Property-based tests: the light's hysteresis, and the held lane against real Redis."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stoplight.core.changes import PullChange, PullSnapshot, ReviewChange
from stoplight.core.light import Level, LightState, Measures, Policy, Thresholds, evaluate
from stoplight.core.pulls import HoldReason, Phase
from stoplight.pipeline.apply import apply_change
from stoplight.pipeline.context import InstallationContext
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
        apply_change(InstallationContext.of(rt, 42), change)
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


AGENT_LANE = (
    "teams: [{name: web, thresholds: {yellow: {waiting: 2}, red: {waiting: 4}}, cooldown: 0s}]\n"
    "agents: {max_waiting: 2}\nwip_per_author: 2"
)
lane_actions = st.lists(
    st.tuples(
        st.sampled_from(["person", "agent", "approve", "close"]),
        st.sampled_from(["alice", "bob"]),
        st.integers(0, 30),
    ),
    min_size=1,
    max_size=30,
)


def lane_snapshot(number: int, at: datetime, author: str, person: str, *, open_: bool = True):
    return snapshot(number, at, open_=open_).model_copy(
        update={"author": author, "person": person, "author_is_bot": author == "Copilot"}
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lane_actions)
def test_the_agent_lane_keeps_its_limits_and_its_order(rt, github, clock, plan):
    """People's held PRs enter before agents', each kind (and each person's) first in first out;
    never more than max_waiting agent PRs nor wip_per_author PRs of one person wait; the lane
    empties when the queue does."""
    rt.redis.flushall()
    github.put_config("octo/shop", AGENT_LANE)
    store = QueueStore(rt.redis, 42)
    authors: dict[int, tuple[str, str]] = {}
    joined: list[str] = []  # the held lane's order of joining
    entered: list[str] = []  # the order PRs left the lane for the queue
    numbers = iter(range(1, 1000))

    def record_of(key: str):
        record = store.pull(key)
        assert record is not None
        return record

    def apply(change) -> None:
        before = store.held_keys("web")
        apply_change(InstallationContext.of(rt, 42), change)
        now_held = store.held_keys("web")
        admitted = [key for key in before if key not in now_held and record_of(key).waiting]
        agents_in = [key for key in admitted if record_of(key).by_agent]
        if agents_in:  # humans first: a person's PR left behind is held by its person's WIP
            for key in now_held:
                held = record_of(key)
                assert held.by_agent or held.held_for is HoldReason.WIP
        entered.extend(admitted)
        joined.extend(key for key in now_held if key not in joined)
        waiting = store.waiting_pulls("web", 1000)
        assert sum(1 for pull in waiting if pull.by_agent) <= 2
        assert max(Counter(pull.person for pull in waiting).values(), default=0) <= 2

    def approve_all() -> None:
        for record in store.waiting_pulls("web", 1000):
            author, person = authors[record.number]
            at = clock.now()
            apply(ReviewChange(action="submitted", pull=lane_snapshot(record.number, at, author,
                               person), reviewer="carol", state="approved",
                               commit_id=f"{record.number:040x}", at=at))  # fmt: skip

    for action, person, pick in plan:
        clock.advance(seconds=1)
        if action in ("person", "agent"):
            number = next(numbers)
            authors[number] = ("Copilot" if action == "agent" else person, person)
            pull = lane_snapshot(number, clock.now(), *authors[number])
            apply(PullChange(action="opened", pull=pull, at=clock.now()))
        elif action == "approve":
            approve_all()
        elif store.held_keys("web"):
            held = store.held_keys("web")
            number = int(held[pick % len(held)].split("#")[1])
            closed = lane_snapshot(number, clock.now(), *authors[number], open_=False)
            apply(PullChange(action="closed", pull=closed, at=clock.now()))

    for _ in range(len(joined) + 1):  # drain: nobody stays held once the queue empties
        clock.advance(seconds=1)
        approve_all()
    assert store.held_keys("web") == []

    def lane_of(key: str) -> tuple[str, str]:  # (author's kind, person)
        author, person = authors[int(key.split("#")[1])]
        return ("agent" if author == "Copilot" else "person", person)

    for lane in {lane_of(key) for key in joined}:
        order = [key for key in joined if lane_of(key) == lane and key in entered]
        assert [key for key in entered if lane_of(key) == lane] == order  # first in, first out
