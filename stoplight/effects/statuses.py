"""The `stoplight` status of a commit: posted only when the commit does not show it already."""

from __future__ import annotations

import logging

from github.Commit import Commit

from stoplight.clients.github import InstallationClient
from stoplight.core.marks import STATUS_CONTEXT, Status
from stoplight.effects.ledgers import LEDGER_TTL, record

log = logging.getLogger(__name__)


class Statuses:
    def __init__(self, client: InstallationClient) -> None:
        self.client = client
        self.redis = client.redis
        self.keys = client.keys

    def set(self, repo: str, sha: str, status: Status) -> bool:
        """Post the `stoplight` status on a commit unless that commit already shows it.

        An intent is noted before the request and the ledger after it. A worker killed in
        between leaves the intent; the retry then reads the commit's status (a read costs no
        write budget) rather than post it again.
        """
        ledger = self.keys.status_posted(repo, sha)
        intent = self.keys.sending(ledger)
        fingerprint = status.fingerprint()
        recorded, intended = self.redis.mget(ledger, intent)
        if recorded == fingerprint.encode():
            return False
        commit = self.client.github().get_repo(repo).get_commit(sha)
        if intended == fingerprint.encode() and _shows(commit, status):
            record(self.redis, ledger, intent, fingerprint)
            return False
        self.client.write(
            lambda: commit.create_status(
                state=status.state,
                target_url=status.target_url,
                description=status.description,
                context=STATUS_CONTEXT,
            ),
            intent=(intent, fingerprint),
        )
        record(self.redis, ledger, intent, fingerprint)
        log.info("status %s on %s@%s: %s", status.state, repo, sha[:7], status.description)
        return True

    def learn(self, repo: str, sha: str) -> None:
        """Set the commit's ledger to the status GitHub shows (read, never assumed), so a Redis
        that is new, flushed or restored from an old snapshot posts only what differs."""
        ledger = self.keys.status_posted(repo, sha)
        combined = self.client.read_json(f"/repos/{repo}/commits/{sha}/status")
        shown = next(
            (s for s in combined.get("statuses", []) if s.get("context") == STATUS_CONTEXT), None
        )
        if shown is None:
            self.redis.delete(ledger)
            return
        status = Status(shown["state"], shown["description"] or "", shown["target_url"] or "")
        self.redis.set(ledger, status.fingerprint(), ex=LEDGER_TTL)


def _shows(commit: Commit, status: Status) -> bool:
    shown = next(
        (s for s in commit.get_combined_status().statuses if s.context == STATUS_CONTEXT), None
    )
    return shown is not None and (shown.state, shown.description, shown.target_url) == (
        status.state,
        status.description,
        status.target_url,
    )
