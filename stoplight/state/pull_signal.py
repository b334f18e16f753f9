"""The pull signal: what an agent (or a script) reads before it starts a new PR.

The team's light and measures, whether a new PR, a person's or an agent's, would be held if it
were opened now (the entrance rule of `core/admission.py`, the store's own), the PRs to review
first, and when time alone could change the answer. The endpoint and `stoplight gate` both
read it here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis import Redis

from stoplight.config.schema import TeamSettings
from stoplight.core.admission import Entrance, HoldReason, explain, hold_reason
from stoplight.core.light import Level, evaluate
from stoplight.core.pulls import PullRecord, Rules
from stoplight.state.claims import ClaimStore
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import TeamView, load_team_view

NEXT_TO_REVIEW = 5


@dataclass(frozen=True)
class Entry:
    """Whether a new PR would be held now, and the sentence that says why or why not."""

    held: bool
    reason: HoldReason | None
    why: str

    def as_json(self) -> dict[str, Any]:
        return {"held": self.held, "reason": self.reason, "why": self.why}


@dataclass(frozen=True)
class Signal:
    view: TeamView
    human: Entry
    agent: Entry
    person: str | None
    next_to_review: tuple[dict[str, Any], ...]
    retry_after_seconds: int | None

    def as_json(self) -> dict[str, Any]:
        team = self.view.as_json()
        return {
            "installation": self.view.installation_id,
            "team": self.view.key,
            "name": self.view.name,
            "light": {"level": team["light"], "since": team["since"], "reasons": team["reasons"]},
            "measures": team["measures"],
            "person": self.person,
            "held_if_opened_now": {"human": self.human.as_json(), "agent": self.agent.as_json()},
            "next_to_review": list(self.next_to_review),
            "retry_after_seconds": self.retry_after_seconds,
        }


def load_signal(
    redis: Redis,
    installation_id: int,
    team: str,
    now: datetime,
    settings: TeamSettings,
    person: str | None = None,
    visible: Callable[[PullRecord], bool] = lambda record: True,
) -> Signal | None:
    """The team's signal for a new PR of `person` (None: of someone with no PR waiting);
    `visible` picks the PRs the reader may be shown; `settings` are the team's, as
    configured. None for a team never seen."""
    view = load_team_view(redis, installation_id, team, now, settings)
    if view is None:
        return None
    store = QueueStore(redis, installation_id)
    waiting = store.waiting_pulls(team, max(view.measures.waiting, 1))
    level = view.level if view.level is not None else Level.GREEN  # as the store takes it
    entrance = Entrance.of(level, waiting, settings.rules)
    # A login no PR is credited to: the answer for whoever has nothing waiting yet.
    asked_for = person if person is not None else ""

    def entry(*, agent: bool) -> Entry:
        reason = hold_reason(entrance, settings.rules, agent=agent, person=asked_for)
        return Entry(reason is not None, reason, why(reason, entrance, settings.rules, person))

    previous = store.light(team)
    next_change = evaluate(view.measures, view.policy, previous, now).next_change_at
    holders = ClaimStore(redis, installation_id).holders(now)
    shown = [record for record in waiting if visible(record)][:NEXT_TO_REVIEW]
    return Signal(
        view=view,
        human=entry(agent=False),
        agent=entry(agent=True),
        person=person,
        next_to_review=tuple(_next_json(record, view, now, holders) for record in shown),
        retry_after_seconds=(
            max(int((next_change - now).total_seconds()), 0) if next_change else None
        ),
    )


def why(reason: HoldReason | None, entrance: Entrance, rules: Rules, person: str | None) -> str:
    """The sentence `stoplight gate` prints after "go:" or "held:"."""
    if reason is None:
        return f"the queue is {entrance.level.name.lower()}"
    if reason is HoldReason.RED:
        return "the queue is red: nobody starts new work until it clears"
    return explain(reason, entrance.level, rules, person or "")


def _next_json(
    record: PullRecord, view: TeamView, now: datetime, holders: dict[str, str]
) -> dict[str, Any]:
    waited = view.policy.calendar.waited(record.wait_since, now) if record.wait_since else None
    return {
        "repo": record.repo,
        "number": record.number,
        "url": record.url,
        "title": record.title,
        "waited_seconds": int(waited.total_seconds()) if waited is not None else None,
        "lines": record.lines,
        "claimed_by": holders.get(record.key),
    }
