"""Model-based test: random PR events through the whole app, against a small model of the rules.

The model is written from the README and PRODUCT.md, not from the code: a PR waits while it is
open, ready, and neither approved on its head commit nor sitting with changes requested there;
the light is the level the number of waiting PRs calls for (no cooldown here); a PR that newly
becomes ready while the light is red joins the held lane, unless it carries the expedite label;
held PRs enter, first in first out, while the queue with them added stays below red, and the
expedite label admits one at once. After every step each open PR's latest `stoplight` status
must be the one the model says.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS, held_description
from tests.conftest import deliver, mark_as_seen
from tests.fakes import START, Pull

EXPEDITE = "stoplight:expedite"
CONFIG = """
teams:
  - name: web
    thresholds:
      yellow: {waiting: 1, oldest: null, lines: null}
      red: {waiting: 2, oldest: null, lines: null}
    cooldown: 0s
"""
NEWLY_READY = {"opened", "reopened", "ready_for_review"}
MAX_PULLS = 6
REVIEWERS = st.sampled_from(["bob", "carol"])
VERDICTS = st.sampled_from(["approved", "changes_requested"])
_examples = itertools.count(1)


def called_for(waiting: int) -> Level:
    return Level.RED if waiting >= 2 else Level.YELLOW if waiting >= 1 else Level.GREEN


@dataclass
class ModelPull:
    head: str
    draft: bool
    open: bool = True
    labels: set[str] = field(default_factory=set)
    verdicts: dict[str, tuple[str, str]] = field(default_factory=dict)  # reviewer -> (state, sha)
    held: bool = False

    @property
    def ready(self) -> bool:
        """Open, not a draft, and neither approved nor with changes requested on its head."""
        if not self.open or self.draft:
            return False
        on_head = [state for state, sha in self.verdicts.values() if sha == self.head]
        return "changes_requested" not in on_head and "approved" not in on_head


@dataclass
class Model:
    pulls: dict[int, ModelPull] = field(default_factory=dict)
    light: Level | None = None
    held_line: list[int] = field(default_factory=list)

    def waiting(self) -> int:
        return sum(1 for pull in self.pulls.values() if pull.ready and not pull.held)

    def moved(self, number: int, action: str, was_waiting: bool, was_held: bool) -> None:
        pull = self.pulls[number]
        held = False
        if pull.ready and EXPEDITE not in pull.labels:
            newly = action in NEWLY_READY and self.light is Level.RED and not was_waiting
            held = was_held or newly
        pull.held = held
        if held and number not in self.held_line:
            self.held_line.append(number)
        if not held and number in self.held_line:
            self.held_line.remove(number)
        self.refresh()

    def refresh(self) -> None:
        self.light = called_for(self.waiting())
        if self.light is Level.RED:
            return
        while self.held_line:
            waiting = self.waiting() + 1
            if waiting > 1 and called_for(waiting) is Level.RED:
                break
            self.pulls[self.held_line.pop(0)].held = False
        self.light = called_for(self.waiting())

    def expected_status(self, number: int) -> str | None:
        pull = self.pulls[number]
        if not pull.open or pull.draft:
            return None
        if pull.held:
            return held_description(self.held_line.index(number) + 1)
        assert self.light is not None
        return DESCRIPTIONS[self.light]


def is_open(pull: ModelPull) -> bool:
    return pull.open


def is_closed(pull: ModelPull) -> bool:
    return not pull.open


def ready_to_draft(pull: ModelPull) -> bool:
    return pull.open and not pull.draft


def a_draft(pull: ModelPull) -> bool:
    return pull.open and pull.draft


def reviewed(pull: ModelPull) -> bool:
    return pull.open and bool(pull.verdicts)


def held(pull: ModelPull) -> bool:
    return pull.held


def expedited(pull: ModelPull) -> bool:
    return pull.open and EXPEDITE in pull.labels


def not_expedited(pull: ModelPull) -> bool:
    return pull.open and EXPEDITE not in pull.labels


class PullRequests(RuleBasedStateMachine):
    def __init__(self, rt, github, clock) -> None:
        super().__init__()
        rt.redis.flushall()
        clock.moment = START
        mark_as_seen(rt.redis, clock)  # a Redis the app has seen: no rebuild to wait for
        github.put_config("octo/shop", CONFIG)
        self.rt, self.github, self.clock = rt, github, clock
        self.example = next(_examples)
        self.model = Model()
        self.pulls: dict[int, Pull] = {}
        self.pushes = itertools.count(1)
        self.first_call = len(github.mock.calls)  # calls of earlier examples are not looked at

    def _sha(self, number: int, push: int) -> str:
        return f"{self.example:08x}{number:08x}{push:024x}"

    def _send(self, number: int, action: str, change, **extra) -> None:
        """Apply `change` to the model PR and send the delivery that says so."""
        pull, model = self.pulls[number], self.model.pulls[number]
        was_waiting, was_held = model.ready and not model.held, model.held
        change(pull, model)
        self.clock.advance(seconds=1)
        if action.startswith("review:"):
            reviewer, state = extra["reviewer"], action.partition(":")[2]
            submitted = "dismissed" if state == "dismissed" else "submitted"
            event = pull.review(reviewer, state, self.clock.now(), action=submitted)
        else:
            event = pull.event(action, self.clock.now(), **extra)
        deliver(self.rt, event)
        self.model.moved(number, action.partition(":")[0], was_waiting, was_held)

    def _some(self, wanted: Callable[[ModelPull], bool]) -> bool:
        return any(wanted(pull) for pull in self.model.pulls.values())

    def _pick(self, data: st.DataObject, wanted: Callable[[ModelPull], bool]) -> int:
        numbers = sorted(n for n, pull in self.model.pulls.items() if wanted(pull))
        return data.draw(st.sampled_from(numbers))

    @precondition(lambda self: len(self.pulls) < MAX_PULLS)
    @rule(draft=st.booleans())
    def open(self, draft: bool) -> None:
        number = len(self.pulls) + 1
        sha = self._sha(number, 0)
        self.pulls[number] = Pull(number=number, head_sha=sha, draft=draft)
        self.model.pulls[number] = ModelPull(head=sha, draft=draft, open=False)

        def change(pull: Pull, model: ModelPull) -> None:
            model.open = True

        self._send(number, "opened", change)

    @precondition(lambda self: self._some(ready_to_draft))
    @rule(data=st.data())
    def convert_to_draft(self, data: st.DataObject) -> None:
        def change(pull: Pull, model: ModelPull) -> None:
            pull.draft = model.draft = True

        self._send(self._pick(data, ready_to_draft), "converted_to_draft", change)

    @precondition(lambda self: self._some(a_draft))
    @rule(data=st.data())
    def ready_for_review(self, data: st.DataObject) -> None:
        def change(pull: Pull, model: ModelPull) -> None:
            pull.draft = model.draft = False

        self._send(self._pick(data, a_draft), "ready_for_review", change)

    @precondition(lambda self: self._some(is_open))
    @rule(data=st.data())
    def push(self, data: st.DataObject) -> None:
        number = self._pick(data, is_open)
        sha = self._sha(number, next(self.pushes))

        def change(pull: Pull, model: ModelPull) -> None:
            pull.head_sha = model.head = sha

        self._send(number, "synchronize", change)

    @precondition(lambda self: self._some(is_open))
    @rule(data=st.data(), reviewer=REVIEWERS, verdict=VERDICTS)
    def review(self, data: st.DataObject, reviewer: str, verdict: str) -> None:
        def change(pull: Pull, model: ModelPull) -> None:
            model.verdicts[reviewer] = (verdict, model.head)

        self._send(self._pick(data, is_open), f"review:{verdict}", change, reviewer=reviewer)

    @precondition(lambda self: self._some(reviewed))
    @rule(data=st.data())
    def dismiss(self, data: st.DataObject) -> None:
        number = self._pick(data, reviewed)
        reviewer = data.draw(st.sampled_from(sorted(self.model.pulls[number].verdicts)))

        def change(pull: Pull, model: ModelPull) -> None:
            model.verdicts[reviewer] = ("dismissed", model.verdicts[reviewer][1])

        self._send(number, "review:dismissed", change, reviewer=reviewer)

    @precondition(lambda self: self._some(not_expedited))
    @rule(data=st.data())
    def expedite(self, data: st.DataObject) -> None:
        def change(pull: Pull, model: ModelPull) -> None:
            pull.labels.append(EXPEDITE)
            model.labels.add(EXPEDITE)

        number = self._pick(data, not_expedited)
        self._send(number, "labeled", change, label={"name": EXPEDITE})

    @precondition(lambda self: self._some(held))
    @rule(data=st.data())
    def expedite_a_held_pr(self, data: st.DataObject) -> None:
        def change(pull: Pull, model: ModelPull) -> None:
            pull.labels.append(EXPEDITE)
            model.labels.add(EXPEDITE)

        self._send(self._pick(data, held), "labeled", change, label={"name": EXPEDITE})

    @precondition(lambda self: self._some(expedited))
    @rule(data=st.data())
    def unexpedite(self, data: st.DataObject) -> None:
        def change(pull: Pull, model: ModelPull) -> None:
            pull.labels.remove(EXPEDITE)
            model.labels.discard(EXPEDITE)

        self._send(self._pick(data, expedited), "unlabeled", change, label={"name": EXPEDITE})

    @precondition(lambda self: self._some(is_open))
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        def change(pull: Pull, model: ModelPull) -> None:
            pull.state, model.open = "closed", False

        self._send(self._pick(data, is_open), "closed", change)

    @precondition(lambda self: self._some(is_closed))
    @rule(data=st.data())
    def reopen(self, data: st.DataObject) -> None:
        def change(pull: Pull, model: ModelPull) -> None:
            pull.state, model.open = "open", True

        self._send(self._pick(data, is_closed), "reopened", change)

    @invariant()
    def every_open_pr_shows_what_the_model_says(self) -> None:
        latest = {}
        for call in self.github.mock.calls[self.first_call :]:
            if "/statuses/" in call.request.url:
                sha = call.request.url.rpartition("/")[2]
                latest[sha] = json.loads(call.request.body)["description"]
        for number, pull in self.pulls.items():
            expected = self.model.expected_status(number)
            if expected is not None:
                assert latest.get(pull.head_sha) == expected, (number, self.model)


def test_random_pr_events_match_the_model_of_the_rules(rt, github, clock):
    run_state_machine_as_test(
        lambda: PullRequests(rt, github, clock),
        settings=settings(
            max_examples=10,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
