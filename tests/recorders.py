"""Recorders of the status, label and Slack writers (`stoplight.effects.writers`): the
effects' decisions (the fan-out's plan and order, which notice goes where) tested without HTTP.

Each keeps what GitHub or Slack would show and the writes in order, and, as the real writers
do by their ledgers, writes nothing that would change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from redis import Redis

from stoplight.clients.slack import Message, Posted
from stoplight.core.changes import PullChange, ReviewChange
from stoplight.core.marks import LabelSpec, Status
from stoplight.effects.labels import label_changes


@dataclass
class RecordedStatuses:
    shown: dict[tuple[str, str], Status] = field(default_factory=dict)  # (repo, sha) -> status
    posted: list[tuple[str, str, Status]] = field(default_factory=list)

    def set(self, repo: str, sha: str, status: Status) -> bool:
        if self.shown.get((repo, sha)) == status:
            return False
        self.shown[repo, sha] = status
        self.posted.append((repo, sha, status))
        return True

    def learn(self, repo: str, sha: str) -> None:
        return None  # the recorder is what the commit shows: there is nothing else to learn

    def shas(self) -> list[str]:
        """The commits written to, in the order of the writes."""
        return [sha for _, sha, _ in self.posted]


@dataclass
class LabelWrite:
    pull_key: str
    added: list[str]
    removed: list[str]


@dataclass
class RecordedLabels:
    carried: dict[str, set[str]] = field(default_factory=dict)  # pull key -> managed labels
    writes: list[LabelWrite] = field(default_factory=list)

    def sync(
        self,
        repo: str,
        number: int,
        pull_key: str,
        wanted: Iterable[LabelSpec],
        managed: frozenset[str],
        seen: Iterable[str],
    ) -> bool:
        current = self.carried.get(pull_key, {name for name in seen if name in managed})
        to_add, to_remove = label_changes(current, wanted)
        added = [label.name for label in to_add]
        self.carried[pull_key] = (current | set(added)) - set(to_remove)
        if not added and not to_remove:
            return False
        self.writes.append(LabelWrite(pull_key, added, to_remove))
        return True

    def forget(self, pull_key: str, name: str) -> bool:
        carried = self.carried.get(pull_key, set())
        if name not in carried:
            return False
        carried.discard(name)
        return True


@dataclass
class RecordedSlack:
    """A bot (messages that can be edited) or, with `bot=False`, an incoming webhook alone."""

    bot: bool = True
    posts: list[tuple[str | None, Message]] = field(default_factory=list)
    updates: list[tuple[Posted, Message]] = field(default_factory=list)

    def can_update(self, channel: str | None) -> bool:
        return self.bot and channel is not None

    def can_post(self, channel: str | None) -> bool:
        return True  # a bot with the channel, or else the webhook

    def post(self, channel: str | None, message: Message) -> Posted:
        self.posts.append((channel, message))
        if not self.can_update(channel):
            return Posted(channel=None, ts=None)
        return Posted(channel=channel, ts=f"{len(self.posts)}.000000")

    def update(self, posted: Posted, message: Message) -> None:
        self.updates.append((posted, message))

    def headers(self) -> list[str]:
        """The header line of each message posted, in order."""
        return [message.blocks[0]["text"]["text"] for _, message in self.posts]


@dataclass
class RecordedGitHub:
    """An installation's GitHub for `InstallationContext`: the writers above, review requests
    recorded, and who may read what as the test says."""

    statuses: RecordedStatuses = field(default_factory=RecordedStatuses)
    labels: RecordedLabels = field(default_factory=RecordedLabels)
    readers: set[tuple[str, str]] = field(default_factory=set)  # (repo, login)
    review_requests: list[tuple[str, int, str]] = field(default_factory=list)
    reachable: bool = True
    reader: None = None  # configurations come from the cache

    def count_excluded_lines(
        self, redis: Redis, change: PullChange | ReviewChange, exclude: tuple[str, ...]
    ) -> PullChange | ReviewChange:
        return change

    def request_review(self, repo: str, number: int, login: str) -> None:
        self.review_requests.append((repo, number, login))

    def may_read(self, repo: str, login: str) -> bool:
        return (repo, login) in self.readers
