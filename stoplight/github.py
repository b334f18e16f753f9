"""The one client layer between the workers and GitHub.

It owns the app's authentication (app JWT -> installation token, cached in Redis until shortly
before it expires, shared by every process), retries of transient failures, and the rule that
nothing is posted twice: a status or label write that would change nothing is not sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken
from github import Auth, Github, GithubException, GithubIntegration
from github.Issue import Issue
from redis import Redis
from urllib3.util.retry import Retry

from stoplight import keys
from stoplight.clock import Clock
from stoplight.settings import Settings

log = logging.getLogger(__name__)

STATUS_CONTEXT = "stoplight"
# Renew a cached token this long before GitHub says it expires.
TOKEN_MARGIN = timedelta(minutes=5)
# Statuses are per commit; a commit's ledger entry outlives any review it could matter to.
LEDGER_TTL = timedelta(days=90)


@dataclass(frozen=True)
class Status:
    state: str  # success | pending | error | failure
    description: str
    target_url: str

    def fingerprint(self) -> str:
        return f"{self.state}\x1f{self.description}\x1f{self.target_url}"


@dataclass(frozen=True)
class LabelSpec:
    name: str
    color: str
    description: str


def _transient_retry() -> Retry:
    # Quick in-process retries for a GitHub hiccup; anything longer is the job's retry.
    return Retry(
        total=3,
        connect=3,
        read=2,
        status=3,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=None,
        backoff_factor=0.5,
        backoff_jitter=0.25,
        respect_retry_after_header=False,
        raise_on_status=False,
    )


class GitHubApp:
    """The app's identity; hands out a client per installation."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        clock: Clock,
        *,
        seconds_between_writes: float | None = 1.0,
    ) -> None:
        if settings.app_id is None or settings.private_key is None:
            raise ValueError("APP_ID and PRIVATE_KEY are needed to talk to GitHub")
        self.settings = settings
        self.redis = redis
        self.clock = clock
        self.seconds_between_writes = seconds_between_writes
        self._auth = Auth.AppAuth(settings.app_id, settings.private_key.get_secret_value())
        key = hashlib.sha256(settings.private_key.get_secret_value().encode()).digest()
        # Tokens rest in Redis encrypted with a key only the app's processes can derive.
        self._vault = Fernet(base64.urlsafe_b64encode(key))

    def integration(self) -> GithubIntegration:
        return GithubIntegration(
            auth=self._auth, base_url=self.settings.github_api_url, retry=_transient_retry()
        )

    def installation(self, installation_id: int) -> InstallationClient:
        return InstallationClient(self, installation_id)

    def installation_token(self, installation_id: int) -> str:
        cache = keys.InstallationKeys(installation_id).token
        sealed = self.redis.get(cache)
        if sealed:
            try:
                return self._vault.decrypt(sealed).decode()
            except InvalidToken:
                log.warning(
                    "cached token for installation %s unreadable; renewing", installation_id
                )
        grant = self.integration().get_access_token(installation_id)
        lifetime = grant.expires_at - self.clock.now() - TOKEN_MARGIN
        if lifetime.total_seconds() >= 1:
            self.redis.set(cache, self._vault.encrypt(grant.token.encode()), px=lifetime)
        return grant.token


class InstallationClient:
    def __init__(self, app: GitHubApp, installation_id: int) -> None:
        self.app = app
        self.installation_id = installation_id
        self.keys = keys.InstallationKeys(installation_id)
        self._github: Github | None = None

    @property
    def redis(self) -> Redis:
        return self.app.redis

    def github(self) -> Github:
        if self._github is None:
            token = self.app.installation_token(self.installation_id)
            self._github = Github(
                auth=Auth.Token(token),
                base_url=self.app.settings.github_api_url,
                retry=_transient_retry(),
                timeout=10,
                lazy=True,
                seconds_between_requests=None,
                seconds_between_writes=self.app.seconds_between_writes,
            )
        return self._github

    def read_file(self, repo: str, path: str) -> str | None:
        """A file's text on the repository's default branch; None if the file or repo is absent."""
        try:
            content = self.github().get_repo(repo).get_contents(path)
        except GithubException as error:
            if error.status == 404:
                return None
            raise
        if isinstance(content, list):  # a directory, not a file
            return None
        return content.decoded_content.decode()

    def changed_files(self, repo: str, number: int) -> list[tuple[str, int]]:
        """The PR's files with their changed lines (additions + deletions)."""
        files = self.github().get_repo(repo).get_pull(number).get_files()
        return [(file.filename, file.additions + file.deletions) for file in files]

    def set_status(self, repo: str, sha: str, status: Status) -> bool:
        """Post the `stoplight` status on a commit unless that commit already shows it."""
        ledger = self.keys.status_posted(repo, sha)
        if self.redis.get(ledger) == status.fingerprint().encode():
            return False
        commit = self.github().get_repo(repo).get_commit(sha)
        commit.create_status(
            state=status.state,
            target_url=status.target_url,
            description=status.description,
            context=STATUS_CONTEXT,
        )
        self.redis.set(ledger, status.fingerprint(), ex=LEDGER_TTL)
        log.info("status %s on %s@%s: %s", status.state, repo, sha[:7], status.description)
        return True

    def sync_labels(
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
        labels the latest delivery showed) stands in.
        """
        ledger = self.keys.labels_on(pull_key)
        recorded = self.redis.get(ledger)
        current = set(json.loads(recorded)) if recorded else {n for n in seen if n in managed}
        wanted_by_name = {label.name: label for label in wanted}
        to_add = [wanted_by_name[name] for name in sorted(wanted_by_name.keys() - current)]
        to_remove = sorted(current - wanted_by_name.keys())
        if to_add or to_remove:
            issue = self.github().get_repo(repo).get_issue(number)
            for label in to_add:
                self._ensure_label(repo, label)
            if to_add:
                issue.add_to_labels(*(label.name for label in to_add))
            for name in to_remove:
                _remove_label(issue, name)
            log.info("labels on %s#%s: +%s -%s", repo, number, sorted(wanted_by_name), to_remove)
        if not recorded or to_add or to_remove:
            self.redis.set(ledger, json.dumps(sorted(wanted_by_name)), ex=LEDGER_TTL)
        return bool(to_add or to_remove)

    def _ensure_label(self, repo: str, label: LabelSpec) -> None:
        known = self.keys.labels_in_repo(repo)
        if self.redis.sismember(known, label.name):
            return
        try:
            self.github().get_repo(repo).create_label(label.name, label.color, label.description)
        except GithubException as error:
            if error.status != 422:  # 422: it exists already, which is all we wanted
                raise
        self.redis.sadd(known, label.name)


def _remove_label(issue: Issue, name: str) -> None:
    try:
        issue.remove_from_labels(name)
    except GithubException as error:
        if error.status != 404:  # 404: already gone
            raise
