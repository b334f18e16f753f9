"""Reconciliation: rebuild the queue state of installations from the GitHub API.

Webhooks get lost (an outage, a bug, a wiped Redis); a sync reads the truth and feeds it
through the same store and transitions as deliveries, so it corrects drift and, thanks to the
write ledgers, posts no status that did not change. It spends little: one conditional list
call per repository (a 304 costs nothing and skips the repository), no per-PR GET but for the
size of a PR whose head the store has not seen (and that head's date, when a verdict on an
older commit says the PR started waiting again at a push), and the reviews and the shown
status of PRs that changed. That status, and the labels the list shows, reset the write
ledgers, so a Redis that lost its data does not post what GitHub already shows.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from github import GithubException
from rq.registry import ScheduledJobRegistry

from stoplight.clients.github import InstallationClient
from stoplight.core.changes import PullChange, PullSnapshot, ReviewChange
from stoplight.core.clock import parse_github_time
from stoplight.core.marks import MANAGED_LABELS
from stoplight.core.pulls import PullRecord, pull_key
from stoplight.effects.labels import Labels
from stoplight.effects.statuses import Statuses
from stoplight.events.payloads import PullRequest, Repository, Review
from stoplight.pipeline.context import InstallationContext
from stoplight.pipeline.installations import SYNC_TIMEOUT_SECONDS
from stoplight.pipeline.lights import refresh_team
from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.sizes import with_excluded_lines
from stoplight.state import keys, locks
from stoplight.state.installations import Installation
from stoplight.state.replies import text
from stoplight.state.review_queue import QueueStore, Team
from stoplight.transport import jobs

log = logging.getLogger(__name__)

SCHEDULED_SYNC_PREFIX = "sync-all-"
PAGE = {"per_page": 100}
VERDICTS = ("approved", "changes_requested", "dismissed")


@dataclass
class SyncReport:
    installations: int = 0
    repositories: int = 0
    unchanged_repositories: int = 0
    pulls: int = 0
    closed: int = 0
    teams: set[tuple[int, str]] = field(default_factory=set)


def sync_all(rt: Runtime) -> SyncReport | None:
    """Sync every installation GitHub lists; None when another sync is already running."""
    assert rt.github is not None, "sync needs the app's credentials"
    lock = rt.redis.lock(keys.SYNC_LOCK, timeout=SYNC_TIMEOUT_SECONDS)
    if not lock.acquire(blocking=False):
        log.info("sync skipped: another sync is running")
        return None
    report = SyncReport()
    try:
        for installation_id in rt.github.installation_ids():
            sync_installation(rt, installation_id, report)
    finally:
        locks.release(lock, "sync lock")
    log.info(
        "sync done: %d installations, %d repositories (%d unchanged), %d PRs, %d closed",
        report.installations,
        report.repositories,
        report.unchanged_repositories,
        report.pulls,
        report.closed,
    )
    return report


def sync_installation(
    rt: Runtime, installation_id: int, report: SyncReport | None = None
) -> SyncReport:
    assert rt.github is not None, "sync needs the app's credentials"
    report = report or SyncReport()
    lock = rt.redis.lock(
        keys.InstallationKeys(installation_id).sync_lock, timeout=SYNC_TIMEOUT_SECONDS
    )
    if not lock.acquire(blocking=False):
        log.info("installation %s: sync skipped, one is running", installation_id)
        return report
    try:
        client = rt.github.installation(installation_id)
        ctx = InstallationContext.of(rt, installation_id)
        store = ctx.store
        listing = client.read_pages("/installation/repositories", PAGE, item_key="repositories")
        repos = [Repository.model_validate(raw) for raw in listing.items or []]
        Installation(rt.redis, installation_id).grant_exactly(repo.id for repo in repos)
        report.installations += 1
        touched = _forget_unlisted(store, repos, rt.clock.now())
        # Read once, and only if some repository's PR list changed.
        stored_open = functools.cache(functools.partial(_stored_open, store))
        for repo in repos:
            touched |= _sync_repository(ctx, client, repo, stored_open, report)
    finally:
        locks.release(lock, f"sync lock of installation {installation_id}")
    for team in sorted(touched):
        refresh_team(ctx, team)
        report.teams.add((installation_id, team))
    return report


def _forget_unlisted(store: QueueStore, repos: list[Repository], now: datetime) -> set[str]:
    """Drop the PRs of repositories the installation no longer grants: a missed removal."""
    listed = {repo.id for repo in repos}
    touched: set[str] = set()
    for repo_id, name in sorted(store.stored_repositories().items()):
        if repo_id not in listed:
            touched |= store.forget_repository(name, now)
            log.info("%s: no longer granted to installation %s", name, store.installation_id)
    return touched


def _sync_repository(
    ctx: InstallationContext,
    client: InstallationClient,
    repo: Repository,
    stored_open: Callable[[], dict[str, list[PullRecord]]],
    report: SyncReport,
) -> set[str]:
    rt, store = ctx.runtime, ctx.store
    report.repositories += 1
    etag_key = store.keys.pulls_etag(repo.full_name)
    cached = rt.redis.get(etag_key)
    listing = client.read_pages(
        f"/repos/{repo.full_name}/pulls",
        {"state": "open", **PAGE},
        etag=text(cached) if cached else None,
    )
    if listing.items is None:
        report.unchanged_repositories += 1
        return set()
    touched: set[str] = set()
    listed: set[int] = set()
    for raw in listing.items:
        pull = PullRequest.model_validate(raw)
        listed.add(pull.number)
        touched |= _sync_pull(ctx, client, repo, pull)
        report.pulls += 1
    for record in stored_open().get(repo.full_name, []):
        if record.number not in listed:
            touched |= _close(ctx, record)
            report.closed += 1
    if listing.etag:
        rt.redis.set(etag_key, listing.etag)
    return touched


def _sync_pull(
    ctx: InstallationContext, client: InstallationClient, repo: Repository, pull: PullRequest
) -> set[str]:
    rt, store = ctx.runtime, ctx.store
    snapshot = pull.snapshot(repo)
    record = store.pull(pull_key(repo.id, pull.number))
    settings = ctx.configs.assign_team(snapshot.repo)
    if (
        record is not None
        and record.updated_at >= snapshot.updated_at
        and record.team == settings.key  # else stored under a team key of before
    ):
        _learn_missing_ledgers(rt, client, store, repo, snapshot)
        return set()  # the store has seen this PR as it is now
    new_head = record is None or record.head_sha != snapshot.head_sha
    if new_head:
        # The list answer carries no sizes; a PR whose head is new to the store needs its own.
        sizes = client.read_json(f"/repos/{repo.full_name}/pulls/{pull.number}")
        snapshot = snapshot.model_copy(
            update={"additions": sizes.get("additions"), "deletions": sizes.get("deletions")}
        )
    reviews = _reviews(client, repo.full_name, pull.number)
    # What GitHub shows, read rather than assumed: a new or restored Redis posts only changes.
    Statuses(client).learn(repo.full_name, snapshot.head_sha)
    Labels(client).learn(pull_key(repo.id, pull.number), snapshot.labels, MANAGED_LABELS)
    team = Team(key=settings.key, name=settings.name)
    now = rt.clock.now()
    started = _wait_start(client, repo.full_name, pull, reviews, new_head)
    edited = PullChange(action="edited", pull=snapshot, at=started)
    if settings.size_exclude:
        edited = with_excluded_lines(rt.redis, client, edited, settings.size_exclude)
    changes: list[PullChange | ReviewChange] = [edited]
    for review in reviews:
        assert review.submitted_at is not None
        changes.append(
            ReviewChange(
                action="dismissed" if review.state == "dismissed" else "submitted",
                pull=snapshot,
                reviewer=review.user.login,
                reviewer_is_bot=review.user.is_bot,
                state=review.state,
                commit_id=review.commit_id,
                at=review.submitted_at,
            )
        )
    touched = {team.key}
    for change in changes:
        transition = store.apply(change, team, settings.rules, now)
        if transition.before is not None:
            touched.add(transition.before.team)
    return touched


def _learn_missing_ledgers(
    rt: Runtime,
    client: InstallationClient,
    store: QueueStore,
    repo: Repository,
    snapshot: PullSnapshot,
) -> None:
    """A PR the store holds as it is now may still have no ledgers: a delivery made its
    record again after Redis lost its data. Learn what GitHub shows for what is missing, so
    the next pass posts only what differs."""
    key = pull_key(repo.id, snapshot.number)
    with rt.redis.pipeline(transaction=False) as pipe:
        pipe.exists(store.keys.status_posted(repo.full_name, snapshot.head_sha))
        pipe.exists(store.keys.labels_on(key))
        status_known, labels_known = pipe.execute()
    if not status_known:
        Statuses(client).learn(repo.full_name, snapshot.head_sha)
    if not labels_known:
        Labels(client).learn(key, snapshot.labels, MANAGED_LABELS)


def _reviews(client: InstallationClient, repo: str, number: int) -> list[Review]:
    listing = client.read_pages(f"/repos/{repo}/pulls/{number}/reviews", PAGE)
    reviews = [Review.model_validate(raw) for raw in listing.items or []]
    decided = [r for r in reviews if r.state in VERDICTS and r.submitted_at is not None]
    return sorted(decided, key=lambda review: review.submitted_at or datetime.min)


def _wait_start(
    client: InstallationClient, repo: str, pull: PullRequest, reviews: list[Review], new_head: bool
) -> datetime:
    """When the PR last started waiting: its opening or, when a verdict on an older commit
    came since, the push of its head. The push is read (as the head commit's date, never
    before that verdict) only for a head new to the store: for a known head the store keeps
    the wait it already has."""
    opened = pull.created_at or pull.updated_at
    older = [
        review.submitted_at
        for review in reviews
        if review.submitted_at is not None and review.commit_id != pull.head.sha
    ]
    if not older:
        return opened
    since = max(opened, *older)
    pushed = _commit_date(client, repo, pull.head.sha) if new_head else None
    return max(since, pushed) if pushed is not None else since


def _commit_date(client: InstallationClient, repo: str, sha: str) -> datetime | None:
    try:
        commit = client.read_json(f"/repos/{repo}/commits/{sha}")
        return parse_github_time(commit["commit"]["committer"]["date"])
    except (GithubException, AttributeError, KeyError, TypeError, ValueError) as error:
        log.info(
            "%s@%s: commit date unknown (%s); the wait counts from the verdict", repo, sha, error
        )
        return None


def _stored_open(store: QueueStore) -> dict[str, list[PullRecord]]:
    """The PRs the store holds open, by repository."""
    by_repo: dict[str, list[PullRecord]] = defaultdict(list)
    for team in store.teams():
        for record in store.open_pulls(team):
            by_repo[record.repo].append(record)
    return by_repo


def _close(ctx: InstallationContext, record: PullRecord) -> set[str]:
    """A PR the store holds open that GitHub no longer lists: its close was missed."""
    store, now = ctx.store, ctx.clock.now()
    fields = record.model_dump(include=set(PullSnapshot.model_fields))
    snapshot = PullSnapshot(**{**fields, "open": False, "updated_at": now})
    change = PullChange(action="closed", pull=snapshot, at=now)
    settings = ctx.configs.team(record.team)
    store.apply(change, Team(key=settings.key, name=settings.name), settings.rules, now)
    log.info("%s#%s: closed on GitHub, a missed delivery", record.repo, record.number)
    return {record.team}


def schedule_next_sync(rt: Runtime) -> None:
    """Keep one scheduled sync ahead; its id names its minute, so racing schedulers agree."""
    interval = timedelta(hours=rt.settings.sync_interval_hours)
    at = (rt.clock.now() + interval).replace(second=0, microsecond=0)
    rt.schedule(
        at,
        jobs.scheduled_sync(),
        job_id=f"{SCHEDULED_SYNC_PREFIX}{at:%Y%m%d%H%M}",
        timeout=SYNC_TIMEOUT_SECONDS,
    )


def ensure_sync_scheduled(rt: Runtime) -> None:
    scheduled = ScheduledJobRegistry(queue=rt.lanes.shared).get_job_ids()
    if not any(job.startswith(SCHEDULED_SYNC_PREFIX) for job in scheduled):
        schedule_next_sync(rt)
