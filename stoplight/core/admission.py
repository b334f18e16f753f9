"""Whether a PR that becomes ready enters review now or is held, and why: pure, no I/O.

People's new PRs are held while the light is red. Agents' new PRs are held from
`agents.hold_from` on (yellow by default), and no more than `agents.max_waiting` agent PRs wait
at once. With `wip_per_author`, a person whose waiting PRs (their agents' counted with theirs)
reach the cap has their next one held. The expedite label always admits.

The same rule answers three questions: a delivery's PR (the store), a held PR's turn (the held
lane drains), and "would a new PR be held now?" (the pull signal agents read before they start).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from stoplight.core.changes import PullSnapshot
from stoplight.core.light import Level
from stoplight.core.pulls import Rules


class HoldReason(StrEnum):
    RED = "red"  # the queue is red: nobody starts a new review
    AGENT_LIGHT = "agent_light"  # agents wait from `agents.hold_from` on
    AGENTS_FULL = "agents_full"  # `agents.max_waiting` agent PRs wait already
    WIP = "wip"  # the person has `wip_per_author` PRs waiting already


@dataclass(frozen=True)
class Entrance:
    """What the rule reads of a team's queue: its light and who waits."""

    level: Level
    agents_waiting: int = 0
    waiting_by_person: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, level: Level, waiting: Iterable[PullSnapshot], rules: Rules) -> Entrance:
        """The entrance to a queue whose waiting PRs are `waiting`."""
        pulls = list(waiting)
        return cls(
            level=level,
            agents_waiting=sum(1 for pull in pulls if rules.is_agent(pull)),
            waiting_by_person=Counter(pull.person for pull in pulls),
        )

    def with_one_more(self, pull: PullSnapshot, rules: Rules) -> Entrance:
        """The entrance once `pull` waits too (as the held lane drains, one PR at a time)."""
        by_person = Counter(self.waiting_by_person)
        by_person[pull.person] += 1
        return Entrance(
            level=self.level,
            agents_waiting=self.agents_waiting + (1 if rules.is_agent(pull) else 0),
            waiting_by_person=by_person,
        )


def hold_reason(
    entrance: Entrance,
    rules: Rules,
    *,
    agent: bool,
    person: str,
    expedite: bool = False,
) -> HoldReason | None:
    """Why a PR (an agent's or not, credited to `person`) that becomes ready now is held; None
    when it enters review. The first reason that applies is the one people are told."""
    if expedite:
        return None
    if rules.hold_when_red and entrance.level is Level.RED:
        return HoldReason.RED
    if agent and rules.agents.hold_from is not None and entrance.level >= rules.agents.hold_from:
        return HoldReason.AGENT_LIGHT
    limit = rules.agents.max_waiting
    if agent and limit is not None and entrance.agents_waiting >= limit:
        return HoldReason.AGENTS_FULL
    cap = rules.wip_per_author
    if cap is not None and entrance.waiting_by_person.get(person, 0) >= cap:
        return HoldReason.WIP
    return None


def pull_hold_reason(entrance: Entrance, pull: PullSnapshot, rules: Rules) -> HoldReason | None:
    """`hold_reason` for a PR as GitHub shows it."""
    return hold_reason(
        entrance,
        rules,
        agent=rules.is_agent(pull),
        person=pull.person,
        expedite=rules.expedite_label in pull.labels,
    )
