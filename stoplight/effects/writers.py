"""The writers the effects decide for: a commit's status, a PR's labels, a Slack message.

The decisions (the fan-out's plan and order, which notice goes where) are made against these
protocols; the real writers are `effects.statuses.Statuses` and `effects.labels.Labels` (over
the GitHub client, with their ledgers) and `clients.slack.SlackClient`. Tests hand in
recorders, so the decisions are tested without HTTP; without GitHub credentials the pipeline
hands in `Unposted`, which writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from stoplight.clients.slack import Message, Posted
from stoplight.core.marks import LabelSpec, Status

log = logging.getLogger(__name__)


class StatusWriter(Protocol):
    def set(self, repo: str, sha: str, status: Status) -> bool:
        """Make the commit show `status`; True if a write went out."""

    def learn(self, repo: str, sha: str) -> None:
        """Take the commit's ledger from what GitHub shows (after Redis lost its data)."""


class LabelWriter(Protocol):
    def sync(
        self,
        repo: str,
        number: int,
        pull_key: str,
        wanted: Iterable[LabelSpec],
        managed: frozenset[str],
        seen: Iterable[str],
    ) -> bool:
        """Make the PR carry exactly the `wanted` labels among the `managed` ones; True if a
        write went out. `seen`: the labels the latest delivery showed."""

    def forget(self, pull_key: str, name: str) -> bool:
        """GitHub says the PR no longer carries `name`; True if that is news."""


class SlackWriter(Protocol):
    def can_post(self, channel: str | None) -> bool:
        """Whether a message for `channel` has anywhere to go (the channel or a webhook)."""

    def can_update(self, channel: str | None) -> bool:
        """Whether a message in `channel` can be edited later (a bot's message)."""

    def post(self, channel: str | None, message: Message) -> Posted: ...

    def update(self, posted: Posted, message: Message) -> None: ...


class Unposted:
    """The statuses and labels of an app without GitHub credentials: nothing is written, so
    the plan is made and dropped (and nothing is learned from GitHub either)."""

    def set(self, repo: str, sha: str, status: Status) -> bool:
        log.debug("no GitHub App credentials: status on %s@%s not posted", repo, sha[:7])
        return False

    def learn(self, repo: str, sha: str) -> None:
        return None  # nothing was posted, so there is nothing to learn

    def sync(
        self,
        repo: str,
        number: int,
        pull_key: str,
        wanted: Iterable[LabelSpec],
        managed: frozenset[str],
        seen: Iterable[str],
    ) -> bool:
        log.debug("no GitHub App credentials: labels on %s#%s not written", repo, number)
        return False

    def forget(self, pull_key: str, name: str) -> bool:
        return False
