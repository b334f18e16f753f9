"""Statuses and labels on GitHub: what each open PR of a team should show, and making it so.

`plan_pull` is pure: a PR record and the team's light in, the wanted status and labels out.
`TeamEffects.apply` walks the team's open PRs, most useful first, and hands each plan to the
writers (`effects.writers`: statuses, labels), which skip every write that would change
nothing. Writes are paced at about one a second, so a big team's fan-out takes minutes: the
order decides who sees the new light first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from stoplight.core.admission import explain
from stoplight.core.light import Level
from stoplight.core.marks import (
    HELD_LABEL,
    MANAGED_LABELS,
    STALE_LABEL,
    SWARM_LABEL,
    LabelSpec,
    Status,
    size_label,
)
from stoplight.core.pulls import HoldReason, PullRecord, Rules
from stoplight.core.text import clip
from stoplight.effects.writers import LabelWriter, StatusWriter

STATUS_LIMIT = 140  # GitHub's limit on a status description
DEFAULT_RULES = Rules()

DESCRIPTIONS = {
    Level.GREEN: "Green: review queue is flowing",
    Level.YELLOW: "Yellow: queue filling. Review a teammate's PR before starting new work",
    Level.RED: "Red: swarm on reviews. Stop starting new work until the queue clears",
}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def held_description(
    place: int,
    reason: HoldReason | None = HoldReason.RED,
    *,
    light: Level = Level.RED,
    person: str = "",
    rules: Rules = DEFAULT_RULES,
) -> str:
    """A held PR's status: its place, and why it is held. While the queue is red, red is the
    reason for everyone (the admission rule names it first)."""
    return clip(
        f"Held ({ordinal(place)} in line): {_why(reason, light, person, rules)}", STATUS_LIMIT
    )


def _why(reason: HoldReason | None, light: Level, person: str, rules: Rules) -> str:
    if light is Level.RED or reason in (None, HoldReason.RED):
        return "review queue is red. Enters review as it drains"
    return explain(reason, light, rules, person)


@dataclass(frozen=True)
class TeamMarks:
    """What sets single PRs of a team apart from the team's light."""

    held: tuple[str, ...] = ()  # pull keys in the held lane, first in line first
    swarm: frozenset[str] = frozenset()  # pull keys to carry stoplight:swarm
    errors: Mapping[str, str] = field(default_factory=dict)  # repo -> configuration error
    rules: Rules = DEFAULT_RULES  # the team's: the limits a held PR's status names

    def place(self, pull_key: str) -> int | None:
        return self.held.index(pull_key) + 1 if pull_key in self.held else None


@dataclass(frozen=True)
class PullPlan:
    status: Status | None  # None: the PR shows no status (a draft)
    labels: tuple[LabelSpec, ...]
    # Fan-out tier, lowest first: a PR whose status blocks or frees its author (held,
    # errors) before the waiting PRs reviewers look at, before the rest. Within a tier the
    # most recently active PR goes first (see `fanout_order`).
    priority: int = 2


@dataclass(frozen=True)
class Fanout:
    writes: int
    finished: bool  # False: dropped part-way because the light it was for is gone


def team_url(base_url: str, installation_id: int, team: str) -> str:
    return f"{base_url}/teams/{installation_id}/{quote(team, safe='')}"


def plan_pull(
    record: PullRecord, light: Level, target_url: str, marks: TeamMarks = TeamMarks()
) -> PullPlan:
    place = marks.place(record.key)
    labels = [size_label(record.lines)]
    if place is not None:
        labels.append(HELD_LABEL)
    if record.key in marks.swarm:
        labels.append(SWARM_LABEL)
    if record.stale:
        labels.append(STALE_LABEL)
    status = None
    if record.open and not record.draft:
        error = marks.errors.get(record.repo)
        if error is not None:
            status = Status("error", clip(error, STATUS_LIMIT), target_url)
        elif place is not None:
            why = held_description(
                place, record.held_for, light=light, person=record.person, rules=marks.rules
            )
            status = Status("pending", why, target_url)
        else:
            status = Status("success", DESCRIPTIONS[light], target_url)
    if status is not None and status.state != "success":
        priority = 0  # held PRs and errors first: they tell people what to do
    elif record.waiting:
        priority = 1
    else:
        priority = 2
    return PullPlan(status=status, labels=tuple(labels), priority=priority)


def fanout_order(plan: PullPlan, record: PullRecord) -> tuple[int, float, str, int]:
    """Where a PR comes in the fan-out: by tier, then the order a person is likely to look,
    the most recently active PR first (one just pushed to, reviewed or opened is the one
    somebody has open right now); repository and number break ties."""
    return (plan.priority, -record.updated_at.timestamp(), record.repo, record.number)


class TeamEffects:
    """A team's fan-out, through whichever writers it is given (see `effects.writers`)."""

    def __init__(
        self, installation_id: int, base_url: str, statuses: StatusWriter, labels: LabelWriter
    ) -> None:
        self.installation_id = installation_id
        self.base_url = base_url
        self.statuses = statuses
        self.labels = labels

    def apply(
        self,
        team: str,
        light: Level,
        pulls: list[PullRecord],
        still_current: Callable[[], bool] = lambda: True,
        *,
        marks: TeamMarks = TeamMarks(),
    ) -> Fanout:
        """Bring every open PR of the team in line, most useful first.

        `still_current` is asked before each PR: once it says no (a newer light, a lost lock),
        the rest of the fan-out is dropped, never finished with a light that no longer holds.
        """
        target_url = team_url(self.base_url, self.installation_id, team)
        plans = [
            (plan_pull(record, light, target_url, marks), record) for record in pulls if record.open
        ]
        plans.sort(key=lambda item: fanout_order(*item))
        writes = 0
        for plan, record in plans:
            if not still_current():
                return Fanout(writes, finished=False)
            if plan.status and self.statuses.set(record.repo, record.head_sha, plan.status):
                writes += 1
            if self.labels.sync(
                record.repo, record.number, record.key, plan.labels, MANAGED_LABELS, record.labels
            ):
                writes += 1
        return Fanout(writes, finished=True)
