"""Stale PRs: a PR left waiting past the team's `stale_after` leaves the measures, carries
`stoplight:stale`, and waits afresh once somebody acts on it."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from rq.registry import ScheduledJobRegistry

from stoplight.config.repos import RepoConfigs
from stoplight.core.light import Level, LightState
from stoplight.core.pulls import Phase
from stoplight.effects.notice_blocks import NoticeContext, light_notice
from stoplight.ops import terminal
from stoplight.state.history import read_history
from stoplight.state.keys import job_id
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import load_team_view
from tests.conftest import deliver, run_due_jobs
from tests.fakes import Pull
from tests.test_expedite import held_lane
from tests.test_teams import HEIJUNKA, WEB
from tests.test_ticks import tick_at

TEAM = "octo/shop"
STALE_IN_TWO_DAYS = "stale_after: 2d\n"


def store(rt) -> QueueStore:
    return QueueStore(rt.redis, 42)


def left_alone(rt, github, clock) -> tuple[Pull, Pull]:
    """Two PRs: one nobody looks at, and one opened a day later."""
    github.put_config(TEAM, STALE_IN_TWO_DAYS)
    abandoned, later = Pull(number=1), Pull(number=2, head_sha="b" * 40)
    deliver(rt, abandoned.event("opened", clock.now()))
    clock.advance(days=1)
    deliver(rt, later.event("opened", clock.now()))
    return abandoned, later


def test_a_pr_left_past_stale_after_leaves_the_measures_when_its_moment_comes(rt, github, clock):
    abandoned, _ = left_alone(rt, github, clock)
    opened = clock.now() - timedelta(days=1)
    # Yellow already (the oldest waited 24 h); next, red and stale at the same moment.
    assert tick_at(rt) == opened + timedelta(days=2)
    assert store(rt).measures(TEAM).waiting == 2

    clock.advance(days=1)
    assert run_due_jobs(rt, clock) == 1
    queue = store(rt)
    assert queue.pull("1001#1").phase is Phase.STALE
    measures = queue.measures(TEAM)
    assert (measures.waiting, measures.lines) == (1, 50)
    assert measures.oldest_since == opened + timedelta(days=1)
    assert [record.key for record in queue.stale_pulls(TEAM, 10)] == ["1001#1"]
    assert "stoplight:stale" in github.carried_labels(TEAM, abandoned.number)
    assert "stoplight:stale" not in github.carried_labels(TEAM, 2)


def test_stale_prs_no_longer_keep_a_team_red(rt, github, clock):
    github.put_config(TEAM, "stale_after: 3d\n")
    deliver(rt, Pull(number=1).event("opened", clock.now()))
    clock.advance(days=2, seconds=1)
    run_due_jobs(rt, clock)
    assert store(rt).light(TEAM).level is Level.RED  # waited past 48 h

    clock.advance(days=1)
    run_due_jobs(rt, clock)
    clock.advance(minutes=10)  # the cooldown
    run_due_jobs(rt, clock)
    assert store(rt).light(TEAM).level is Level.GREEN
    assert store(rt).measures(TEAM).waiting == 0


def test_a_push_a_re_request_or_a_review_makes_a_stale_pr_wait_afresh(rt, github, clock):
    abandoned, _ = left_alone(rt, github, clock)
    clock.advance(days=1, seconds=1)
    run_due_jobs(rt, clock)
    assert store(rt).pull("1001#1").phase is Phase.STALE

    deliver(rt, abandoned.event("labeled", clock.now(), label={"name": "needs-love"}))
    assert store(rt).pull("1001#1").phase is Phase.STALE  # a label is no one acting on it

    abandoned.head_sha = "c" * 40
    deliver(rt, abandoned.event("synchronize", clock.now()))
    revived = store(rt).pull("1001#1")
    assert (revived.phase, revived.wait_since) == (Phase.WAITING, clock.now())
    assert "stoplight:stale" not in github.carried_labels(TEAM, abandoned.number)

    clock.advance(days=2, seconds=1)
    run_due_jobs(rt, clock)
    assert store(rt).pull("1001#1").phase is Phase.STALE
    deliver(
        rt, abandoned.event("review_requested", clock.now(), requested_reviewer={"login": "bo"})
    )
    assert store(rt).pull("1001#1").phase is Phase.WAITING

    clock.advance(days=2, seconds=1)
    run_due_jobs(rt, clock)
    deliver(rt, abandoned.review("bo", "commented", clock.now()))
    assert store(rt).pull("1001#1").wait_since == clock.now()


def test_a_stale_pr_that_is_approved_or_closed_leaves_the_stale_list(rt, github, clock):
    abandoned, later = left_alone(rt, github, clock)
    clock.advance(days=2, seconds=1)
    run_due_jobs(rt, clock)
    assert store(rt).stale_count(TEAM) == 2

    deliver(rt, abandoned.review("bo", "approved", clock.now()))
    later.state = "closed"
    deliver(rt, later.event("closed", clock.now()))
    assert store(rt).stale_count(TEAM) == 0
    assert store(rt).pull("1001#1").phase is Phase.APPROVED


def test_stale_after_null_keeps_every_waiting_pr_in_the_queue(rt, github, clock):
    github.put_config(TEAM, "stale_after: null\n")
    deliver(rt, Pull(number=1).event("opened", clock.now()))
    clock.advance(days=60)
    run_due_jobs(rt, clock)
    assert store(rt).measures(TEAM).waiting == 1
    assert store(rt).stale_count(TEAM) == 0


def test_going_stale_is_its_own_line_in_the_history(rt, github, clock):
    start = clock.now()
    left_alone(rt, github, clock)
    clock.advance(days=1, seconds=1)
    run_due_jobs(rt, clock)
    history = read_history(rt.redis, 42, TEAM, start, clock.now())
    assert [(e.pull, e.waiting_since) for e in history.stale] == [("1001#1", start)]
    assert history.exits == ()  # nobody reviewed it: it did not leave review


def test_the_tick_is_scheduled_for_the_moment_the_oldest_goes_stale(rt, github, clock):
    github.put_config(TEAM, "stale_after: 2d\nteams: [{name: shop, thresholds: "
                      "{yellow: {oldest: null}, red: {oldest: null}}}]\n")  # fmt: skip
    deliver(rt, Pull(number=1).event("opened", clock.now()))
    scheduled = ScheduledJobRegistry(queue=rt.lanes.shared)
    tick = scheduled.get_scheduled_time(job_id("tick", 42, "shop@octo/shop"))
    assert tick.timestamp() == (clock.now() + timedelta(days=2)).timestamp()


def test_stale_prs_are_listed_apart_in_slack_and_the_terminal(rt, github, clock):
    left_alone(rt, github, clock)
    clock.advance(days=1, seconds=1)
    run_due_jobs(rt, clock)
    view = load_team_view(rt.redis, 42, TEAM, clock.now(), RepoConfigs(rt.redis, 42).team(TEAM))
    assert view is not None and view.stale == 1
    assert [item.record.key for item in view.waiting] == ["1001#2"]

    notice = light_notice(view, NoticeContext(LightState(Level.GREEN, clock.now())))
    texts = [block["text"]["text"] for block in notice.blocks if block["type"] == "section"
             and "text" in block]  # fmt: skip
    [stale_line] = [text for text in texts if text.startswith("*Stale")]
    assert "(waiting over 2d)" in stale_line
    assert "<https://github.com/octo/shop/pull/1|octo/shop#1>" in stale_line
    assert "octo/shop/pull/2" not in stale_line

    console = Console(record=True, width=120)
    terminal.render(console, [view])
    shown = console.export_text()
    assert "1 stale" in shown
    assert "stale: waiting over 2d, out of the measures" in shown
    assert "octo/shop#1" in shown.split("stale: waiting over")[1]


def test_a_pr_reviewed_while_held_counts_as_in_and_out_of_review(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    start = clock.now()
    first, _, _ = held_lane(rt, clock)
    held_at = store(rt).pull("1001#6").held_since
    clock.advance(hours=3)
    deliver(rt, first.review("bo", "approved", clock.now()))
    assert store(rt).pull("1001#6").phase is Phase.APPROVED

    history = read_history(rt.redis, 42, WEB, start, clock.now())
    assert [entry.pull for entry in history.held] == ["1001#6", "1001#7", "1001#8"]
    [reviewed] = [e for e in history.exits if e.pull == "1001#6"]
    assert (reviewed.held, reviewed.waiting_since, reviewed.at) == (True, held_at, clock.now())
    assert ("1001#6", held_at) in [(e.pull, e.at) for e in history.entries]
    # The queue's own measures never held it: its samples are untouched by the review.
    assert store(rt).measures(WEB).waiting == 5


def test_only_what_comes_after_it_went_stale_revives_it(rt, github, clock):
    abandoned, _ = left_alone(rt, github, clock)
    commented_at = clock.now() - timedelta(hours=1)  # during its wait: it waits on
    deliver(rt, abandoned.review("bo", "commented", commented_at))
    clock.advance(days=1, seconds=1)
    run_due_jobs(rt, clock)
    assert store(rt).pull("1001#1").stale_since == clock.now()

    # A late delivery of the comment, or a sync replaying it, tells of nothing new.
    deliver(rt, abandoned.review("bo", "commented", commented_at))
    assert store(rt).pull("1001#1").phase is Phase.STALE


def test_a_bots_review_is_nobody_acting_on_a_stale_pr(rt, github, clock):
    abandoned, _ = left_alone(rt, github, clock)
    clock.advance(days=1, seconds=1)
    run_due_jobs(rt, clock)

    deliver(
        rt, abandoned.review("coderabbitai[bot]", "commented", clock.now(), reviewer_type="Bot")
    )
    assert store(rt).pull("1001#1").phase is Phase.STALE
    deliver(rt, abandoned.review("Copilot", "commented", clock.now(), reviewer_type="Bot"))
    assert store(rt).pull("1001#1").phase is Phase.STALE
