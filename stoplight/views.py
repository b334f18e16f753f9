"""Read models of a team's queue, shared by the web page and the terminal view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from redis import Redis

from stoplight.light import Level, Measures, Policy, Thresholds
from stoplight.pulls import PullRecord
from stoplight.queue import QueueStore
from stoplight.teams import RepoConfigs

PULLS_SHOWN = 5
T = TypeVar("T")


@dataclass(frozen=True)
class WaitingPull:
    record: PullRecord
    waited: timedelta


@dataclass(frozen=True)
class TeamView:
    installation_id: int
    key: str
    name: str
    level: Level | None
    since: datetime | None
    measures: Measures
    oldest: timedelta
    policy: Policy
    waiting: tuple[WaitingPull, ...]
    held: int = 0

    def limits(self, level: Level) -> Thresholds:
        limits = self.policy.thresholds(level)
        assert limits is not None
        return limits


def limit_text(value: T | None, show: Callable[[T], str] = str) -> str:
    """A threshold as the views print it: "off" when the team set none."""
    return "off" if value is None else show(value)


def team_view(
    store: QueueStore, team: str, name: str, policy: Policy, now: datetime, shown: int = PULLS_SHOWN
) -> TeamView:
    light = store.light(team)
    measures = store.measures(team)
    waiting = tuple(
        WaitingPull(record, policy.calendar.waited(record.wait_since, now))
        for record in store.waiting_pulls(team, shown)
        if record.wait_since is not None
    )
    return TeamView(
        installation_id=store.installation_id,
        key=team,
        name=name,
        level=light.level if light else None,
        since=light.since if light else None,
        measures=measures,
        oldest=measures.oldest(now, policy.calendar),
        policy=policy,
        waiting=waiting,
        held=store.held_count(team),
    )


def load_team_view(
    redis: Redis, installation_id: int, team: str, now: datetime, policy: Policy | None = None
) -> TeamView | None:
    """The team's view with `policy`, by default its configured one; None for a team never seen."""
    store = QueueStore(redis, installation_id)
    name = store.teams().get(team)
    if name is None:
        return None
    if policy is None:
        policy = RepoConfigs(redis, installation_id).team(team).policy
    return team_view(store, team, name, policy, now)
