"""A pull request's record and how a change moves it: pure functions, no I/O.

A PR is *waiting* while it is open, ready, and neither approved enough nor sitting with changes
requested since its last push. Its wait starts each time it enters that state. A PR that has
waited longer than its team's `stale_after` is *stale*: out of the measures until someone acts
on it (a push, a re-request, a review), which makes it wait afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stoplight.core.agents import AGENT_AUTHORS
from stoplight.core.changes import PullChange, PullSnapshot, ReviewChange
from stoplight.core.light import Level


class Phase(StrEnum):
    WAITING = "waiting"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"
    DRAFT = "draft"
    CLOSED = "closed"
    HELD = "held"  # ready, but kept out of a red queue until it drains
    IGNORED = "ignored"  # by an author the team's queue never counts
    STALE = "stale"  # waited past the team's stale_after: abandoned, or forgotten


class HoldReason(StrEnum):
    """Why a held PR is held (`core.admission` decides it)."""

    RED = "red"  # the queue is red: nobody starts a new review
    AGENT_LIGHT = "agent_light"  # agents wait from `agents.hold_from` on
    AGENTS_FULL = "agents_full"  # `agents.max_waiting` agent PRs wait already
    WIP = "wip"  # the person has `wip_per_author` PRs waiting already


# Whether a PR that newly becomes ready is held, and why: `core.admission` answers it.
HoldRule = Callable[[PullSnapshot], HoldReason | None]


# Actions by which a PR newly becomes ready for review: these may be held.
NEWLY_READY = frozenset({"opened", "reopened", "ready_for_review"})
# Actions after which a stale PR waits afresh: somebody acted on it.
REVIVING = frozenset({"synchronize", "review_requested", "reopened", "ready_for_review"})


class Review(BaseModel):
    """A reviewer's latest word on the PR.

    `dismissed` and `requested` are kept as markers rather than deleting the entry, so a late
    delivery of the older review they cancelled cannot bring it back.
    """

    model_config = ConfigDict(frozen=True)

    state: str  # approved | changes_requested | dismissed | requested | commented (bots')
    commit_id: str
    at: datetime
    bot: bool = False  # by a bot account: its verdict counts only if the team trusts the bot

    def supersedes(self, at: datetime) -> bool:
        """Whether this entry is newer than a review made `at` (a marker wins a tie)."""
        return self.at > at or (self.at == at and self.state in ("dismissed", "requested"))


class AgentRules(BaseModel):
    """Which PRs are AI coding agents' and how their lane is kept (`agents` in the file)."""

    model_config = ConfigDict(frozen=True)

    authors: frozenset[str] = AGENT_AUTHORS
    # For agents that push as the person who runs them: the PR carries this label instead.
    label: str = "stoplight:agent"
    hold_from: Level | None = Level.YELLOW  # None: agents' PRs are held at red, as people's
    max_waiting: int | None = 3  # None: no cap on agent PRs waiting at once


class Rules(BaseModel):
    """The parts of a team's configuration that decide whether one PR waits."""

    model_config = ConfigDict(frozen=True)

    required_approvals: int = 1
    hold_when_red: bool = True
    expedite_label: str = "stoplight:expedite"
    ignore_authors: frozenset[str] = frozenset()
    trusted_review_bots: frozenset[str] = frozenset()
    agents: AgentRules = AgentRules()
    wip_per_author: int | None = None  # None: no cap on one person's waiting PRs

    def is_agent(self, pull: PullSnapshot) -> bool:
        return pull.author in self.agents.authors or self.agents.label in pull.labels

    def counts(self, reviewer: str, review: Review) -> bool:
        """Whether the review's verdict counts: a person's always; a bot's (an AI reviewer
        approving what no person has read) only if the team trusts that bot."""
        return self.trusts(reviewer, is_bot=review.bot)

    def trusts(self, reviewer: str, *, is_bot: bool) -> bool:
        return not is_bot or reviewer in self.trusted_review_bots


class PullRecord(PullSnapshot):
    """What the store keeps of a PR: the latest snapshot, with sizes always known, and where
    the PR stands in its team's queue."""

    additions: int = 0
    deletions: int = 0
    excluded_lines: int = 0
    reviews: dict[str, Review] = Field(default_factory=dict)
    team: str
    phase: Phase
    wait_since: datetime | None = None
    held_since: datetime | None = None
    held_order: int = 0  # taken when the PR joined the held lane: ties within a second
    held_for: HoldReason | None = None  # why it is held; records held before it read as red
    stale_since: datetime | None = None  # when it went stale: only what comes after revives it
    # An agent's PR, by the team's `agents` rules as the PR last moved: the store's agent and
    # per-person indexes count it so, in and out alike.
    agent: bool = False

    @model_validator(mode="before")
    @classmethod
    def _known_agents_unless_recorded(cls, data: Any) -> Any:
        if isinstance(data, dict) and "agent" not in data and "author" in data:
            data = {**data, "agent": data["author"] in AGENT_AUTHORS}
        if isinstance(data, dict) and data.get("phase") == "held" and not data.get("held_for"):
            data = {**data, "held_for": HoldReason.RED}
        return data

    @property
    def by_agent(self) -> bool:
        return self.agent

    @property
    def key(self) -> str:
        return pull_key(self.repo_id, self.number)

    @property
    def lines(self) -> int:
        return max(self.additions + self.deletions - self.excluded_lines, 0)

    @property
    def waiting(self) -> bool:
        return self.phase is Phase.WAITING

    @property
    def held(self) -> bool:
        return self.phase is Phase.HELD

    @property
    def stale(self) -> bool:
        return self.phase is Phase.STALE


def pull_key(repo_id: int, number: int) -> str:
    return f"{repo_id}#{number}"


def _never_held(pull: PullSnapshot) -> HoldReason | None:
    return None


def advance(
    record: PullRecord | None,
    change: PullChange | ReviewChange,
    team: str,
    rules: Rules,
    now: datetime,
    *,
    entering: HoldRule = _never_held,
) -> PullRecord:
    """The record after `change`. A snapshot older than the one held never overwrites it.

    `entering`: why a PR that newly becomes ready now is held, None when it enters review (the
    expedite label always admits; a held PR keeps its place and its reason).
    """
    fields = _snapshot_fields(record, change.pull)
    snapshot = PullSnapshot.model_validate(fields)
    reviews = dict(record.reviews) if record else {}
    if isinstance(change, ReviewChange):
        _apply_review(reviews, change)
    elif change.action == "review_requested" and change.reviewer:
        # Asking again means the earlier verdict no longer stands: the PR waits on them.
        earlier = reviews.get(change.reviewer)
        if earlier is None or not earlier.supersedes(change.at):
            reviews[change.reviewer] = Review(
                state="requested", commit_id=change.pull.head_sha, at=change.at
            )
    phase = _phase(fields, reviews, rules)
    stale_since = None
    if (
        phase is Phase.WAITING
        and record is not None
        and record.stale
        and not _revives(change, record, rules)
    ):
        phase, stale_since = Phase.STALE, record.stale_since
    held_since, held_order, held_for = None, 0, None
    if phase is Phase.WAITING:
        held_for = _held_for(record, change, rules, snapshot, entering)
    if held_for is not None:
        phase = Phase.HELD
        if record is not None and record.held:  # its place in the line is kept
            held_since, held_order = record.held_since, record.held_order
        else:
            held_since = min(change.at, now)
    entered = phase is Phase.WAITING and (record is None or not record.waiting)
    if phase is Phase.STALE:
        wait_since = record.wait_since if record else None  # how long it has been left
    elif phase is not Phase.WAITING:
        wait_since = None
    elif entered:
        wait_since = min(change.at, now)
    else:
        wait_since = record.wait_since if record else None
    return PullRecord.model_validate(
        {
            **fields,
            "reviews": reviews,
            "team": team,
            "phase": phase,
            "wait_since": wait_since,
            "held_since": held_since,
            "held_order": held_order,
            "held_for": held_for,
            "stale_since": stale_since,
            "agent": rules.is_agent(snapshot),
        }
    )


def go_stale(record: PullRecord, now: datetime) -> PullRecord:
    """A waiting PR past its team's `stale_after` leaves the measures; its wait start stays,
    to say how long it has been left."""
    return record.model_copy(update={"phase": Phase.STALE, "stale_since": now})


def _revives(change: PullChange | ReviewChange, record: PullRecord, rules: Rules) -> bool:
    """Somebody acted on the stale PR since it went stale (a late delivery, or a sync's
    replay of its reviews, tells of what came before; an untrusted bot's review is nobody)."""
    if record.stale_since is not None and change.at < record.stale_since:
        return False
    if isinstance(change, ReviewChange):
        trusted = rules.trusts(change.reviewer, is_bot=change.reviewer_is_bot)
        return change.action == "submitted" and trusted
    return change.action in REVIVING


def admit(record: PullRecord, now: datetime) -> PullRecord:
    """A held PR enters the queue: its wait starts now."""
    return record.model_copy(
        update={
            "phase": Phase.WAITING,
            "wait_since": now,
            "held_since": None,
            "held_order": 0,
            "held_for": None,
        }
    )


def _held_for(
    record: PullRecord | None,
    change: PullChange | ReviewChange,
    rules: Rules,
    snapshot: PullSnapshot,
    entering: HoldRule,
) -> HoldReason | None:
    if rules.expedite_label in change.pull.labels:
        return None
    if record is not None and record.held:
        return record.held_for
    newly_ready = isinstance(change, PullChange) and change.action in NEWLY_READY
    if newly_ready and (record is None or not record.waiting):
        return entering(snapshot)
    return None


# A record's fields that say where the PR stands in its queue, not what GitHub showed.
QUEUE_FIELDS = frozenset(
    {
        "reviews",
        "team",
        "phase",
        "wait_since",
        "held_since",
        "held_order",
        "held_for",
        "stale_since",
        "agent",
    }
)


def _snapshot_fields(record: PullRecord | None, pull: PullSnapshot) -> dict[str, object]:
    if record is not None and pull.updated_at < record.updated_at:
        return record.model_dump(exclude=set(QUEUE_FIELDS))
    fields = pull.model_dump()
    for size in ("additions", "deletions", "excluded_lines"):
        if fields[size] is None:
            fields[size] = getattr(record, size) if record else 0
    if record is not None and pull.person == pull.author:
        # An agent's PR stays credited to its person after GitHub stops naming them: their
        # review takes them off the requested reviewers.
        fields["person"] = record.person
    return fields


def _apply_review(reviews: dict[str, Review], change: ReviewChange) -> None:
    earlier = reviews.get(change.reviewer)
    if earlier is not None and earlier.supersedes(change.at):
        return  # a late delivery of an older review
    if change.state in ("approved", "changes_requested", "dismissed") or _bots_first_word(
        earlier, change
    ):
        reviews[change.reviewer] = Review(
            state=change.state, commit_id=change.commit_id, at=change.at, bot=change.reviewer_is_bot
        )
    # A plain comment neither grants nor withdraws approval.


def _bots_first_word(earlier: Review | None, change: ReviewChange) -> bool:
    """A bot's comment (Copilot's code review comments on every PR) is kept, to be shown for
    what it is, unless the bot has said more before: it never replaces a verdict."""
    comment = change.state == "commented" and change.reviewer_is_bot
    return comment and (earlier is None or earlier.state == "commented")


def _phase(fields: dict[str, object], reviews: dict[str, Review], rules: Rules) -> Phase:
    if not fields["open"]:
        return Phase.CLOSED
    if fields["draft"]:
        return Phase.DRAFT
    head = fields["head_sha"]
    on_head = [
        review.state
        for reviewer, review in reviews.items()
        if review.commit_id == head and rules.counts(reviewer, review)
    ]
    if "changes_requested" in on_head:
        return Phase.CHANGES_REQUESTED
    if on_head.count("approved") >= rules.required_approvals:
        return Phase.APPROVED
    if fields["author"] in rules.ignore_authors:
        return Phase.IGNORED
    return Phase.WAITING
