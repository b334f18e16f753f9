"""The transport between the workers and GitHub.

It owns the app's authentication (app JWT -> installation token, cached in Redis until shortly
before it expires, shared by every process), retries of transient failures, pagination, and the
pacing of writes per installation (see pacing.py). What is written, and the rule that nothing is
posted twice, belong to the writers in `stoplight.effects` (statuses, labels).

A write the budget or GitHub's throttling puts off by more than a moment raises WriteDeferred
with the moment it may go; the caller re-schedules its work instead of holding a worker.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken
from github import Auth, Github, GithubException, GithubIntegration
from github.Requester import Requester
from redis import Redis
from urllib3.util.retry import Retry

from stoplight import metrics
from stoplight.clients.pacing import GITHUB_BUDGET, Pacer, WriteBudget
from stoplight.config.repos import UnreadableFile
from stoplight.config.schema import size_problem
from stoplight.core.clock import Clock, from_timestamp
from stoplight.settings import Settings
from stoplight.state import keys

log = logging.getLogger(__name__)

# Renew a cached token this long before GitHub says it expires.
TOKEN_MARGIN = timedelta(minutes=5)
# An intent outlives any retry of the job that noted it.
INTENT_TTL = timedelta(days=1)
# A write the budget allows sooner than this is waited for in place; later ones are scheduled.
MAX_INLINE_WAIT = timedelta(seconds=1.5)
# A secondary limit without Retry-After: GitHub asks to wait at least a minute.
SECONDARY_LIMIT_PAUSE = timedelta(minutes=1)
# Seconds of backoff between quick retries (grows 2x per retry, plus jitter).
RETRY_BACKOFF_SECONDS = 0.5

T = TypeVar("T")


class WriteDeferred(Exception):
    """The installation may not write before `until`: pacing, or GitHub asked for a pause."""

    def __init__(self, installation_id: int, until: datetime) -> None:
        super().__init__(f"installation {installation_id}: writes wait until {until.isoformat()}")
        self.installation_id = installation_id
        self.until = until


def _transient_retry() -> Retry:
    # Quick in-process retries for a GitHub hiccup; anything longer is the job's retry.
    return Retry(
        total=3,
        connect=3,
        read=2,
        status=3,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=None,
        backoff_factor=RETRY_BACKOFF_SECONDS,
        backoff_jitter=RETRY_BACKOFF_SECONDS / 2,
        respect_retry_after_header=False,
        raise_on_status=False,
    )


def app_integration(settings: Settings) -> GithubIntegration:
    """The app acting as itself (JWT): installations, webhook deliveries. Needs no Redis."""
    if settings.app_id is None or settings.private_key is None:
        raise ValueError("APP_ID and PRIVATE_KEY are needed to talk to GitHub")
    auth = Auth.AppAuth(settings.app_id, settings.private_key.get_secret_value())
    return GithubIntegration(auth=auth, base_url=settings.github_api_url, retry=_transient_retry())


class GitHubApp:
    """The app's identity; hands out a client per installation."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        clock: Clock,
        *,
        budget: WriteBudget = GITHUB_BUDGET,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if settings.app_id is None or settings.private_key is None:
            raise ValueError("APP_ID and PRIVATE_KEY are needed to talk to GitHub")
        self.settings = settings
        self.redis = redis
        self.clock = clock
        self.pacer = Pacer(redis, clock, budget)
        self.sleep = sleep
        key = hashlib.sha256(settings.private_key.get_secret_value().encode()).digest()
        # Tokens rest in Redis encrypted with a key only the app's processes can derive.
        self._vault = Fernet(base64.urlsafe_b64encode(key))

    def integration(self) -> GithubIntegration:
        return app_integration(self.settings)

    def installation_ids(self) -> list[int]:
        """Every installation of the app, as GitHub lists them (app JWT)."""
        return sorted(installation.id for installation in self.integration().get_installations())

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
        with metrics.github_request(self.redis, "token"):
            grant = self.integration().get_access_token(installation_id)
        lifetime = grant.expires_at - self.clock.now() - TOKEN_MARGIN
        if lifetime.total_seconds() >= 1:
            self.redis.set(cache, self._vault.encrypt(grant.token.encode()), px=lifetime)
        return grant.token


@dataclass(frozen=True)
class Listing:
    """Every item of a paginated GET; `items` is None when GitHub answered 304 Not Modified."""

    etag: str | None
    items: list[Any] | None


def read_pages(
    requester: Requester,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    item_key: str | None = None,
    etag: str | None = None,
) -> Listing:
    """GET every page of a list, the first one conditionally (a 304 costs no rate limit)."""
    url: str | None = path
    headers = {"If-None-Match": etag} if etag else None
    first_etag: str | None = None
    items: list[Any] = []
    while url is not None:
        status, answer_headers, body = requester.requestJson(
            "GET", url, parameters=params, headers=headers
        )
        answer_headers = {name.lower(): value for name, value in answer_headers.items()}
        if status == 304:
            return Listing(etag, None)
        data = json.loads(body) if body else None
        if status >= 400:
            raise requester.createException(status, answer_headers, data or {})
        if first_etag is None:
            first_etag = answer_headers.get("etag")
        assert data is not None  # a page of a listing always has a body
        items.extend(data[item_key] if item_key else data)
        url = next_page_url(answer_headers.get("link", ""))
        params, headers = None, None  # the next link carries the parameters
    return Listing(first_etag, items)


def next_page_url(link: str) -> str | None:
    """The `next` target of a Link header, or None on the last page."""
    for part in link.split(","):
        target, _, relation = part.partition(";")
        if 'rel="next"' in relation:
            return target.strip().strip("<>")
    return None


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
                # Pacing is the budget's job, shared across processes (see `_write`).
                seconds_between_requests=None,
                seconds_between_writes=None,
            )
        return self._github

    def read_file(self, repo: str, path: str) -> str | None:
        """A file's text on the repository's default branch; None if the file or repo is absent.
        The names go into the request's path quoted, part by part; a file larger than a
        configuration may be, or not UTF-8, raises UnreadableFile."""
        url = f"/repos/{quote(repo, safe='/')}/contents/{quote(path, safe='/')}"
        try:
            with metrics.github_request(self.redis, "read"):
                content = self.github().requester.requestJsonAndCheck("GET", url)[1]
        except GithubException as error:
            if error.status == 404:
                return None
            raise
        if not isinstance(content, dict) or content.get("type") != "file":
            return None  # a directory or a link, not a file
        too_large = size_problem(int(content.get("size") or 0))
        if too_large or content.get("encoding") != "base64":
            # GitHub leaves files over 1 MB without content ("encoding": "none").
            raise UnreadableFile(too_large or "the file is too large to be read")
        try:
            return base64.b64decode(content.get("content") or "").decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise UnreadableFile("the file is not UTF-8 text") from None

    def changed_files(self, repo: str, number: int) -> list[tuple[str, int]]:
        """The PR's files with their changed lines (additions + deletions)."""
        with metrics.github_request(self.redis, "read"):
            files = self.github().get_repo(repo).get_pull(number).get_files()
            return [(file.filename, file.additions + file.deletions) for file in files]

    def read_pages(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        item_key: str | None = None,
        etag: str | None = None,
    ) -> Listing:
        with metrics.github_request(self.redis, "read"):
            return read_pages(self.github().requester, path, params, item_key=item_key, etag=etag)

    def read_json(self, path: str) -> Any:
        """GET one object; errors raise GithubException as PyGithub's own calls do."""
        with metrics.github_request(self.redis, "read"):
            return self.github().requester.requestJsonAndCheck("GET", path)[1]

    def write(self, send: Callable[[], T], intent: tuple[str, str] | None = None) -> T:
        """Send one content-creating request within the installation's budget.

        `intent` (key, value) is noted just before the request goes out and dropped if GitHub
        refuses it; the caller drops it with its ledger entry once the write is recorded.
        """
        self._wait_for_budget()
        if intent is not None:
            self.redis.set(*intent, ex=INTENT_TTL)
        try:
            with metrics.github_request(self.redis, "write"):
                sent = send()
        except GithubException as error:
            if intent is not None:  # GitHub answered: the write did not happen
                self.redis.delete(intent[0])
            until = throttled_until(error, self.app.clock.now())
            if until is None:
                raise
            until = self.app.pacer.pause(self.installation_id, until)
            log.warning(
                "installation %s throttled by GitHub (%s): no writes until %s",
                self.installation_id,
                error.status,
                until.isoformat(),
            )
            metrics.WRITES_DEFERRED.inc(self.redis, "throttled")
            raise WriteDeferred(self.installation_id, until) from None
        remaining = self.github().requester.rate_limiting[0]
        if remaining >= 0:  # -1 until GitHub has told
            metrics.RATE_LIMIT_REMAINING.set(self.redis, remaining, str(self.installation_id))
        return sent

    def _wait_for_budget(self) -> None:
        """Take a write from the budget, waiting in place once if it is due within a moment."""
        pacer = self.app.pacer
        until = pacer.acquire(self.installation_id)
        if until is None:
            return
        wait = until - self.app.clock.now()
        if wait < MAX_INLINE_WAIT:
            self.app.sleep(max(wait.total_seconds(), 0.0))
            until = pacer.acquire(self.installation_id)
            if until is None:
                return
        metrics.WRITES_DEFERRED.inc(self.redis, "pacing")
        raise WriteDeferred(self.installation_id, until)


def throttled_until(error: GithubException, now: datetime) -> datetime | None:
    """When GitHub lets the installation write again, if `error` is one of its rate limits."""
    if error.status not in (403, 429):
        return None
    headers = {name.lower(): value for name, value in (error.headers or {}).items()}
    retry_after = headers.get("retry-after", "")
    if retry_after.isdigit():
        return now + timedelta(seconds=int(retry_after))
    reset = headers.get("x-ratelimit-reset", "")
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(from_timestamp(int(reset)), now)
    data = error.data if isinstance(error.data, dict) else {}
    message = str(error.message or data.get("message", "")).lower()
    if "secondary rate limit" in message or error.status == 429:
        return now + SECONDARY_LIMIT_PAUSE
    return None
