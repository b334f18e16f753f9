"""A pull request's history as GitHub's GraphQL API tells it, turned back into the webhook
deliveries the app would have received: the same payload fields, each at its moment.

GraphQL gives a PR's present fields and a timeline of what happened to it; the state at each
moment is replayed from the timeline: draft or ready, head commit, labels, requested reviewers,
open or closed. Sizes are the PR's present ones. A push is dated by its commit, a review by
its submission; a dismissed review carries the verdict it had before the dismissal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stoplight.backtest.history import Recorded
from stoplight.core.clock import parse_github_time

Node = dict[str, Any]


@dataclass(frozen=True)
class RepositoryRef:
    installation_id: int
    id: int
    full_name: str


@dataclass
class _PullState:
    """What a delivery's `pull_request` shows, as it stood at a moment."""

    node: Node
    draft: bool
    head: str
    open: bool = True
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)

    def as_json(self, at: datetime) -> dict[str, Any]:
        author = self.node.get("author") or {"login": "ghost", "__typename": "User"}
        bot = author.get("__typename") == "Bot"
        return {
            "number": self.node["number"],
            "title": self.node["title"],
            "html_url": self.node["url"],
            "state": "open" if self.open else "closed",
            "draft": self.draft,
            "user": {
                # Webhooks name apps with a "[bot]" suffix that GraphQL leaves off.
                "login": f"{author['login']}[bot]" if bot else author["login"],
                "type": "Bot" if bot else "User",
            },
            "head": {"sha": self.head},
            "updated_at": iso(at),
            "created_at": self.node["createdAt"],
            "additions": self.node["additions"],
            "deletions": self.node["deletions"],
            "labels": [{"name": name} for name in self.labels],
            "requested_reviewers": [{"login": login, "type": "User"} for login in self.reviewers],
        }


def deliveries_of(node: Node, repository: RepositoryRef) -> list[Recorded]:
    """The deliveries of one PR, in time order."""
    items = [item for item in node["timelineItems"]["nodes"] if item]
    created = _time(node["createdAt"])
    state = _PullState(node, draft=_draft_at_start(node, items), head=_head_at_start(node, items))
    base = {
        "repository": {
            "id": repository.id,
            "full_name": repository.full_name,
            "name": repository.full_name.partition("/")[2],
        },
        "installation": {"id": repository.installation_id},
    }
    found = [_pull_event(state, "opened", created, base)]
    for at, step in sorted(_steps(node, items, created), key=lambda pair: pair[0]):
        found.extend(step(state, at, base))
    return found


Step = Callable[[_PullState, datetime, dict[str, Any]], list[Recorded]]


def _steps(node: Node, items: list[Node], created: datetime) -> list[tuple[datetime, Step]]:
    """Each timeline item as a moment and what it does to the state and the deliveries."""
    dismissed_verdicts = {
        item["review"]["id"]: item.get("previousReviewState")
        for item in items
        if item["__typename"] == "ReviewDismissedEvent" and item.get("review")
    }
    review_commits = {
        item["id"]: item["commit"]["oid"]
        for item in items
        if item["__typename"] == "PullRequestReview" and item.get("commit")
    }
    steps: list[tuple[datetime, Step]] = []
    for item in items:
        kind = item["__typename"]
        if kind == "PullRequestCommit":
            at = _time(item["commit"]["committedDate"])
            if at > created:
                steps.append((at, _push(item["commit"]["oid"])))
        elif kind == "HeadRefForcePushedEvent" and item.get("afterCommit"):
            steps.append((_time(item["createdAt"]), _push(item["afterCommit"]["oid"])))
        elif kind == "PullRequestReview" and item.get("submittedAt") and item.get("commit"):
            verdict = item["state"]
            if verdict == "DISMISSED":
                verdict = dismissed_verdicts.get(item["id"]) or "COMMENTED"
            if verdict != "PENDING":
                steps.append((_time(item["submittedAt"]), _review(item, verdict)))
        elif kind == "ReviewDismissedEvent" and item.get("review"):
            commit = review_commits.get(item["review"]["id"])
            steps.append((_time(item["createdAt"]), _dismissal(item, commit)))
        elif kind in _SIMPLE:
            steps.append((_time(item["createdAt"]), _SIMPLE[kind](item)))
    return steps


def _push(oid: str) -> Step:
    def step(state: _PullState, at: datetime, base: dict[str, Any]) -> list[Recorded]:
        if oid == state.head:
            return []
        state.head = oid
        return [_pull_event(state, "synchronize", at, base)]

    return step


def _review(item: Node, verdict: str) -> Step:
    def step(state: _PullState, at: datetime, base: dict[str, Any]) -> list[Recorded]:
        review = {
            "user": _user(item.get("author")),
            "state": verdict,
            "commit_id": item["commit"]["oid"],
            "submitted_at": iso(at),
        }
        return [_review_event(state, "submitted", review, at, base)]

    return step


def _dismissal(item: Node, commit: str | None) -> Step:
    def step(state: _PullState, at: datetime, base: dict[str, Any]) -> list[Recorded]:
        review = {
            "user": _user(item["review"].get("author")),
            "state": "DISMISSED",
            "commit_id": commit or state.head,
            "submitted_at": iso(at),
        }
        return [_review_event(state, "dismissed", review, at, base)]

    return step


def _simple(action: str, change: Callable[[_PullState, Node], bool]) -> Callable[[Node], Step]:
    """A pull_request action that changes one field; no delivery when it changes nothing."""

    def of(item: Node) -> Step:
        def step(state: _PullState, at: datetime, base: dict[str, Any]) -> list[Recorded]:
            if not change(state, item):
                return []
            extra = {}
            if "requestedReviewer" in item:
                extra["requested_reviewer"] = _user(item["requestedReviewer"])
            if "label" in item:
                extra["label"] = {"name": item["label"]["name"]}
            return [_pull_event(state, action, at, base, **extra)]

        return step

    return of


def _set(name: str, value: bool) -> Callable[[_PullState, Node], bool]:
    def change(state: _PullState, item: Node) -> bool:
        if getattr(state, name) == value:
            return False
        setattr(state, name, value)
        return True

    return change


def _add(name: str, value: Callable[[Node], str | None]) -> Callable[[_PullState, Node], bool]:
    def change(state: _PullState, item: Node) -> bool:
        found, present = value(item), getattr(state, name)
        if found is None or found in present:
            return False
        present.append(found)
        return True

    return change


def _remove(name: str, value: Callable[[Node], str | None]) -> Callable[[_PullState, Node], bool]:
    def change(state: _PullState, item: Node) -> bool:
        found, present = value(item), getattr(state, name)
        if found not in present:
            return False
        present.remove(found)
        return True

    return change


def _reviewer(item: Node) -> str | None:
    # A team asked for review is not a person the PR waits on in `requested_reviewers`.
    return (item.get("requestedReviewer") or {}).get("login")


def _label(item: Node) -> str | None:
    return (item.get("label") or {}).get("name")


_SIMPLE: dict[str, Callable[[Node], Step]] = {
    "ReadyForReviewEvent": _simple("ready_for_review", _set("draft", False)),
    "ConvertToDraftEvent": _simple("converted_to_draft", _set("draft", True)),
    "ClosedEvent": _simple("closed", _set("open", False)),
    "MergedEvent": _simple("closed", _set("open", False)),
    "ReopenedEvent": _simple("reopened", _set("open", True)),
    "LabeledEvent": _simple("labeled", _add("labels", _label)),
    "UnlabeledEvent": _simple("unlabeled", _remove("labels", _label)),
    "ReviewRequestedEvent": _simple("review_requested", _add("reviewers", _reviewer)),
    "ReviewRequestRemovedEvent": _simple("review_request_removed", _remove("reviewers", _reviewer)),
}


def _draft_at_start(node: Node, items: list[Node]) -> bool:
    """Draft when opened: the first draft change says what it changed from."""
    for item in items:
        if item["__typename"] == "ReadyForReviewEvent":
            return True
        if item["__typename"] == "ConvertToDraftEvent":
            return False
    return bool(node["isDraft"])


def _head_at_start(node: Node, items: list[Node]) -> str:
    """The last commit made by the time the PR was opened (or its first, or its head)."""
    created = _time(node["createdAt"])
    commits = [item["commit"] for item in items if item["__typename"] == "PullRequestCommit"]
    before = [commit["oid"] for commit in commits if _time(commit["committedDate"]) <= created]
    if before:
        return str(before[-1])
    return str(commits[0]["oid"] if commits else node["headRefOid"])


def _pull_event(
    state: _PullState, action: str, at: datetime, base: dict[str, Any], **extra: Any
) -> Recorded:
    payload = {"action": action, "number": state.node["number"], **base, **extra}
    payload["pull_request"] = state.as_json(at)
    return Recorded(at, "pull_request", payload)


def _review_event(
    state: _PullState, action: str, review: dict[str, Any], at: datetime, base: dict[str, Any]
) -> Recorded:
    payload = {"action": action, **base, "pull_request": state.as_json(at), "review": review}
    return Recorded(at, "pull_request_review", payload)


def _user(actor: Node | None) -> dict[str, str]:
    actor = actor or {"login": "ghost", "__typename": "User"}
    bot = actor.get("__typename") == "Bot"
    login = actor.get("login", "ghost")
    return {"login": f"{login}[bot]" if bot else login, "type": "Bot" if bot else "User"}


def _time(value: str) -> datetime:
    moment = parse_github_time(value)
    assert moment is not None
    return moment


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
