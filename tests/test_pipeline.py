"""A delivery all the way to GitHub: handlers, store, light, statuses and labels."""

from __future__ import annotations

from datetime import timedelta

from rq.registry import ScheduledJobRegistry

from stoplight.core.clock import from_timestamp
from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS
from stoplight.pipeline.context import InstallationContext
from stoplight.state.keys import job_id
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver
from tests.fakes import Pull, Repo

GREEN, YELLOW, RED = (DESCRIPTIONS[level] for level in Level)


def test_opened_50_line_pr_gets_one_green_status_and_size_m(rt, github, clock):
    pull = Pull(additions=40, deletions=10)
    deliver(rt, pull.event("opened", clock.now()))

    assert github.statuses() == [(pull.head_sha, "success", GREEN)]
    writes = github.writes()
    assert ("POST", "/repos/octo/shop/labels", {"name": "size/M", "color": "eebb00",
            "description": "Changes 30-99 lines"}) in writes  # fmt: skip
    assert ("POST", "/repos/octo/shop/issues/1/labels", ["size/M"]) in writes
    # The only reads are the configuration lookups: the repository's file, then the org's.
    assert github.gets() == [
        "/repos/octo/shop/contents/.github/stoplight.yml",
        "/repos/octo/.github/contents/.github/stoplight.yml",
    ]
    status = next(body for method, path, body in writes if "/statuses/" in path)
    assert status["context"] == "stoplight"
    assert status["target_url"] == "https://stoplight.example/teams/42/octo%2Fshop"


def test_four_prs_turn_every_status_yellow_once(rt, github, clock):
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, 5)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
        clock.advance(minutes=1)

    statuses = github.statuses()
    for pull in pulls:
        mine = [(state, text) for sha, state, text in statuses if sha == pull.head_sha]
        expected = (
            [("success", GREEN), ("success", YELLOW)] if pull.number < 4 else [("success", YELLOW)]
        )
        assert mine == expected, pull.number
    assert len(statuses) == len(set(statuses))  # nothing posted twice


def test_redelivered_event_changes_nothing(rt, github, clock):
    pull = Pull()
    event = pull.event("opened", clock.now())
    deliver(rt, event, delivery_id="same")
    before = len(github.writes())
    deliver(rt, event, delivery_id="same")
    deliver(rt, pull.event("edited", clock.now()))  # new delivery, same state
    assert len(github.writes()) == before


def test_approval_takes_pr_out_and_push_after_changes_requested_puts_it_back(rt, github, clock):
    pull = Pull()
    store = QueueStore(rt.redis, pull.repo.installation_id)
    deliver(rt, pull.event("opened", clock.now()))
    assert store.measures("octo/shop").waiting == 1

    clock.advance(hours=1)
    deliver(rt, pull.review("bob", "approved", clock.now()))
    assert store.measures("octo/shop").waiting == 0

    clock.advance(hours=1)
    pull.head_sha = "b" * 40
    deliver(rt, pull.event("synchronize", clock.now()))
    measures = store.measures("octo/shop")
    assert measures.waiting == 1 and measures.oldest_since == clock.now()  # approval was stale

    clock.advance(hours=1)
    deliver(rt, pull.review("bob", "changes_requested", clock.now()))
    assert store.measures("octo/shop").waiting == 0

    clock.advance(hours=1)
    pull.head_sha = "c" * 40
    deliver(rt, pull.event("synchronize", clock.now()))
    assert store.measures("octo/shop").oldest_since == clock.now()


def test_measures_follow_lines_and_drafts(rt, github, clock):
    store = QueueStore(rt.redis, 42)
    first, second = (
        Pull(number=1, additions=100, deletions=0),
        Pull(number=2, additions=5, deletions=5),
    )
    deliver(rt, first.event("opened", clock.now()))
    deliver(rt, second.event("opened", clock.now()))
    assert store.measures("octo/shop").lines == 110

    second.draft = True
    deliver(rt, second.event("converted_to_draft", clock.now()))
    assert (store.measures("octo/shop").waiting, store.measures("octo/shop").lines) == (1, 100)

    first.state = "closed"
    deliver(rt, first.event("closed", clock.now()))
    assert store.measures("octo/shop").waiting == 0
    assert store.measures("octo/shop").lines == 0


def test_draft_carries_no_status(rt, github, clock):
    pull = Pull(draft=True)
    deliver(rt, pull.event("opened", clock.now()))
    assert github.statuses() == []

    pull.draft = False
    deliver(rt, pull.event("ready_for_review", clock.now()))
    assert github.statuses() == [(pull.head_sha, "success", GREEN)]


def test_size_label_moves_when_the_pr_grows(rt, github, clock):
    pull = Pull(additions=3, deletions=2)
    deliver(rt, pull.event("opened", clock.now()))
    pull.additions, pull.head_sha = 400, "d" * 40
    deliver(rt, pull.event("synchronize", clock.now()))

    label_writes = [(m, p, b) for m, p, b in github.writes() if "/issues/" in p]
    assert label_writes == [
        ("POST", "/repos/octo/shop/issues/1/labels", ["size/XS"]),
        ("POST", "/repos/octo/shop/issues/1/labels", ["size/L"]),
        ("DELETE", "/repos/octo/shop/issues/1/labels/size/XS", None),
    ]


def test_time_alone_turns_the_light(rt, github, clock):
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    opened = clock.now()

    scheduled = ScheduledJobRegistry(queue=rt.lanes.shared)
    job_ids = scheduled.get_job_ids()
    assert job_ids == [job_id("tick", 42, "octo/shop")]
    assert from_timestamp(
        scheduled.get_scheduled_time(job_ids[0]).timestamp()
    ) == opened + timedelta(hours=24)

    clock.advance(hours=24)
    from stoplight.pipeline.lights import refresh_team
    from tests.conftest import run_jobs

    verdict = refresh_team(InstallationContext.of(rt, 42), "octo/shop")
    run_jobs(rt)
    assert verdict.level is Level.YELLOW
    assert github.statuses()[-1] == (pull.head_sha, "success", YELLOW)
    assert from_timestamp(
        scheduled.get_scheduled_time(job_ids[0]).timestamp()
    ) == opened + timedelta(hours=48)


def test_installations_stay_apart(rt, github, clock):
    ours, theirs = Pull(repo=Repo(installation_id=1)), Pull(repo=Repo(installation_id=2))
    deliver(rt, ours.event("opened", clock.now()))
    deliver(rt, theirs.event("opened", clock.now()))
    assert QueueStore(rt.redis, 1).measures("octo/shop").waiting == 1
    assert QueueStore(rt.redis, 2).measures("octo/shop").waiting == 1
    assert github.tokens_issued == 2
