"""The labels the app manages on a PR: written only when they would change.

`label_changes` is pure: what the PR carries and what it should carry in, what to add and to
remove out. `Labels` keeps the ledger of what each PR carries and makes the writes.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable

from github import GithubException
from github.Issue import Issue
from redis.client import Pipeline

from stoplight.clients.github import InstallationClient
from stoplight.core.marks import LabelSpec
from stoplight.effects.ledgers import LEDGER_TTL, record
from stoplight.state.replies import transaction_value

log = logging.getLogger(__name__)


def label_changes(
    current: set[str], wanted: Iterable[LabelSpec]
) -> tuple[list[LabelSpec], list[str]]:
    """The labels to add (in name order) and the names to remove to go from `current` to
    exactly `wanted` among the managed labels."""
    by_name = {label.name: label for label in wanted}
    return [by_name[name] for name in sorted(by_name.keys() - current)], sorted(
        current - by_name.keys()
    )


class Labels:
    def __init__(self, client: InstallationClient) -> None:
        self.client = client
        self.redis = client.redis
        self.keys = client.keys

    def sync(
        self,
        repo: str,
        number: int,
        pull_key: str,
        wanted: Iterable[LabelSpec],
        managed: frozenset[str],
        seen: Iterable[str],
    ) -> bool:
        """Make the PR carry exactly the `wanted` labels among the `managed` ones.

        What the PR carries is our ledger of earlier writes; before there is one, `seen` (the
        labels the latest delivery showed) stands in. The ledger follows each write, so work cut
        short (a deferral, a crash) resumes without repeating what went out.
        """
        ledger = self.keys.labels_on(pull_key)
        intent = self.keys.sending(ledger)
        recorded, interrupted = self.redis.mget(ledger, intent)
        if interrupted:  # a worker died mid-write: what the PR carries is unknown, so read it
            seen = [label.name for label in self._issue(repo, number).get_labels()]
            recorded = None
        current = set(json.loads(recorded)) if recorded else {n for n in seen if n in managed}
        to_add, to_remove = label_changes(current, wanted)

        def note() -> None:
            record(self.redis, ledger, intent, json.dumps(sorted(current)))

        if not recorded:
            note()
        if not to_add and not to_remove:
            return False
        issue = self._issue(repo, number)
        for label in to_add:
            self._ensure_exists(repo, label)
        if to_add:
            self.client.write(
                lambda: issue.add_to_labels(*(label.name for label in to_add)),
                intent=(intent, "add"),
            )
            current.update(label.name for label in to_add)
            note()
        for name in to_remove:
            self.client.write(functools.partial(_remove, issue, name), intent=(intent, "remove"))
            current.discard(name)
            note()
        added = [label.name for label in to_add]
        log.info("labels on %s#%s: +%s -%s", repo, number, added, to_remove)
        return True

    def learn(self, pull_key: str, labels: Iterable[str], managed: frozenset[str]) -> None:
        """Set the PR's ledger to the `labels` a listing of GitHub just showed."""
        carried = sorted(name for name in labels if name in managed)
        self.redis.set(self.keys.labels_on(pull_key), json.dumps(carried), ex=LEDGER_TTL)

    def forget(self, pull_key: str, name: str) -> bool:
        """GitHub says the PR no longer carries `name`: drop it from the ledger, so the next
        pass puts it back if it is still wanted. False if the ledger did not have it (the
        removal was the app's own)."""
        ledger = self.keys.labels_on(pull_key)

        def drop(pipe: Pipeline) -> bool:
            recorded = pipe.get(ledger)
            carried = set(json.loads(recorded)) if recorded else set()
            if name not in carried:
                return False
            pipe.multi()
            pipe.set(ledger, json.dumps(sorted(carried - {name})), ex=LEDGER_TTL)
            return True

        return transaction_value(self.redis, drop, ledger)

    def _issue(self, repo: str, number: int) -> Issue:
        # Called only when labels are read or written: the client it needs costs a token.
        return self.client.github().get_repo(repo).get_issue(number)

    def _ensure_exists(self, repo: str, label: LabelSpec) -> None:
        known = self.keys.labels_in_repo(repo)
        if self.redis.sismember(known, label.name):
            return
        repository = self.client.github().get_repo(repo)
        try:
            self.client.write(
                lambda: repository.create_label(label.name, label.color, label.description)
            )
        except GithubException as error:
            if error.status != 422:  # 422: it exists already, which is all we wanted
                raise
        self.redis.sadd(known, label.name)


def _remove(issue: Issue, name: str) -> None:
    try:
        issue.remove_from_labels(name)
    except GithubException as error:
        if error.status != 404:  # 404: already gone
            raise
