"""The fan-out stage's decisions, through recorders: which PR shows which status and labels,
in which order, and that a pass writes nothing the PRs show already."""

from __future__ import annotations

import dataclasses

from stoplight.pipeline import fanout
from stoplight.pipeline.context import InstallationContext
from tests.recorders import LabelWrite, RecordedGitHub
from tests.test_expedite import held_lane
from tests.test_teams import HEIJUNKA, WEB


def recorded(rt) -> tuple[InstallationContext, RecordedGitHub]:
    github = RecordedGitHub()
    return dataclasses.replace(InstallationContext.of(rt, 42), github=github), github


def effects_pass(rt, ctx: InstallationContext, team: str) -> None:
    """A pass as a job would run it, once the team's effects were marked stale."""
    with rt.queue.pipeline() as pipe:
        fanout.mark_effects_stale(pipe, 42, team)
        pipe.execute()
    fanout.apply_effects(ctx, team)


def test_a_red_team_tells_its_held_prs_their_place_first_then_the_waiting_ones(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    held_lane(rt, clock)  # #1 to #5 waiting, #6 to #8 held
    ctx, recorder = recorded(rt)

    effects_pass(rt, ctx, WEB)

    shown = [
        (sha[-1], status.state, status.description) for _, sha, status in recorder.statuses.posted
    ]
    # Held PRs first, as they tell their authors what to do; in each tier the latest active first.
    assert [number for number, _, _ in shown] == ["8", "7", "6", "5", "4", "3", "2", "1"]
    assert [(state, text[:19]) for _, state, text in shown[:3]] == [
        ("pending", "Held (3rd in line):"),
        ("pending", "Held (2nd in line):"),
        ("pending", "Held (1st in line):"),
    ]
    assert all(state == "success" and text.startswith("Red:") for _, state, text in shown[3:])
    held_labels = [write for write in recorder.labels.writes if "stoplight:held" in write.added]
    assert [write.pull_key for write in held_labels] == ["1001#8", "1001#7", "1001#6"]


def test_a_second_pass_over_an_unchanged_light_writes_nothing(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    held_lane(rt, clock)
    ctx, recorder = recorded(rt)
    effects_pass(rt, ctx, WEB)
    writes = (len(recorder.statuses.posted), len(recorder.labels.writes))

    effects_pass(rt, ctx, WEB)

    assert (len(recorder.statuses.posted), len(recorder.labels.writes)) == writes


def test_a_held_label_a_person_removed_comes_back_while_the_pr_is_held(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    held_lane(rt, clock)
    ctx, recorder = recorded(rt)
    effects_pass(rt, ctx, WEB)
    assert recorder.labels.forget("1001#6", "stoplight:held")

    effects_pass(rt, ctx, WEB)

    assert recorder.labels.writes[-1] == LabelWrite("1001#6", ["stoplight:held"], [])
