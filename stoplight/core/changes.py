"""Small records of what a delivery changed: the only thing handlers hand on to the store.

Webhook payloads are large and loosely typed; these models keep only the fields the app uses,
validated, so everything past the handlers works on known shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from stoplight.core.agents import AGENT_AUTHORS


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class PullSnapshot(Record):
    """A pull request as one delivery saw it."""

    repo_id: int
    repo: str  # owner/name
    number: int
    title: str
    url: str
    author: str
    author_is_bot: bool
    head_sha: str
    draft: bool
    open: bool
    updated_at: datetime
    additions: int | None = None  # absent from the PR inside review deliveries
    deletions: int | None = None
    excluded_lines: int | None = None  # changed lines in files the team's size.exclude skips
    labels: tuple[str, ...] = ()
    requested_reviewers: tuple[str, ...] = ()
    # Who the PR is credited to: its author, or for an agent's PR the person who set the agent
    # to work (`core.agents`). Records stored before it was known read as their author's.
    person: str = ""

    @model_validator(mode="before")
    @classmethod
    def _credited_to_the_author_unless_known(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("person") and "author" in data:
            return {**data, "person": data["author"]}
        return data

    @property
    def by_agent(self) -> bool:
        return self.author in AGENT_AUTHORS

    @property
    def agent_for(self) -> str | None:
        """The person an agent's PR was made for, where GitHub names one."""
        return self.person if self.by_agent and self.person != self.author else None

    @property
    def byline(self) -> str:
        """The author as people are shown it: `Copilot for alice` for an agent's PR."""
        return f"{self.author} for {self.agent_for}" if self.agent_for else self.author


PullAction = Literal[
    "opened",
    "reopened",
    "closed",
    "synchronize",
    "ready_for_review",
    "converted_to_draft",
    "review_requested",
    "review_request_removed",
    "edited",
    "labeled",
    "unlabeled",
]


class PullChange(Record):
    kind: Literal["pull"] = "pull"
    action: PullAction
    pull: PullSnapshot
    at: datetime
    reviewer: str | None = None  # the one requested or unrequested
    label: str | None = None  # the one added or removed


class ReviewChange(Record):
    kind: Literal["review"] = "review"
    action: Literal["submitted", "dismissed"]
    pull: PullSnapshot
    reviewer: str
    reviewer_is_bot: bool = False
    state: Literal["approved", "changes_requested", "commented", "dismissed"]
    commit_id: str
    at: datetime


class RepositoryRef(Record):
    id: int
    full_name: str


class InstallationChange(Record):
    kind: Literal["installation"] = "installation"
    action: Literal["created", "deleted", "suspend", "unsuspend", "added", "removed"]
    added: tuple[RepositoryRef, ...] = ()
    removed: tuple[RepositoryRef, ...] = ()


class ConfigChange(Record):
    """A push to a repository's default branch touched `.github/stoplight.yml`."""

    kind: Literal["config"] = "config"
    repo: str


class MergeGroupChange(Record):
    """GitHub's merge queue asks for the checks of a merge group's head commit."""

    kind: Literal["merge_group"] = "merge_group"
    repo_id: int
    repo: str
    head_sha: str


Change = PullChange | ReviewChange | InstallationChange | ConfigChange | MergeGroupChange
