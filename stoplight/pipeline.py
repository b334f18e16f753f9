"""The work behind every job: delivery -> handlers -> store -> light -> effects.

Each step takes the runtime explicitly, so tests drive it with a fake clock and real Redis.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from pydantic import ValidationError
from redis.lock import Lock

from stoplight import intake, keys
from stoplight.changes import Change, InstallationChange, PullSnapshot
from stoplight.effects.github import TeamEffects
from stoplight.github import WriteDeferred
from stoplight.handlers import router
from stoplight.light import LightState, Measures, Policy, Verdict, evaluate
from stoplight.pulls import Rules
from stoplight.queue import QueueStore, Team
from stoplight.router import Delivery
from stoplight.runtime import Runtime, job_id

log = logging.getLogger(__name__)

# As long as GitHub may redeliver a delivery sent before an uninstall.
DELETED_MEMORY = timedelta(days=4)
# A sync reads many pages; it may take longer than other jobs (see sync.py).
SYNC_TIMEOUT_SECONDS = 30 * 60
# How long one effects pass may hold its team's lock without showing progress.
EFFECTS_LOCK_SECONDS = 30
# A pass longer than this hands the rest to a fresh job, well inside the job timeout.
EFFECTS_PASS_LIMIT = timedelta(seconds=15)
DEFAULT_POLICY = Policy()
DEFAULT_RULES = Rules()


def process_delivery(rt: Runtime, delivery_id: str) -> None:
    loaded = intake.load(rt.redis, delivery_id)
    if loaded is None:
        log.info("delivery %s already processed", delivery_id)
        return
    event, body = loaded
    name = event
    try:
        payload = json.loads(body)
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
            apply_change(rt, installation_id, change)
    intake.finish(rt.redis, delivery_id)


def _brief(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()[:3]
        )
    return str(error)


def team_for(pull: PullSnapshot) -> Team:
    """Each repository is its own team until teams are configured."""
    return Team(key=pull.repo, name=pull.repo)


def apply_change(rt: Runtime, installation_id: int, change: Change) -> None:
    if isinstance(change, InstallationChange):
        apply_installation_change(rt, installation_id, change)
        return
    if not _accepts(rt, installation_id, change.pull):
        return
    team = team_for(change.pull)
    store = QueueStore(rt.redis, installation_id)
    transition = store.apply(change, team, DEFAULT_RULES, rt.clock.now())
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


def _accepts(rt: Runtime, installation_id: int, pull: PullSnapshot) -> bool:
    """Whether a PR change belongs to a live installation and one of its repositories."""
    installation = keys.InstallationKeys(installation_id)
    deleted, known, granted = (
        rt.redis.pipeline()
        .exists(installation.deleted)
        .exists(installation.repositories)
        .sismember(installation.repositories, pull.repo_id)
        .execute()
    )
    if deleted:
        log.info(
            "%s#%s ignored: installation %s was deleted", pull.repo, pull.number, installation_id
        )
        return False
    if known and not granted:
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
    installation = keys.InstallationKeys(installation_id)
    if change.action == "deleted":
        store.forget_installation()
        # Deliveries sent before the uninstall may still arrive (or be redelivered).
        rt.redis.set(installation.deleted, 1, ex=DELETED_MEMORY)
        log.info("installation %s deleted: its state is gone", installation_id)
        return
    with rt.redis.pipeline() as pipe:
        pipe.delete(installation.deleted)
        pipe.sadd(keys.INSTALLATIONS, installation_id)
        if change.added:
            pipe.sadd(installation.repositories, *(repo.id for repo in change.added))
        if change.removed:
            pipe.srem(installation.repositories, *(repo.id for repo in change.removed))
        pipe.execute()
    for repo in change.removed:
        for team in store.forget_repository(repo.full_name):
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
    verdicts: list[Verdict] = []

    def decide(measures: Measures, previous: LightState | None) -> LightState:
        verdicts.append(evaluate(measures, DEFAULT_POLICY, previous, now))
        return verdicts[-1].state

    previous, state = store.update_light(team, decide)
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
    lock = rt.redis.lock(team_keys.effects_lock, timeout=EFFECTS_LOCK_SECONDS)
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
            if _effects_pass(rt, installation_id, team, lock):
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
    fanout = effects.apply(team, light.level, store.open_pulls(team), still_current)
    if fanout.writes:
        log.info("team %s: %d GitHub writes", team, fanout.writes)
    if not fanout.finished:
        log.info("team %s: fan-out for %s dropped, the light changed", team, light.level.label)
    return fanout.finished


_CLEAR_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _clear_if_unchanged(rt: Runtime, key: str, generation: bytes) -> None:
    rt.redis.eval(_CLEAR_IF_UNCHANGED, 1, key, generation)
