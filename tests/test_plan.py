"""The effects plan (`effects/plan.py`): which status and labels a PR shows, from values alone."""

from __future__ import annotations

import pytest

from stoplight.core.light import Level
from stoplight.core.marks import HELD_LABEL, SWARM_LABEL, Status, size_label
from stoplight.effects.plan import DESCRIPTIONS, TeamMarks, plan_pull
from tests.test_pulls import T0, pull, run

URL = "https://stoplight.example/teams/42/octo%2Fshop"


@pytest.mark.parametrize("light", list(Level))
def test_the_plan_of_an_admitted_pr_is_its_light_and_its_size(light):
    plan = plan_pull(run(pull("opened", T0)), light, URL)
    assert plan.status == Status("success", DESCRIPTIONS[light], URL)
    assert plan.labels == (size_label(50),)


def test_the_plan_of_a_held_pr_names_its_place_and_comes_first():
    record = run(pull("opened", T0), red=True)
    plan = plan_pull(record, Level.RED, URL, TeamMarks(held=("1001#9", record.key)))
    assert plan.status is not None and plan.status.state == "pending"
    assert plan.status.description.startswith("Held (2nd in line)")
    assert HELD_LABEL in plan.labels and plan.priority == 0


def test_the_plan_marks_swarm_and_configuration_errors_and_leaves_drafts_bare():
    record = run(pull("opened", T0))
    swarm = plan_pull(record, Level.RED, URL, TeamMarks(swarm=frozenset({record.key})))
    assert SWARM_LABEL in swarm.labels
    error = "Invalid .github/stoplight.yml: teams[0].name: " + "x" * 200
    broken = plan_pull(record, Level.GREEN, URL, TeamMarks(errors={"octo/shop": error}))
    assert broken.status is not None and broken.status.state == "error"
    assert len(broken.status.description) <= 140
    draft = plan_pull(run(pull("opened", T0, draft=True)), Level.GREEN, URL)
    assert draft.status is None and draft.labels == (size_label(50),)
