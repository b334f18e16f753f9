"""One installation as a job works on it: its stores, its GitHub, Slack, and the process.

`InstallationContext.of` builds it in one place. Whether the app can reach GitHub is decided
there, once, by the type of `github`: `ConnectedGitHub` over the installation's client, or
`NoGitHub` (no credentials: tests of the state alone, a web process, `serve` before setup),
which writes nothing and reads configurations from the cache alone. The stages ask the
context (its writers, its reader, whether GitHub is `reachable` at all, which spares a
fan-out or a sync for nobody) and never look for credentials.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from github import GithubException
from redis import Redis

from stoplight.clients.github import InstallationClient
from stoplight.config.repos import FileReader, RepoConfigs
from stoplight.config.schema import TeamSettings
from stoplight.core.changes import PullChange, ReviewChange
from stoplight.core.clock import Clock
from stoplight.effects.labels import Labels
from stoplight.effects.statuses import Statuses
from stoplight.effects.writers import LabelWriter, SlackWriter, StatusWriter, Unposted
from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.sizes import with_excluded_lines
from stoplight.settings import Settings
from stoplight.state.review_queue import QueueStore

log = logging.getLogger(__name__)


class InstallationGitHub(Protocol):
    """The installation's GitHub as the stages use it."""

    @property
    def reachable(self) -> bool:
        """Whether anything reaches GitHub: without it a fan-out or a sync is work for nobody."""

    @property
    def reader(self) -> FileReader | None:
        """Where configurations not yet cached are read; None: the cache alone answers."""

    @property
    def statuses(self) -> StatusWriter: ...

    @property
    def labels(self) -> LabelWriter: ...

    def count_excluded_lines(
        self, redis: Redis, change: PullChange | ReviewChange, exclude: tuple[str, ...]
    ) -> PullChange | ReviewChange:
        """The change with the lines of the files its team excludes counted."""

    def request_review(self, repo: str, number: int, login: str) -> None:
        """Ask for `login`'s review of the PR; GitHub's refusal raises GithubException, and
        a write the budget puts off WriteDeferred."""

    def may_read(self, repo: str, login: str) -> bool | None:
        """Whether `login` may read the repository; None when nobody can tell."""


class ConnectedGitHub:
    """The installation's GitHub through its client, with the status and label ledgers."""

    reachable = True

    def __init__(self, client: InstallationClient) -> None:
        self.client = client
        self.statuses = Statuses(client)
        self.labels = Labels(client)

    @property
    def reader(self) -> FileReader:
        return self.client

    def count_excluded_lines(
        self, redis: Redis, change: PullChange | ReviewChange, exclude: tuple[str, ...]
    ) -> PullChange | ReviewChange:
        return with_excluded_lines(redis, self.client, change, exclude)

    def request_review(self, repo: str, number: int, login: str) -> None:
        pull = self.client.github().get_repo(repo).get_pull(number)
        self.client.write(lambda: pull.create_review_request(reviewers=[login]))

    def may_read(self, repo: str, login: str) -> bool:
        repository = self.client.github().get_repo(repo)
        try:
            return repository.get_collaborator_permission(login) != "none"
        except GithubException as error:
            if error.status in (403, 404):  # no such person or repository: they read nothing
                return False
            raise


class NoGitHub:
    """An app without GitHub credentials: configurations come from the cache, sizes count
    every file, and nothing is written or asked."""

    reachable = False
    reader = None

    def __init__(self) -> None:
        self.statuses = self.labels = Unposted()

    def count_excluded_lines(
        self, redis: Redis, change: PullChange | ReviewChange, exclude: tuple[str, ...]
    ) -> PullChange | ReviewChange:
        return change  # the files cannot be listed: every line counts

    def request_review(self, repo: str, number: int, login: str) -> None:
        log.warning("no GitHub App credentials: %s not requested on %s#%s", login, repo, number)

    def may_read(self, repo: str, login: str) -> None:
        return None


@dataclass(frozen=True)
class InstallationContext:
    runtime: Runtime
    installation_id: int
    store: QueueStore
    configs: RepoConfigs  # reads from GitHub what is not cached yet, where there is GitHub
    github: InstallationGitHub

    @classmethod
    def of(cls, rt: Runtime, installation_id: int) -> InstallationContext:
        github: InstallationGitHub = (
            ConnectedGitHub(rt.github.installation(installation_id))
            if rt.github is not None
            else NoGitHub()
        )
        return cls(
            rt,
            installation_id,
            QueueStore(rt.redis, installation_id),
            RepoConfigs(rt.redis, installation_id, github.reader),
            github,
        )

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def redis(self) -> Redis:
        return self.runtime.redis

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    @property
    def slack(self) -> SlackWriter:
        return self.runtime.slack

    def team_settings(self, team: str) -> TeamSettings:
        """A team's policy, rules and labels, from the cached configuration alone: a team's
        light is evaluated without waiting on GitHub."""
        return RepoConfigs(self.redis, self.installation_id).team(team)
