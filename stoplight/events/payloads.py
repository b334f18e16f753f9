"""The parts of GitHub's webhook payloads that the handlers read, validated by pydantic.

A payload missing a field or carrying the wrong type fails here with a ValidationError that
names the field, and the delivery changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from stoplight.core.agents import credited_person, is_bot
from stoplight.core.changes import PullAction, PullSnapshot

# Bounds keep a forged or broken number from reaching Redis counters (64-bit) or keys.
Id = Annotated[int, Field(ge=1, lt=2**63)]
Count = Annotated[int, Field(ge=0, lt=2**31)]
Number = Annotated[int, Field(ge=1, lt=2**31)]
# Both go into API paths, so a forged value must not reach another route ("/repos//...").
FullName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]
# SHA-1 today, SHA-256 for repositories that use it.
Sha = Annotated[str, Field(pattern=r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")]


class Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(Shape):
    login: str
    type: str = "User"

    @property
    def is_bot(self) -> bool:
        return is_bot(self.login, self.type)


def _people(users: list[User]) -> list[str]:
    return [user.login for user in users if not user.is_bot]


class Label(Shape):
    name: str


class Head(Shape):
    sha: Sha


class Repository(Shape):
    id: Id
    full_name: FullName


class PushedRepository(Repository):
    default_branch: str


class Commit(Shape):
    added: list[str] = []
    modified: list[str] = []
    removed: list[str] = []

    def touches(self, path: str) -> bool:
        return path in (*self.added, *self.modified, *self.removed)


class PushEvent(Shape):
    ref: str
    repository: PushedRepository
    commits: list[Commit] = []


class MergeGroup(Shape):
    head_sha: Sha  # the commit the queue built; its checks decide the entry


class MergeGroupEvent(Shape):
    merge_group: MergeGroup
    repository: Repository


class PullRequest(Shape):
    number: Number
    title: str
    html_url: str
    state: str
    draft: bool = False
    user: User
    head: Head
    updated_at: AwareDatetime
    created_at: AwareDatetime | None = None
    additions: Count | None = None
    deletions: Count | None = None
    labels: list[Label] = []
    requested_reviewers: list[User] = []
    assignees: list[User] = []

    def snapshot(self, repository: Repository) -> PullSnapshot:
        return PullSnapshot(
            repo_id=repository.id,
            repo=repository.full_name,
            number=self.number,
            title=self.title,
            url=self.html_url,
            author=self.user.login,
            author_is_bot=self.user.is_bot,
            head_sha=self.head.sha,
            draft=self.draft,
            open=self.state == "open",
            updated_at=self.updated_at,
            additions=self.additions,
            deletions=self.deletions,
            labels=tuple(label.name for label in self.labels),
            requested_reviewers=tuple(user.login for user in self.requested_reviewers),
            person=credited_person(
                self.user.login, _people(self.assignees), _people(self.requested_reviewers)
            ),
        )


class PullRequestEvent(Shape):
    action: PullAction
    pull_request: PullRequest
    repository: Repository
    requested_reviewer: User | None = None
    label: Label | None = None


class Review(Shape):
    user: User
    state: Literal["approved", "changes_requested", "commented", "dismissed"]
    commit_id: Sha
    submitted_at: AwareDatetime | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        # Webhooks write review states in capitals ("APPROVED"), the REST API in lower case.
        return value.lower() if isinstance(value, str) else value


class PullRequestReviewEvent(Shape):
    action: Literal["submitted", "dismissed"]
    review: Review
    pull_request: PullRequest
    repository: Repository


class InstallationEvent(Shape):
    action: Literal["created", "deleted", "suspend", "unsuspend", "added", "removed"]
    repositories: list[Repository] | None = None
    repositories_added: list[Repository] = []
    repositories_removed: list[Repository] = []
