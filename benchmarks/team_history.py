"""One team's pull requests over up to a year, with what real histories have and a tidy month
lacks: PRs opened and abandoned (never reviewed nor closed), PRs merged whose close was never
delivered, bot approvals (`coderabbitai[bot]`), PRs by Copilot's coding agent, days with a
burst of PRs, and days, even weeks, without a delivery. The first human review comes after
hours (median about four), so in a burst PRs are still reviewed while the light holds them.

Random but seeded: the same arguments give the same history. Tests and benchmarks share it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from benchmarks.org_history import PullHistory, Repository, sha
from stoplight.backtest.history import Recorded

START = datetime(2025, 10, 6, tzinfo=UTC)  # a Monday
AUTHORS = tuple(f"dev{n:02d}" for n in range(18))
AGENT = "Copilot"
REVIEWERS = ("ana", "bo", "chen", "dev", "eli", "fay")
REVIEW_BOT = "coderabbitai[bot]"
FIRST_REVIEW_MEDIAN_HOURS = 4.0


@dataclass(frozen=True)
class TeamShape:
    """What the history holds; shares are of the PRs opened."""

    days: int = 365
    per_working_day: float = 6.0
    abandoned: float = 0.0  # opened and left: never reviewed nor closed
    close_missing: float = 0.0  # closed, but the close never delivered
    by_agent: float = 0.05
    bot_reviewed: float = 0.5
    burst_days: float = 0.03  # days with four times the PRs
    quiet_days: float = 0.04  # working days without any PR
    holiday_weeks: int = 1  # whole weeks without a delivery


def team_year(shape: TeamShape = TeamShape(), *, seed: int = 7) -> list[PullHistory]:
    """The team's PRs (one repository, `acme/shop`), in the order they were opened."""
    rng = random.Random(seed)
    repo = Repository(77, 9000, "acme/shop")
    holidays = _holidays(rng, shape)
    found: list[PullHistory] = []
    for day in range(shape.days):
        date = START + timedelta(days=day)
        if date.weekday() >= 5 or day in holidays or rng.random() < shape.quiet_days:
            continue
        rate = shape.per_working_day * (4 if rng.random() < shape.burst_days else 1)
        for _ in range(_poisson(rng, rate)):
            opened = date + timedelta(hours=rng.uniform(8, 18))
            found.append(_pull(rng, shape, repo, len(found) + 1, opened.replace(microsecond=0)))
    return sorted(found, key=lambda pull: pull.opened)


def deliveries_of(pulls: list[PullHistory]) -> list[Recorded]:
    return sorted((d for pull in pulls for d in pull.deliveries()), key=lambda d: d.at)


def team_config(thresholds: str | None = None) -> str:
    """The team over `acme/shop`, on Berlin working hours; `thresholds` as a YAML mapping."""
    lines = ["teams:", "  - name: shop", "    repos: [shop]"]
    if thresholds is not None:
        lines.append(f"    thresholds: {thresholds}")
    return "\n".join([*lines, "working_hours:", "  timezone: Europe/Berlin", ""])


def _holidays(rng: random.Random, shape: TeamShape) -> set[int]:
    days: set[int] = set()
    for _ in range(shape.holiday_weeks):
        first = rng.randrange(max(shape.days - 7, 1))
        days.update(range(first, first + 7))
    return days


def _poisson(rng: random.Random, rate: float) -> int:
    """Knuth's: a handful of PRs a day needs nothing faster."""
    limit, count, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _pull(
    rng: random.Random, shape: TeamShape, repo: Repository, number: int, opened: datetime
) -> PullHistory:
    def later(at: datetime, hours: float) -> datetime:
        return (at + timedelta(hours=hours)).replace(microsecond=0)

    size = max(int(rng.lognormvariate(4.0, 1.2)), 1)
    pull = PullHistory(
        repo=repo,
        number=number,
        author=AGENT if rng.random() < shape.by_agent else rng.choice(AUTHORS),
        opened=opened,
        additions=size,
        deletions=size // 3,
        heads=[(opened, sha(repo.id, number, 0))],
    )
    ready = opened
    if rng.random() < 0.1:
        ready = pull.ready_at = later(opened, rng.uniform(1, 24))
    reviewer = rng.choice(REVIEWERS)
    pull.requested.append((later(ready, rng.uniform(0.01, 0.1)), reviewer))
    if rng.random() < shape.abandoned:
        return pull
    head = pull.heads[0][1]
    if rng.random() < shape.bot_reviewed:
        pull.reviews.append((later(ready, rng.uniform(0.05, 0.3)), REVIEW_BOT, "APPROVED", head))
    reviewed = later(ready, rng.lognormvariate(math.log(FIRST_REVIEW_MEDIAN_HOURS), 1.1))
    if rng.random() < 0.25:
        pull.reviews.append((reviewed, reviewer, "CHANGES_REQUESTED", head))
        pushed = later(reviewed, rng.uniform(1, 24))
        head = sha(repo.id, number, 1)
        pull.heads.append((pushed, head))
        reviewed = later(pushed, rng.lognormvariate(math.log(2), 1.0))
    pull.reviews.append((reviewed, reviewer, "APPROVED", head))
    pull.closed = later(reviewed, rng.uniform(0.1, 6))
    pull.merged = rng.random() > 0.05
    pull.close_delivered = rng.random() >= shape.close_missing
    return pull
