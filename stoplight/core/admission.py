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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from stoplight.core.changes import PullSnapshot
from stoplight.core.light import Level, Measures, Policy, level_called_for
from stoplight.core.pulls import HoldReason, HoldRule, PullRecord, Rules

__all__ = [
    "Drain",
    "Entrance",
    "HoldReason",
    "drain",
    "entering",
    "hold_reason",
    "pull_hold_reason",
]


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


def entering(entrance: Entrance, rules: Rules) -> HoldRule:
    """The rule `core.pulls.advance` asks about a PR that newly becomes ready."""
    return lambda pull: pull_hold_reason(entrance, pull, rules)


@dataclass(frozen=True)
class Drain:
    admitted: list[PullRecord]  # in the order they enter
    # Why the PRs that stay held are held now, where the rule names a reason (one stopped only
    # by the measures, or by its place behind such a one, keeps the reason it has).
    reasons: dict[str, HoldReason]


def drain(
    held: Sequence[PullRecord],
    entrance: Entrance,
    measures: Measures,
    policy: Policy,
    rules: Rules,
    now: datetime,
) -> Drain:
    """Which held PRs enter as room appears: people's first, in their order, then agents', in
    theirs. Each enters if the rule lets it in with those admitted before it, and the measures
    with it added call for less than red (for an agent's, less than `agents.hold_from` too),
    or the queue is empty (nobody is held for ever). A PR held by its person's WIP is passed
    over, to enter when one of theirs leaves review; any other stop ends its lane, and a stop
    among people's PRs keeps every agent's out (humans enter before agents)."""
    admitted: list[PullRecord] = []
    for agents in (False, True):
        ceiling = Level.RED
        if agents and rules.agents.hold_from is not None:
            ceiling = min(ceiling, rules.agents.hold_from)
        stopped = False
        for record in (record for record in held if record.by_agent is agents):
            reason = _reason(entrance, record, rules)
            if reason is HoldReason.WIP:
                continue
            with_it = measures_with(measures, record, now)
            too_many = with_it.waiting > 1 and level_called_for(with_it, policy, now) >= ceiling
            if reason is not None or too_many:
                stopped = True
                break
            admitted.append(record)
            entrance, measures = entrance.with_one_more(record, rules), with_it
        if stopped and not agents:
            break
    entered = {record.key for record in admitted}
    reasons = {
        record.key: reason
        for record in held
        if record.key not in entered and (reason := _reason(entrance, record, rules)) is not None
    }
    return Drain(admitted, reasons)


def _reason(entrance: Entrance, record: PullRecord, rules: Rules) -> HoldReason | None:
    return hold_reason(
        entrance,
        rules,
        agent=record.by_agent,
        person=record.person,
        expedite=rules.expedite_label in record.labels,
    )


def measures_with(measures: Measures, record: PullRecord, now: datetime) -> Measures:
    """The measures once `record` starts waiting now."""
    oldest = min(measures.oldest_since or now, now)
    return Measures(measures.waiting + 1, oldest, measures.lines + record.lines)


def explain(reason: HoldReason, level: Level, rules: Rules, person: str) -> str:
    """Why a PR is held, in the few words a status and `stoplight gate` say after the place."""
    match reason:
        case HoldReason.RED:
            return "the review queue is red"
        case HoldReason.AGENT_LIGHT:
            held_from = rules.agents.hold_from or Level.RED
            return f"agents wait while the queue is {max(level, held_from).label.lower()}"
        case HoldReason.AGENTS_FULL:
            return f"{rules.agents.max_waiting} agent PRs are waiting already"
        case HoldReason.WIP:
            return f"{person} has {rules.wip_per_author} PRs waiting"
