"""The history the workers keep per team: written as the queue moves, bounded, read only."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from stoplight.core.changes import PullChange, PullSnapshot
from stoplight.core.flow import Entry, Exit, LightChange, Sample
from stoplight.core.light import ALWAYS, Level, LightState
from stoplight.core.pulls import Rules
from stoplight.pipeline import sync
from stoplight.state import keys
from stoplight.state.history import RETENTION, load_flow, read_history
from stoplight.state.review_queue import QueueStore, Team
from tests.conftest import deliver, run_jobs
from tests.fakes import START, Pull
from tests.test_sync import GitHubReads

TEAM = Team(key="octo/shop", name="octo/shop")
MINUTE = timedelta(minutes=1)


@pytest.fixture
def reads(github):
    return GitHubReads(github, {42: ["octo/shop"]})


def everything(redis, until: datetime):
    return read_history(redis, 42, TEAM.key, START - timedelta(days=365), until)


def test_deliveries_record_light_changes_samples_entries_and_exits(rt, github, clock):
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, 5)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
        clock.advance(minutes=1)
    clock.advance(minutes=59)
    deliver(rt, pulls[0].review("bob", "approved", clock.now()))

    history = everything(rt.redis, clock.now())
    opened = [START + n * MINUTE for n in range(4)]
    approved = START + timedelta(hours=1, minutes=3)
    assert history.lights == (
        LightChange(START, Level.GREEN),
        LightChange(opened[3], Level.YELLOW),  # the fourth PR waiting
    )
    assert history.entries == tuple(Entry(at, f"1001#{n}") for n, at in enumerate(opened, 1))
    assert history.exits == (Exit(approved, "1001#1", START),)
    assert history.samples == (
        *(Sample(at, n, 50 * n, START) for n, at in enumerate(opened, 1)),
        Sample(approved, 3, 150, opened[1]),
    )


def test_a_page_view_reads_and_writes_nothing(rt, github, clock):
    for number in (1, 2):
        deliver(rt, Pull(number=number).event("opened", clock.now()))
        clock.advance(hours=2)
    before = _commands_called(rt.redis)

    flow = load_flow(rt.redis, 42, TEAM.key, ALWAYS, clock.now())

    called = {
        name for name, calls in _commands_called(rt.redis).items() if calls > before.get(name, 0)
    }
    flags = rt.redis.execute_command("COMMAND", "INFO", *(called - {"info"}))
    assert not [name for name, info in flags.items() if "write" in info["flags"]]
    assert flow.weeks[0].entered == 2
    assert everything(rt.redis, clock.now()).entries == (
        Entry(START, "1001#1"),
        Entry(START + timedelta(hours=2), "1001#2"),
    )


def _commands_called(redis) -> dict[str, int]:
    stats = redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): entry["calls"] for name, entry in stats.items()}


def test_sync_keeps_the_history(rt, github, reads, clock):
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in (1, 2)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
        reads.add(pull, clock.now())
        clock.advance(minutes=10)
    kept = everything(rt.redis, clock.now())
    pulls[1].state = "closed"  # a close the deliveries missed
    reads.add(pulls[1], clock.now())

    sync.sync_all(rt)
    run_jobs(rt)

    after = everything(rt.redis, clock.now())
    assert after.lights == kept.lights
    assert after.entries == kept.entries
    assert after.exits == (Exit(clock.now(), "1001#2", START + 10 * MINUTE),)
    assert after.samples == (*kept.samples, Sample(clock.now(), 1, 50, START))


def snapshot(number: int, at: datetime, *, open: bool = True) -> PullSnapshot:
    return PullSnapshot(
        repo_id=1001, repo="octo/shop", number=number, title=f"Change {number}",
        url=f"https://github.com/octo/shop/pull/{number}", author="alice", author_is_bot=False,
        head_sha=f"{number:040x}", draft=False, open=open, updated_at=at, additions=40,
        deletions=10,
    )  # fmt: skip


def opening(number: int, at: datetime) -> PullChange:
    return PullChange(action="opened", pull=snapshot(number, at), at=at)


def closing(number: int, at: datetime) -> PullChange:
    return PullChange(action="closed", pull=snapshot(number, at, open=False), at=at)


def test_history_keeps_ninety_days_and_the_state_before_them(rt, clock):
    store = QueueStore(rt.redis, 42)
    for day in range(100):  # a PR a day, waiting an hour; the light alternates daily
        opened = clock.now()
        store.apply(opening(day, opened), TEAM, Rules(), opened)
        light = LightState(Level.YELLOW if day % 2 else Level.GREEN, opened)
        store.update_light(TEAM.key, lambda measures, previous, light=light: light)
        closed = clock.advance(hours=1)
        store.apply(closing(day, closed), TEAM, Rules(), closed)
        clock.advance(hours=23)

    names = keys.InstallationKeys(42).team(TEAM.key).history
    retention_ms = RETENTION.total_seconds() * 1000
    day_8, day_9 = START + timedelta(days=8), START + timedelta(days=9)
    # Each set drops what is 90 days older than its last record (day 99, 09:00 or 10:00)
    # but the newest of those, which tells the state at the window's start.
    for name, count, oldest in (
        (names.entries, 92, day_8),
        (names.exits, 92, day_8 + timedelta(hours=1)),
        (names.lights, 92, day_8),
        (names.samples, 182, day_9),
    ):
        scores = [score for _, score in rt.redis.zrange(name, 0, -1, withscores=True)]
        older = [score for score in scores if score < scores[-1] - retention_ms]
        assert (older, len(scores)) == ([oldest.timestamp() * 1000], count), name
        assert 0 < rt.redis.ttl(name) <= RETENTION.total_seconds()

    history = read_history(rt.redis, 42, TEAM.key, day_9 + timedelta(minutes=30), closed)
    assert history.samples[0] == Sample(day_9, 1, 50, day_9)
    assert history.lights[0] == LightChange(day_9, Level.YELLOW)


def test_samples_come_only_when_the_measures_change_and_at_most_one_a_minute(rt, clock):
    store = QueueStore(rt.redis, 42)
    for number in range(1, 31):  # a bot's wave: thirty PRs within one minute
        at = clock.advance(seconds=1)
        store.apply(
            PullChange(action="opened", pull=snapshot(number, at), at=at), TEAM, Rules(), at
        )
    first = START + timedelta(seconds=1)
    assert everything(rt.redis, clock.now()).samples == (Sample(first, 30, 1500, first),)

    later = clock.advance(minutes=5)
    title_only = snapshot(1, later).model_copy(update={"title": "Renamed"})
    store.apply(PullChange(action="edited", pull=title_only, at=later), TEAM, Rules(), later)
    assert len(everything(rt.redis, later).samples) == 1  # nothing that counts changed

    store.apply(closing(1, later), TEAM, Rules(), later)
    history = everything(rt.redis, later)
    assert history.samples[-1] == Sample(later, 29, 1450, START + timedelta(seconds=2))
    assert len(history.entries) == 30 and len(history.exits) == 1
