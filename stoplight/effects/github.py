"""Statuses and labels on GitHub: what each open PR of a team should show, and making it so.

`plan_pull` is pure: a PR record and the team's light in, the wanted status and labels out.
`TeamEffects.apply` walks the team's open PRs and hands each plan to the client, which skips
every write that would change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from stoplight.config import STATUS_LIMIT
from stoplight.github import InstallationClient, LabelSpec, Status
from stoplight.light import Level
from stoplight.pulls import PullRecord

DESCRIPTIONS = {
    Level.GREEN: "Green: review queue is flowing",
    Level.YELLOW: "Yellow: queue filling. Review a teammate's PR before starting new work",
    Level.RED: "Red: swarm on reviews. Stop starting new work until the queue clears",
}

# Prow's size buckets: (upper bound exclusive, label, color).
SIZES: tuple[tuple[float, LabelSpec], ...] = (
    (10, LabelSpec("size/XS", "009900", "Changes 0-9 lines")),
    (30, LabelSpec("size/S", "77bb00", "Changes 10-29 lines")),
    (100, LabelSpec("size/M", "eebb00", "Changes 30-99 lines")),
    (500, LabelSpec("size/L", "ee9900", "Changes 100-499 lines")),
    (1000, LabelSpec("size/XL", "ee5500", "Changes 500-999 lines")),
    (float("inf"), LabelSpec("size/XXL", "ee0000", "Changes 1000+ lines")),
)
SIZE_LABELS = frozenset(spec.name for _, spec in SIZES)
HELD_LABEL = LabelSpec("stoplight:held", "fbca04", "Waiting to enter the review queue")
SWARM_LABEL = LabelSpec("stoplight:swarm", "d93f0b", "Review this first: the queue is red")
MANAGED_LABELS = SIZE_LABELS | {HELD_LABEL.name, SWARM_LABEL.name}


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def held_description(place: int) -> str:
    return f"Held ({ordinal(place)} in line): review queue is red. Enters review as it drains"


def size_label(lines: int) -> LabelSpec:
    return next(spec for bound, spec in SIZES if lines < bound)


@dataclass(frozen=True)
class TeamMarks:
    """What sets single PRs of a team apart from the team's light."""

    held: tuple[str, ...] = ()  # pull keys in the held lane, first in line first
    swarm: frozenset[str] = frozenset()  # pull keys to carry stoplight:swarm
    errors: Mapping[str, str] = field(default_factory=dict)  # repo -> configuration error

    def place(self, pull_key: str) -> int | None:
        return self.held.index(pull_key) + 1 if pull_key in self.held else None


@dataclass(frozen=True)
class PullPlan:
    status: Status | None  # None: the PR shows no status (a draft)
    labels: tuple[LabelSpec, ...]


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
    status = None
    if record.open and not record.draft:
        error = marks.errors.get(record.repo)
        if error is not None:
            status = Status(state="error", description=_fit(error), target_url=target_url)
        elif place is not None:
            status = Status("pending", held_description(place), target_url)
        else:
            status = Status("success", DESCRIPTIONS[light], target_url)
    return PullPlan(status=status, labels=tuple(labels))


def _fit(text: str) -> str:
    return text if len(text) <= STATUS_LIMIT else text[: STATUS_LIMIT - 1] + "…"


class TeamEffects:
    def __init__(self, client: InstallationClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url

    def apply(
        self,
        team: str,
        light: Level,
        pulls: list[PullRecord],
        heartbeat: Callable[[], object] = lambda: None,
        *,
        marks: TeamMarks = TeamMarks(),
    ) -> int:
        """Bring every open PR of the team in line; returns how many writes went out.

        `heartbeat` is called after each PR, so a long pass can show it is still alive.
        """
        target_url = team_url(self.base_url, self.client.installation_id, team)
        writes = 0
        for record in sorted(pulls, key=lambda pull: (pull.repo, pull.number)):
            if not record.open:
                continue
            plan = plan_pull(record, light, target_url, marks)
            if plan.status and self.client.set_status(record.repo, record.head_sha, plan.status):
                writes += 1
            if self.client.sync_labels(
                record.repo, record.number, record.key, plan.labels, MANAGED_LABELS, record.labels
            ):
                writes += 1
            heartbeat()
        return writes
