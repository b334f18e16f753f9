"""A synthetic organisation's pull requests over some weeks, told twice: as the webhook
deliveries the app receives, and as GitHub's GraphQL API answers for them.

Both tell one history, so a backtest from the recorded deliveries and one read from a faked
GraphQL API must agree. Random but seeded: the same arguments give the same history.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stoplight.backtest.history import Recorded

START = datetime(2026, 9, 28, 0, 0, tzinfo=UTC)  # a Monday; October's DST change is inside
REVIEWERS = ("ana", "bo", "chen", "dev", "eli", "fay")
EXPEDITE = "stoplight:expedite"


@dataclass(frozen=True)
class Repository:
    installation_id: int
    id: int
    full_name: str


@dataclass
class PullHistory:
    repo: Repository
    number: int
    author: str
    opened: datetime
    additions: int
    deletions: int
    heads: list[tuple[datetime, str]]  # the first is the head when opened
    ready_at: datetime | None = None  # opened as a draft, ready then
    requested: list[tuple[datetime, str]] = field(default_factory=list)
    reviews: list[tuple[datetime, str, str, str]] = field(default_factory=list)  # who, state, sha
    labels: list[tuple[datetime, str]] = field(default_factory=list)
    closed: datetime | None = None
    merged: bool = False
    # False: GitHub never delivered the close (the app was down, the delivery failed), though
    # the PR was closed; GitHub's GraphQL API still tells it.
    close_delivered: bool = True

    def shift(self, by: timedelta) -> None:
        """Move the whole history by `by`."""
        self.opened += by
        self.heads = [(at + by, sha) for at, sha in self.heads]
        self.ready_at = self.ready_at + by if self.ready_at else None
        self.requested = [(at + by, login) for at, login in self.requested]
        self.reviews = [(at + by, *rest) for at, *rest in self.reviews]
        self.labels = [(at + by, name) for at, name in self.labels]
        self.closed = self.closed + by if self.closed else None

    @property
    def updated(self) -> datetime:
        moments = [self.opened, *(at for at, _ in self.heads), *(r[0] for r in self.reviews)]
        moments += [at for at, _ in self.requested] + [at for at, _ in self.labels]
        moments += [m for m in (self.ready_at, self.closed) if m is not None]
        return max(moments)

    def deliveries(self) -> list[Recorded]:
        """The deliveries GitHub sends for this PR, in time order."""
        state = {"draft": self.ready_at is not None, "head": self.heads[0][1], "open": True}
        labels: list[str] = []
        reviewers: list[str] = []
        steps: list[tuple[datetime, int, Any]] = []
        for at, sha in self.heads[1:]:
            steps.append((at, 1, ("push", sha)))
        if self.ready_at is not None:
            steps.append((self.ready_at, 1, ("ready", None)))
        steps += [(at, 1, ("request", login)) for at, login in self.requested]
        steps += [(at, 1, ("label", name)) for at, name in self.labels]
        steps += [
            (at, 1, ("review", (who, verdict, sha))) for at, who, verdict, sha in self.reviews
        ]
        if self.closed is not None and self.close_delivered:
            steps.append((self.closed, 2, ("close", None)))
        found = [self._pull("opened", self.opened, state, labels, reviewers)]
        for at, _, (kind, value) in sorted(steps, key=lambda step: (step[0], step[1])):
            if kind == "push":
                state["head"] = value
                found.append(self._pull("synchronize", at, state, labels, reviewers))
            elif kind == "ready":
                state["draft"] = False
                found.append(self._pull("ready_for_review", at, state, labels, reviewers))
            elif kind == "request":
                reviewers.append(value)
                found.append(
                    self._pull(
                        "review_requested", at, state, labels, reviewers,
                        requested_reviewer={"login": value, "type": "User"},
                    )
                )  # fmt: skip
            elif kind == "label":
                labels.append(value)
                found.append(
                    self._pull("labeled", at, state, labels, reviewers, label={"name": value})
                )
            elif kind == "review":
                found.append(self._review(at, value, state, labels, reviewers))
            else:
                state["open"] = False
                found.append(self._pull("closed", at, state, labels, reviewers))
        return found

    def _base(self) -> dict[str, Any]:
        name = self.repo.full_name
        return {
            "repository": {"id": self.repo.id, "full_name": name, "name": name.split("/")[1]},
            "installation": {"id": self.repo.installation_id},
        }

    def _pull_json(
        self, at: datetime, state: dict[str, Any], labels: list[str], reviewers: list[str]
    ) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": f"Change {self.number}",
            "html_url": f"https://github.com/{self.repo.full_name}/pull/{self.number}",
            "state": "open" if state["open"] else "closed",
            "draft": state["draft"],
            "user": {"login": self.author, "type": account_type(self.author)},
            "head": {"sha": state["head"]},
            "updated_at": iso(at),
            "created_at": iso(self.opened),
            "additions": self.additions,
            "deletions": self.deletions,
            "labels": [{"name": name} for name in labels],
            "requested_reviewers": [{"login": login, "type": "User"} for login in reviewers],
        }

    def _pull(
        self,
        action: str,
        at: datetime,
        state: dict[str, Any],
        labels: list[str],
        reviewers: list[str],
        **extra: Any,
    ) -> Recorded:
        payload = {"action": action, "number": self.number, **self._base(), **extra}
        payload["pull_request"] = self._pull_json(at, state, labels, reviewers)
        return Recorded(at, "pull_request", payload)

    def _review(
        self,
        at: datetime,
        review: tuple[str, str, str],
        state: dict[str, Any],
        labels: list[str],
        reviewers: list[str],
    ) -> Recorded:
        who, verdict, sha = review
        payload = {"action": "submitted", **self._base()}
        payload["pull_request"] = self._pull_json(at, state, labels, reviewers)
        payload["review"] = {
            "user": {"login": who, "type": account_type(who)},
            "state": verdict,
            "commit_id": sha,
            "submitted_at": iso(at),
        }
        return Recorded(at, "pull_request_review", payload)

    def node(self) -> dict[str, Any]:
        """The PR as the backtest's GraphQL query returns it."""
        items: list[dict[str, Any]] = []
        items += [
            {"__typename": "PullRequestCommit", "commit": {"oid": sha, "committedDate": iso(at)}}
            for at, sha in self.heads
        ]
        if self.ready_at is not None:
            items.append({"__typename": "ReadyForReviewEvent", "createdAt": iso(self.ready_at)})
        items += [
            {
                "__typename": "ReviewRequestedEvent",
                "createdAt": iso(at),
                "requestedReviewer": {"login": login},
            }
            for at, login in self.requested
        ]
        items += [
            {"__typename": "LabeledEvent", "createdAt": iso(at), "label": {"name": name}}
            for at, name in self.labels
        ]
        items += [
            {
                "__typename": "PullRequestReview",
                "id": f"R_{self.repo.id}_{self.number}_{n}",
                "author": {"login": who, "__typename": account_type(who)},
                "state": verdict,
                "submittedAt": iso(at),
                "commit": {"oid": sha},
            }
            for n, (at, who, verdict, sha) in enumerate(self.reviews)
        ]
        if self.closed is not None:
            kind = "MergedEvent" if self.merged else "ClosedEvent"
            items.append({"__typename": kind, "createdAt": iso(self.closed)})
        return {
            "id": f"PR_{self.repo.id}_{self.number}",
            "number": self.number,
            "title": f"Change {self.number}",
            "url": f"https://github.com/{self.repo.full_name}/pull/{self.number}",
            "createdAt": iso(self.opened),
            "updatedAt": iso(self.updated),
            "isDraft": False,
            "additions": self.additions,
            "deletions": self.deletions,
            "headRefOid": self.heads[-1][1],
            "author": {"login": self.author, "__typename": account_type(self.author)},
            "timelineItems": {
                "pageInfo": {"hasNextPage": False, "endCursor": None},
                "nodes": items,
            },
        }


def account_type(login: str) -> str:
    """A GitHub App's account (`coderabbitai[bot]`) or Copilot's coding agent is a Bot."""
    return "Bot" if login.endswith("[bot]") or login == "Copilot" else "User"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def org_month(
    pulls: int = 400,
    *,
    repos: int = 6,
    installation_id: int = 77,
    days: int = 35,
    seed: int = 14,
) -> list[PullHistory]:
    """`pulls` PRs spread over the working hours of `days` days across `repos` repositories:
    some drafts first, most reviewed within hours, some sent back for changes, a few expedited
    or closed unmerged."""
    rng = random.Random(seed)
    repositories = [
        Repository(installation_id, 5000 + n, f"acme/service-{n}") for n in range(repos)
    ]
    numbers = dict.fromkeys(range(repos), 0)
    found = []
    for _ in range(pulls):
        n = rng.randrange(repos)
        numbers[n] += 1
        opened = _working_moment(rng, days)
        found.append(_pull(rng, repositories[n], numbers[n], opened))
    return sorted(found, key=lambda pull: pull.opened)


def _working_moment(rng: random.Random, days: int) -> datetime:
    while True:
        day = rng.randrange(days)
        moment = START + timedelta(days=day, hours=rng.uniform(7, 17))
        if moment.weekday() < 5:
            return moment.replace(microsecond=0)


def _pull(rng: random.Random, repo: Repository, number: int, opened: datetime) -> PullHistory:
    def later(at: datetime, low: float, high: float) -> datetime:
        return (at + timedelta(hours=rng.uniform(low, high))).replace(microsecond=0)

    size = int(rng.lognormvariate(4.5, 1.0))
    pull = PullHistory(
        repo=repo,
        number=number,
        author=rng.choice(("alice", "bob", "carol", "dan", "erin")),
        opened=opened,
        additions=size,
        deletions=size // 3,
        heads=[(opened, sha(repo.id, number, 0))],
    )
    ready = opened
    if rng.random() < 0.2:
        ready = pull.ready_at = later(opened, 1, 20)
    reviewer = rng.choice(REVIEWERS)
    pull.requested.append((later(ready, 0.01, 0.1), reviewer))
    if rng.random() < 0.05:
        pull.labels.append((later(opened, 0.01, 0.05), EXPEDITE))
    reviewed = later(ready, 0.5, 30)
    head = pull.heads[0][1]
    if rng.random() < 0.25:
        pull.reviews.append((reviewed, reviewer, "CHANGES_REQUESTED", head))
        pushed = later(reviewed, 1, 12)
        head = sha(repo.id, number, 1)
        pull.heads.append((pushed, head))
        reviewed = later(pushed, 0.5, 20)
    elif rng.random() < 0.2:
        pull.reviews.append((reviewed, reviewer, "COMMENTED", head))
        reviewed = later(reviewed, 0.5, 6)
    pull.reviews.append((reviewed, reviewer, "APPROVED", head))
    pull.closed = later(reviewed, 0.1, 4)
    pull.merged = rng.random() > 0.05
    return pull


def org_config(repos: int = 6) -> str:
    """Two teams over the repositories, working hours in Berlin."""
    half = repos // 2
    first = ", ".join(f"service-{n}" for n in range(half))
    second = ", ".join(f"service-{n}" for n in range(half, repos))
    return (
        "teams:\n"
        f"  - name: payments\n    repos: [{first}]\n"
        f"  - name: storefront\n    repos: [{second}]\n"
        "working_hours:\n  timezone: Europe/Berlin\n"
    )
