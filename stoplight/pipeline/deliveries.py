"""The work behind every job: delivery -> handlers -> store -> light -> effects.

Each step takes the runtime explicitly, so tests drive it with a fake clock and real Redis.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import TypeGuard, TypeVar

from pydantic import ValidationError
from redis.lock import Lock

from stoplight import logs
from stoplight.clients.github import InstallationClient, WriteDeferred
from stoplight.config.repos import RepoConfigs
from stoplight.config.schema import TeamSettings
from stoplight.core.changes import (
    Change,
    ConfigChange,
    InstallationChange,
    PullChange,
    PullSnapshot,
    ReviewChange,
)
from stoplight.core.light import Level, LightState, Measures, Verdict, evaluate
from stoplight.core.marks import MANAGED_LABELS
from stoplight.core.pulls import PullRecord, pull_key
from stoplight.effects import notices as slack_notices
from stoplight.effects.labels import Labels
from stoplight.effects.plan import TeamEffects, TeamMarks
from stoplight.events import intake
from stoplight.events.handlers import router
from stoplight.events.routing import Delivery
from stoplight.pipeline.beats import repeating
from stoplight.pipeline.runtime import Runtime, job_id
from stoplight.state import keys
from stoplight.state.installations import Installation
from stoplight.state.review_queue import QueueStore, Team

log = logging.getLogger(__name__)

# As long as GitHub may redeliver a delivery sent before an uninstall.
# A sync reads many pages; it may take longer than other jobs (see sync.py).
SYNC_TIMEOUT_SECONDS = 30 * 60
# An effects pass holds its team's lock for this long, renewed every EFFECTS_LOCK_RENEW_SECONDS
# while it runs: the lock of a pass whose worker died lapses within seconds.
EFFECTS_LOCK_SECONDS = 6
EFFECTS_LOCK_RENEW_SECONDS = 2
# A pass longer than this hands the rest to a fresh job, well inside the job timeout.
EFFECTS_PASS_LIMIT = timedelta(seconds=15)
# A head commit's file list never changes; keep it as long as a PR plausibly stays open.
FILES_TTL = timedelta(days=30)

# Label changes: the expedite label moves a PR; the others matter only to the label ledger.
LABEL_ACTIONS = frozenset({"labeled", "unlabeled"})

PullOrReview = TypeVar("PullOrReview", PullChange, ReviewChange)


def process_delivery(rt: Runtime, delivery_id: str, job_id: str) -> None:
    if not intake.claim(rt.redis, delivery_id, job_id):
        log.info("delivery %s is another job's: a repeated delivery", delivery_id)
        return
    loaded = intake.load(rt.redis, delivery_id)
    if loaded is None:
        log.info("delivery %s already processed", delivery_id)
        return
    event, body = loaded
    name = event
    try:
        payload = intake.parse_body(body)
        if not isinstance(payload, dict):
            raise ValueError("body is not a JSON object")
        delivery = Delivery(id=delivery_id, event=event, payload=payload)
        name = delivery.name
        installation_id = delivery.installation_id
        if installation_id is None:
            raise ValueError("installation.id: missing")
        changes = router.dispatch(delivery)
    except (ValidationError, ValueError) as error:
        log.warning("delivery %s (%s) ignored: %s", delivery_id, name, _brief(error))
    else:
        if not changes:
            log.info("delivery %s (%s): nothing stoplight uses", delivery_id, name)
        for change in changes:
            with logs.about(change):
                apply_change(rt, installation_id, change)
    intake.finish(rt.redis, delivery_id)


def _brief(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()[:3]
        )
    return str(error)


def repo_configs(rt: Runtime, installation_id: int) -> RepoConfigs:
    """Configurations as a worker sees them: read from GitHub when not yet cached."""
    client = rt.github.installation(installation_id) if rt.github else None
    return RepoConfigs(rt.redis, installation_id, client)


def team_settings(rt: Runtime, installation_id: int, team: str) -> TeamSettings:
    """A team's policy, rules and labels, from the cached configuration."""
    return RepoConfigs(rt.redis, installation_id).team(team)


def apply_change(rt: Runtime, installation_id: int, change: Change) -> None:
    if isinstance(change, InstallationChange):
        apply_installation_change(rt, installation_id, change)
        return
    if isinstance(change, ConfigChange):
        apply_config_change(rt, installation_id, change)
        return
    if not _accepts(rt, installation_id, change.pull):
        return
    configs = repo_configs(rt, installation_id)
    settings = configs.team_of_repo(change.pull.repo)
    if _other_label(change, settings.rules.expedite_label):
        apply_label_removal(rt, installation_id, change, settings.key)
        return
    if settings.size_exclude and configs.client is not None:
        change = with_excluded_lines(configs.client, change, settings.size_exclude)
    team = Team(key=settings.key, name=settings.name)
    store = QueueStore(rt.redis, installation_id)
    transition = store.apply(change, team, settings.rules, rt.clock.now())
    before = transition.before
    log.info(
        "%s#%s %s: %s -> %s",
        change.pull.repo,
        change.pull.number,
        change.action,
        before.phase if before else "new",
        transition.after.phase,
    )
    if before is not None and before.team != team.key:
        refresh_team(rt, installation_id, before.team)
    refresh_team(rt, installation_id, team.key)


def _other_label(change: PullChange | ReviewChange, expedite_label: str) -> TypeGuard[PullChange]:
    """A label change that does not touch the expedite label, the one label that moves a PR."""
    return (
        isinstance(change, PullChange)
        and change.action in LABEL_ACTIONS
        and change.label != expedite_label
    )


def apply_label_removal(rt: Runtime, installation_id: int, change: PullChange, team: str) -> None:
    """A label other than the expedite label came or went; only the removal of one the app
    manages (a person took `stoplight:held` off) matters: the ledger learns it, and the next
    pass puts the label back while it is still wanted. The app's own label writes come back
    as such deliveries too, and set off nothing."""
    pull = change.pull
    if change.action != "unlabeled" or change.label not in MANAGED_LABELS or rt.github is None:
        return
    client = rt.github.installation(installation_id)
    if Labels(client).forget(pull_key(pull.repo_id, pull.number), change.label):
        log.info("%s#%s: %s was removed on GitHub", pull.repo, pull.number, change.label)
        request_effects(rt, installation_id, team)


def with_excluded_lines(
    client: InstallationClient, change: PullOrReview, exclude: tuple[str, ...]
) -> PullOrReview:
    """The change with the lines of excluded files counted, listing files once per head sha."""
    pull = change.pull
    if not pull.open:
        return change
    cache = client.keys.files(pull.repo, pull.head_sha)
    cached = client.redis.get(cache)
    if cached is None:
        files = client.changed_files(pull.repo, pull.number)
        client.redis.set(cache, json.dumps(files), ex=FILES_TTL)
    else:
        files = json.loads(cached)
    excluded = sum(lines for path, lines in files if excluded_path(path, exclude))
    snapshot = pull.model_copy(update={"excluded_lines": excluded})
    return change.model_copy(update={"pull": snapshot})


def excluded_path(path: str, patterns: tuple[str, ...]) -> bool:
    """gitignore-like: a pattern without a slash matches the file name at any depth."""
    name = path.rpartition("/")[2]
    return any(fnmatchcase(path if "/" in p else name, p) for p in patterns)


def apply_config_change(rt: Runtime, installation_id: int, change: ConfigChange) -> None:
    """Reload every cached configuration (another repository may extend the changed file)."""
    configs = repo_configs(rt, installation_id)
    store = QueueStore(rt.redis, installation_id)
    repos = sorted({change.repo, *configs.repos()})
    teams = set()
    for repo in repos:
        loaded = configs.reload(repo)
        log.info("%s: configuration reloaded%s", repo, f" ({loaded.error})" if loaded.error else "")
        settings = configs.team_of_repo(repo)
        teams.add(settings.key)
        home = Team(key=settings.key, name=settings.name)
        teams |= store.move_repository(repo, home, rt.clock.now())
    for team in sorted(teams):
        refresh_team(rt, installation_id, team)


def _accepts(rt: Runtime, installation_id: int, pull: PullSnapshot) -> bool:
    """Whether a PR change belongs to a live installation and one of its repositories."""
    admission = Installation(rt.redis, installation_id).admission(pull.repo_id)
    if admission.deleted:
        log.info(
            "%s#%s ignored: installation %s was deleted", pull.repo, pull.number, installation_id
        )
        return False
    if not admission.granted:
        log.info(
            "%s#%s ignored: %s is not among installation %s's repositories",
            pull.repo,
            pull.number,
            pull.repo,
            installation_id,
        )
        return False
    return True


def apply_installation_change(
    rt: Runtime, installation_id: int, change: InstallationChange
) -> None:
    store = QueueStore(rt.redis, installation_id)
    installation = Installation(rt.redis, installation_id)
    if change.action == "deleted":
        installation.forget()
        log.info("installation %s deleted: its state is gone", installation_id)
        return
    installation.grant(
        added=(repo.id for repo in change.added), removed=(repo.id for repo in change.removed)
    )
    for repo in change.removed:
        for team in store.forget_repository(repo.full_name, rt.clock.now()):
            refresh_team(rt, installation_id, team)
    if change.action in ("created", "unsuspend", "added") and rt.github is not None:
        # New repositories come with open PRs no delivery will tell about: read them.
        rt.enqueue(
            "stoplight.jobs.sync_installation",
            installation_id,
            job_id=job_id("sync", installation_id),
            timeout=SYNC_TIMEOUT_SECONDS,
        )
    log.info(
        "installation %s %s: +%d repositories, -%d",
        installation_id,
        change.action,
        len(change.added),
        len(change.removed),
    )


def refresh_team(rt: Runtime, installation_id: int, team: str) -> Verdict:
    """Re-evaluate the team's light now, store it, and set the effects and next tick going."""
    store = QueueStore(rt.redis, installation_id)
    now = rt.clock.now()
    policy = team_settings(rt, installation_id, team).policy
    verdicts: list[Verdict] = []

    def decide(measures: Measures, previous: LightState | None) -> LightState:
        verdicts.append(evaluate(measures, policy, previous, now))
        return verdicts[-1].state

    previous, state = store.update_light(team, decide)
    if state.level < Level.RED:
        admitted = store.admit_held(team, policy, now)
        if admitted:
            log.info("team %s: admitted %s from the held lane", team, [p.key for p in admitted])
            _, state = store.update_light(team, decide)
    verdict = verdicts[-1]
    if previous is None or previous.level != state.level:
        log.info(
            "team %s light %s -> %s (%s)",
            team,
            previous.level.label if previous else "none",
            state.level.label,
            "; ".join(verdict.reasons) or "queue within limits",
        )
    if verdict.next_change_at is not None:
        rt.schedule(
            verdict.next_change_at,
            "stoplight.jobs.refresh_team",
            installation_id,
            team,
            job_id=job_id("tick", installation_id, team),
        )
    request_effects(rt, installation_id, team)
    slack_notices.on_light(rt, installation_id, team, previous, state)
    return verdict


def request_effects(rt: Runtime, installation_id: int, team: str) -> None:
    """Mark the team's GitHub effects stale and make sure a pass will run."""
    rt.redis.incr(keys.InstallationKeys(installation_id).team(team).effects_dirty)
    rt.enqueue("stoplight.jobs.apply_effects", installation_id, team)


def apply_effects(rt: Runtime, installation_id: int, team: str) -> None:
    """Bring the team's statuses and labels in line with its state.

    Requests coalesce: one pass at a time per team holds a lock; a request made meanwhile
    bumps the dirty counter, and the holder runs again. The counter is cleared only after a
    pass succeeds, so a pass that fails or is killed is redone by the job's retry. A pass the
    write budget puts off ends and schedules itself for the moment the budget allows, so no
    worker sleeps through a pause.
    """
    if rt.github is None:
        log.warning("no GitHub App credentials: effects for team %s skipped", team)
        return
    team_keys = keys.InstallationKeys(installation_id).team(team)
    # Not thread-local: the renewing thread acts for the pass that holds it.
    lock = rt.redis.lock(team_keys.effects_lock, timeout=EFFECTS_LOCK_SECONDS, thread_local=False)
    while (generation := rt.redis.get(team_keys.effects_dirty)) is not None:
        if not lock.acquire(blocking=False):
            # Another pass runs and will see the counter. Should its worker have died, its lock
            # expires, and this check runs the pass then.
            rt.schedule(
                rt.clock.now() + timedelta(seconds=EFFECTS_LOCK_SECONDS),
                "stoplight.jobs.apply_effects",
                installation_id,
                team,
                job_id=job_id("effects-check", installation_id, team),
            )
            return
        try:
            renewing = repeating(EFFECTS_LOCK_RENEW_SECONDS, lock.reacquire, f"lock of {team}")
            with renewing:
                passed = _effects_pass(rt, installation_id, team, lock)
            if passed:
                _clear_if_unchanged(rt, team_keys.effects_dirty, generation)
        except WriteDeferred as deferred:
            log.info("team %s: GitHub writes resume at %s", team, deferred.until.isoformat())
            rt.schedule(
                deferred.until,
                "stoplight.jobs.apply_effects",
                installation_id,
                team,
                job_id=job_id("effects-deferred", installation_id, team),
            )
            return
        finally:
            lock.release()


def _effects_pass(rt: Runtime, installation_id: int, team: str, lock: Lock) -> bool:
    """One fan-out of the team's current light; False when a newer light cut it short."""
    assert rt.github is not None
    store = QueueStore(rt.redis, installation_id)
    light = store.light(team)
    if light is None:
        return True
    started = rt.clock.now()

    def still_current() -> bool:
        lock.reacquire()  # shows the pass is alive; raises if another pass took over
        now = rt.clock.now()
        if now - started > EFFECTS_PASS_LIMIT:
            raise WriteDeferred(installation_id, now)  # the rest goes to a fresh job, now
        latest = store.light(team)
        return latest is not None and latest.level == light.level

    effects = TeamEffects(rt.github.installation(installation_id), rt.settings.base_url)
    pulls = store.open_pulls(team)
    marks = _marks(rt, store, team, light.level, pulls)
    fanout = effects.apply(team, light.level, pulls, still_current, marks=marks)
    if fanout.writes:
        log.info("team %s: %d GitHub writes", team, fanout.writes)
    if not fanout.finished:
        log.info("team %s: fan-out for %s dropped, the light changed", team, light.level.label)
    return fanout.finished


def _marks(
    rt: Runtime, store: QueueStore, team: str, level: Level, pulls: list[PullRecord]
) -> TeamMarks:
    """What sets single PRs apart: place in the held lane, swarm, a configuration error."""
    configs = RepoConfigs(rt.redis, store.installation_id)
    swarm_count = configs.team(team).swarm_labels
    swarm = ()
    if level is Level.RED and swarm_count > 0:
        swarm = tuple(record.key for record in store.waiting_pulls(team, swarm_count))
    errors = {repo: error for repo in {p.repo for p in pulls} if (error := configs.error(repo))}
    return TeamMarks(held=tuple(store.held_keys(team)), swarm=frozenset(swarm), errors=errors)


_CLEAR_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _clear_if_unchanged(rt: Runtime, key: str, generation: bytes) -> None:
    rt.redis.eval(_CLEAR_IF_UNCHANGED, 1, key, generation)
