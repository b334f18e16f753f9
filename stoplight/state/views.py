"""Read models of a team's queue, shared by the web pages, the JSON API and `stoplight status`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from redis import Redis

from stoplight.config.schema import TeamSettings
from stoplight.core.agents import agent_name
from stoplight.core.light import Level, Measures, Policy, Thresholds, assess
from stoplight.core.marks import size_label
from stoplight.core.pulls import PullRecord
from stoplight.state import keys
from stoplight.state.claims import ClaimStore, swarm_keys
from stoplight.state.replies import text
from stoplight.state.review_queue import QueueStore

PULLS_SHOWN = 5
T = TypeVar("T")


@dataclass(frozen=True)
class WaitingPull:
    record: PullRecord
    waited: timedelta
    swarm: bool = False  # among the PRs the red light asks everyone to review first
    claimed_by: str | None = None  # the GitHub login that said "I'll review" in Slack

    def as_json(self) -> dict[str, Any]:
        return {
            **_pull_json(self.record),
            "waited_seconds": _seconds(self.waited),
            "swarm": self.swarm,
            "claimed_by": self.claimed_by,
        }


@dataclass(frozen=True)
class AgentShare:
    """How much of the queue and of the held lane is agents' PRs, and whose agents they are."""

    waiting: int = 0
    held: int = 0
    # "Copilot for alice" -> their waiting and held PRs, most first
    whose: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, waiting: list[PullRecord], held: list[PullRecord]) -> AgentShare:
        agents = [record for record in (*waiting, *held) if record.by_agent]
        counted = Counter(_agent_byline(record) for record in agents)
        return cls(
            waiting=sum(1 for record in waiting if record.by_agent),
            held=sum(1 for record in held if record.by_agent),
            whose=tuple(sorted(counted.items(), key=lambda item: (-item[1], item[0]))),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "waiting": self.waiting,
            "held": self.held,
            "whose": [{"agent": name, "pulls": count} for name, count in self.whose],
        }


def _agent_byline(record: PullRecord) -> str:
    name = agent_name(record.author)
    return f"{name} for {record.person}" if record.person != record.author else name


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
    called_for: Level = Level.GREEN  # what the measures alone ask for now
    reasons: tuple[str, ...] = ()  # the thresholds they reach for it
    held_line: tuple[PullRecord, ...] = ()  # the first of the held lane, first in line first
    stale: int = 0
    # The stale PRs left longest first, with how long since their wait began (wall-clock).
    stale_line: tuple[WaitingPull, ...] = ()
    agents: AgentShare = AgentShare()

    @property
    def agents_share(self) -> float:
        """The agents' share of the waiting PRs, 0 to 1."""
        return self.agents.waiting / self.measures.waiting if self.measures.waiting else 0.0

    def limits(self, level: Level) -> Thresholds:
        limits = self.policy.thresholds(level)
        assert limits is not None
        return limits

    @property
    def cooling_down(self) -> bool:
        """The light stays up while the measures have called for less for under the cooldown."""
        return self.level is not None and self.called_for < self.level

    def as_json(self) -> dict[str, Any]:
        """Stable keys for scripts; durations in seconds, moments in ISO 8601 UTC."""
        yellow, red = self.limits(Level.YELLOW), self.limits(Level.RED)
        return {
            "installation": self.installation_id,
            "key": self.key,
            "name": self.name,
            "light": _level_name(self.level),
            "since": self.since.isoformat() if self.since else None,
            "called_for": _level_name(self.called_for),
            "reasons": list(self.reasons),
            "held": self.held,
            "measures": {
                "waiting": {
                    "now": self.measures.waiting,
                    "yellow": yellow.waiting,
                    "red": red.waiting,
                },
                "oldest_seconds": {
                    "now": _seconds(self.oldest),
                    "yellow": _seconds(yellow.oldest),
                    "red": _seconds(red.oldest),
                },
                "lines": {"now": self.measures.lines, "yellow": yellow.lines, "red": red.lines},
            },
            "waiting_pulls": [item.as_json() for item in self.waiting],
            "held_pulls": [_pull_json(record) for record in self.held_line],
            "stale": self.stale,
            "stale_after_seconds": _seconds(self.policy.stale_after),
            "stale_pulls": [item.as_json() for item in self.stale_line],
            "agents": self.agents.as_json(),
        }


def limit_text(value: T | None, show: Callable[[T], str] = str) -> str:
    """A threshold as the views print it: "off" when the team set none."""
    return "off" if value is None else show(value)


def team_view(
    store: QueueStore,
    team: str,
    name: str,
    settings: TeamSettings,
    now: datetime,
    shown: int = PULLS_SHOWN,
) -> TeamView:
    policy = settings.policy
    light = store.light(team)
    measures = store.measures(team)
    red = light is not None and light.level is Level.RED
    holders = ClaimStore(store.redis, store.installation_id).holders(now)
    swarm = set(swarm_keys(store, team, settings.swarm_labels if red else 0, holders))
    waiting = tuple(
        WaitingPull(
            record,
            policy.calendar.waited(record.wait_since, now),
            record.key in swarm,
            holders.get(record.key),
        )
        for record in store.waiting_pulls(team, shown)
        if record.wait_since is not None
    )
    called_for, reasons = assess(measures, policy, now)
    held_keys = store.held_keys(team)
    # The held lane is short by design (it drains first in first out): read it whole.
    held = store.pulls(held_keys)
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
        held=len(held_keys),
        called_for=called_for,
        reasons=reasons,
        held_line=tuple(held[:shown]),
        stale=store.stale_count(team),
        stale_line=tuple(
            WaitingPull(record, now - record.wait_since)
            for record in store.stale_pulls(team, shown)
            if record.wait_since is not None
        ),
        agents=AgentShare.of(store.waiting_agent_pulls(team), held),
    )


def load_team_view(
    redis: Redis,
    installation_id: int,
    team: str,
    now: datetime,
    settings: TeamSettings,
    shown: int = PULLS_SHOWN,
) -> TeamView | None:
    """The team's view with `settings` (the caller reads them: the state knows nothing of
    repository configurations); None for a team never seen."""
    store = QueueStore(redis, installation_id)
    name = store.teams().get(team)
    if name is None:
        return None
    return team_view(store, team, name, settings, now, shown)


def team_repositories(redis: Redis, installation_id: int, team: str) -> tuple[set[int], set[str]]:
    """The ids of the repositories with the team's open PRs, and the name of the one whose
    configuration defines the team: who can access one of them may see the team."""
    installation = keys.InstallationKeys(installation_id)
    open_keys = redis.smembers(installation.team(team).open)
    ids = {int(text(key).partition("#")[0]) for key in open_keys}
    home = redis.hget(installation.team_homes, team)
    return ids, {text(home) if home else team}


def _pull_json(record: PullRecord) -> dict[str, Any]:
    return {
        "repo": record.repo,
        "number": record.number,
        "title": record.title,
        "url": record.url,
        "author": record.author,
        "lines": record.lines,
        "size": size_label(record.lines).name,
        "requested_reviewers": list(record.requested_reviewers),
    }


def _level_name(level: Level | None) -> str | None:
    return level.name.lower() if level is not None else None


def _seconds(duration: timedelta | None) -> int | None:
    return None if duration is None else int(duration.total_seconds())
