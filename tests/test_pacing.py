"""Pacing of GitHub writes: the shared budget, GitHub's throttling, retries, fan-out order."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
import responses
from github import GithubException

from stoplight.clients.github import throttled_until
from stoplight.clients.pacing import GITHUB_BUDGET, Pacer, WriteBudget
from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS, TeamEffects
from stoplight.pipeline import runtime
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver, mark_as_seen, run_due_jobs
from tests.fakes import Pull
from tests.recorders import RecordedLabels, RecordedStatuses

GREEN = DESCRIPTIONS[Level.GREEN]


def _within_budget(granted: list[float], budget: WriteBudget) -> None:
    gap = budget.min_gap.total_seconds()
    assert all(later - earlier >= gap for earlier, later in itertools.pairwise(granted))
    for i, start in enumerate(granted):
        in_minute = [t for t in granted[i:] if t < start + 60]
        in_hour = [t for t in granted[i:] if t < start + 3600]
        assert len(in_minute) <= budget.per_minute
        assert len(in_hour) <= budget.per_hour


def test_five_hundred_queued_writes_never_exceed_the_budget(redis, clock):
    pacer = Pacer(redis, clock)
    granted: list[float] = []
    start = clock.now()
    while len(granted) < 600:
        until = pacer.acquire(42)
        if until is None:
            granted.append((clock.now() - start).total_seconds())
        else:
            assert until > clock.now()
            clock.moment = until
    _within_budget(granted, GITHUB_BUDGET)
    assert granted[79] < 80 and granted[80] >= 60  # the minute's 80 go at a second each
    assert granted[500] >= 3600  # the 501st waits for the hour


def test_one_installations_budget_never_holds_up_another(redis, clock):
    pacer = Pacer(redis, clock)
    assert pacer.acquire(1) is None
    assert pacer.acquire(1) == clock.now() + timedelta(seconds=1)
    assert pacer.acquire(2) is None


def test_a_pause_stops_every_write_of_that_installation_only(redis, clock):
    pacer = Pacer(redis, clock)
    until = clock.now() + timedelta(seconds=30)
    pacer.pause(7, until)
    pacer.pause(7, clock.now() + timedelta(seconds=5))  # a shorter pause never shortens it
    assert pacer.acquire(7) == until
    assert pacer.acquire(8) is None
    clock.moment = until
    assert pacer.acquire(7) is None  # the pause has ended


@pytest.mark.parametrize(
    ("status", "headers", "message", "wait"),
    [
        (403, {"Retry-After": "2"}, "You have exceeded a secondary rate limit", 2),
        (429, {"retry-after": "30"}, "Too many requests", 30),
        (403, {}, "You have exceeded a secondary rate limit. Please wait", 60),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "RESET"}, "API rate limit", 900),
    ],
)
def test_github_throttling_says_when_writes_may_resume(clock, status, headers, message, wait):
    reset = str(int((clock.now() + timedelta(seconds=900)).timestamp()))
    headers = {name: reset if value == "RESET" else value for name, value in headers.items()}
    error = GithubException(status, {"message": message}, headers)
    assert throttled_until(error, clock.now()) == clock.now() + timedelta(seconds=wait)


def test_other_errors_are_not_throttling(clock):
    assert throttled_until(GithubException(403, {"message": "Forbidden"}, {}), clock.now()) is None
    assert throttled_until(GithubException(502, {"message": "Bad"}, {}), clock.now()) is None


def test_secondary_limit_pauses_writes_then_every_status_lands(rt, github, clock):
    refused = []

    def throttle_once(request):
        if not refused:
            refused.append(request.url)
            headers = {"Retry-After": "2"}
            return 403, headers, json.dumps({"message": "You have exceeded a secondary rate limit"})
        return 201, {}, request.body

    github.mock.remove(responses.POST, github.status_route)
    github.mock.add_callback(responses.POST, github.status_route, throttle_once)
    first, second = Pull(number=1, head_sha="a" * 40), Pull(number=2, head_sha="b" * 40)
    deliver(rt, first.event("opened", clock.now()))
    assert len(refused) == 1 and github.statuses() == [("a" * 40, "success", GREEN)]
    writes_during_pause = len(github.writes())

    deliver(rt, second.event("opened", clock.now()))  # arrives during the pause
    clock.advance(seconds=1)
    run_due_jobs(rt, clock)
    assert len(github.writes()) == writes_during_pause  # nothing at all went out meanwhile

    clock.advance(seconds=1)
    run_due_jobs(rt, clock)
    posted = [(sha, text) for sha, _, text in github.statuses()]
    assert sorted(set(posted)) == [("a" * 40, GREEN), ("b" * 40, GREEN)]
    label_adds = [path for method, path, _ in github.writes() if path.endswith("/labels")]
    assert sorted(label_adds) == sorted(set(label_adds))  # no label write went out twice


def test_502_three_times_then_success_posts_the_status_once(rt, github, clock, monkeypatch):
    monkeypatch.setattr("stoplight.clients.github.RETRY_BACKOFF_SECONDS", 0)
    answers = iter([502, 502, 502])

    def flaky(request):
        status = next(answers, 201)
        return status, {}, request.body if status == 201 else '{"message": "Bad Gateway"}'

    github.mock.remove(responses.POST, github.status_route)
    github.mock.add_callback(responses.POST, github.status_route, flaky)
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    attempts = [call for call in github.mock.calls if "/statuses/" in call.request.url]
    assert len(attempts) == 4
    assert [call.response.status_code for call in attempts][-1] == 201
    assert QueueStore(rt.redis, 42).light("octo/shop") is not None


def test_a_fan_out_beyond_the_budget_ends_and_resumes_when_allowed(settings, redis, clock, github):
    budget = WriteBudget(min_gap=timedelta(seconds=1), per_minute=5, per_hour=500)
    mark_as_seen(redis, clock)
    rt = runtime.Runtime.create(
        settings, redis, clock, budget=budget, sleep=lambda s: clock.advance(seconds=s)
    )
    with runtime.installed(rt):
        pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, 5)]
        for pull in pulls:
            deliver(rt, pull.event("opened", clock.now()))
        for _ in range(10):
            clock.advance(minutes=1)
            run_due_jobs(rt, clock)

    yellow = DESCRIPTIONS[Level.YELLOW]
    final = {sha: text for sha, _, text in github.statuses()}
    assert final == {pull.head_sha: yellow for pull in pulls}
    assert len(github.statuses()) == len(set(github.statuses()))
    granted = sorted(
        score / 1000 for _, score in redis.zrange("stoplight:i:{42}:writes", 0, -1, withscores=True)
    )
    assert len(granted) == len(github.writes())  # every write went through the budget
    _within_budget(granted, budget)


def recorded_effects(rt) -> tuple[TeamEffects, RecordedStatuses]:
    statuses = RecordedStatuses()
    return TeamEffects(42, rt.settings.base_url, statuses, RecordedLabels()), statuses


def test_fan_out_goes_waiting_prs_first_and_stops_when_its_light_is_gone(rt, github, clock):
    approved, waiting = Pull(number=1, head_sha="1" * 40), Pull(number=2, head_sha="2" * 40)
    deliver(rt, approved.event("opened", clock.now()))
    deliver(rt, approved.review("bob", "approved", clock.now()))
    deliver(rt, waiting.event("opened", clock.now()))
    effects, statuses = recorded_effects(rt)
    pulls = QueueStore(rt.redis, 42).open_pulls("octo/shop")

    asked = iter([True, False])
    fanout = effects.apply("octo/shop", Level.RED, pulls, lambda: next(asked))
    assert not fanout.finished
    assert statuses.shas() == ["2" * 40]  # the waiting PR went first; the rest was dropped


def test_fan_out_goes_to_the_most_recently_active_waiting_prs_first(rt, github, clock):
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in (1, 2, 3)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
        clock.advance(minutes=10)
    deliver(rt, pulls[0].review("bob", "commented", clock.now()))  # #1 is the one being read
    effects, statuses = recorded_effects(rt)

    effects.apply("octo/shop", Level.RED, QueueStore(rt.redis, 42).open_pulls("octo/shop"))
    assert statuses.shas() == [pulls[0].head_sha, pulls[2].head_sha, pulls[1].head_sha]
