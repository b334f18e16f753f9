"""The fan-out stage: a team's light shown where people see it. On GitHub, its open PRs'
statuses and labels, by one pass at a time per team, dropped when a newer light makes it
stale, handed to a fresh job when it runs long; on Slack, a notice of the change.

The passes' coordination (the stale counter, the queued marker, the lock) lives with the jobs
on the lanes' Redis (`rt.queue`): the marker is set in one transaction with its job. The
statuses and labels are decided from the state (`rt.redis`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis.client import Pipeline
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from stoplight.clients.github import WriteDeferred
from stoplight.core.light import Level, LightState
from stoplight.core.pulls import PullRecord
from stoplight.effects import notices
from stoplight.effects.plan import TeamEffects, TeamMarks
from stoplight.pipeline.context import InstallationContext
from stoplight.pipeline.runtime import Runtime
from stoplight.state import keys, locks, rebuild
from stoplight.state.claims import ClaimStore, swarm_keys
from stoplight.state.keys import job_id
from stoplight.state.upgrade import owed_effects
from stoplight.transport import jobs
from stoplight.transport.beats import repeating

log = logging.getLogger(__name__)

# An effects pass holds its team's lock for this long, renewed every EFFECTS_LOCK_RENEW_SECONDS
# while it runs: the lock of a pass whose worker died lapses within seconds.
EFFECTS_LOCK_SECONDS = 6
EFFECTS_LOCK_RENEW_SECONDS = 2


# A queued pass's marker lapses after this, should its job be lost some other way than the
# retries RQ makes of a dead worker's jobs; the next request then queues a job again.
EFFECTS_QUEUED_SECONDS = 300

# A pass longer than this hands the rest to a fresh job, well inside the job timeout.
EFFECTS_PASS_LIMIT = timedelta(seconds=15)
# A pass that finds the state being rebuilt looks again this much later.
REBUILD_CHECK_SECONDS = 30


def fan_out(
    ctx: InstallationContext,
    team: str,
    previous: LightState | None,
    state: LightState,
    effects_queued: int,
) -> None:
    """Set going what shows the team's light just evaluated: a pass of its GitHub effects,
    marked stale with the evaluation (`effects_queued`: that mark's reply), and its notice."""
    ensure_effects_pass(ctx.runtime, ctx.installation_id, team, effects_queued)
    notices.on_light(ctx.runtime, ctx.installation_id, team, previous, state)


def request_effects(rt: Runtime, installation_id: int, team: str) -> None:
    """Mark the team's GitHub effects stale and make sure a pass will run."""
    with rt.queue.pipeline(transaction=False) as pipe:
        mark_effects_stale(pipe, installation_id, team)
        _, queued = pipe.execute()
    ensure_effects_pass(rt, installation_id, team, queued)


def mark_effects_stale(pipe: Pipeline, installation_id: int, team: str) -> None:
    """Queue on the caller's pipeline the two commands that mark the team's effects stale;
    the second's reply goes to `ensure_effects_pass`."""
    team_keys = keys.InstallationKeys(installation_id).team(team)
    pipe.incr(team_keys.effects_dirty)
    pipe.exists(team_keys.effects_queued)


def ensure_effects_pass(rt: Runtime, installation_id: int, team: str, queued: int) -> None:
    """Queue a pass for effects just marked stale, unless one waits already.

    A pass still waiting in the queue will see the mark, so no second job is needed: the
    job's marker is set with the job, in one transaction, and the pass clears it as it starts.
    """
    if queued:
        return
    team_keys = keys.InstallationKeys(installation_id).team(team)
    with rt.queue.pipeline() as pipe:
        rt.enqueue(jobs.apply_effects(installation_id, team), pipeline=pipe)
        pipe.set(team_keys.effects_queued, 1, ex=EFFECTS_QUEUED_SECONDS)
        pipe.execute()


def resume_effects(rt: Runtime, installation_id: int, team: str) -> None:
    """Queue a pass for effects owed from before an upgrade, whatever the marker says: the job
    it stands for may have run on an earlier version, which never clears the marker."""
    with rt.queue.pipeline(transaction=False) as pipe:
        mark_effects_stale(pipe, installation_id, team)
        pipe.execute()
    ensure_effects_pass(rt, installation_id, team, queued=0)


def resume_owed_effects(rt: Runtime) -> int:
    """Queue a pass for each team whose effects are owed (a job of one version may have run
    on the other: see `stoplight.state.upgrade`); how many teams."""
    owed: set[tuple[int, str]] = set()
    for redis in rt.redis_clients:
        owed |= owed_effects(redis)
    for installation_id, team in sorted(owed):
        resume_effects(rt, installation_id, team)
    return len(owed)


def apply_effects(ctx: InstallationContext, team: str) -> None:
    """Bring the team's statuses and labels in line with its state.

    Requests coalesce: one pass at a time per team holds a lock; a request made meanwhile
    bumps the dirty counter, and the holder runs again. The counter is cleared only after a
    pass succeeds, so a pass that fails or is killed is redone by the job's retry. A pass the
    write budget puts off ends and schedules itself for the moment the budget allows, so no
    worker sleeps through a pause.
    """
    rt, installation_id = ctx.runtime, ctx.installation_id
    team_keys = ctx.store.keys.team(team)
    rt.queue.delete(team_keys.effects_queued)  # requests from now on need a job of their own
    if not ctx.github.reachable:
        log.warning("no GitHub App credentials: effects for team %s skipped", team)
        return
    # Not thread-local: the renewing thread acts for the pass that holds it.
    lock = rt.queue.lock(team_keys.effects_lock, timeout=EFFECTS_LOCK_SECONDS, thread_local=False)
    while (generation := rt.queue.get(team_keys.effects_dirty)) is not None:
        if rebuild.rebuilding(rt.redis):
            _wait_for_rebuild(rt, installation_id, team)
            return
        if not lock.acquire(blocking=False):
            # Another pass runs and will see the counter. Should its worker have died, its lock
            # expires, and this check runs the pass then.
            _check_again(rt, installation_id, team, EFFECTS_LOCK_SECONDS)
            return
        try:
            renewing = repeating(EFFECTS_LOCK_RENEW_SECONDS, lock.reacquire, f"lock of {team}")
            with renewing:
                passed = _effects_pass(ctx, team, lock)
            if passed:
                _clear_if_unchanged(rt, team_keys.effects_dirty, generation)
        except WriteDeferred as deferred:
            log.info("team %s: GitHub writes resume at %s", team, deferred.until.isoformat())
            rt.schedule(
                deferred.until,
                jobs.apply_effects(installation_id, team),
                job_id=job_id("effects-deferred", installation_id, team),
            )
            return
        except LockNotOwnedError:
            # Gone with Redis's data (the pass then waits for the rebuild), or taken over by
            # another pass: this one ends, and the check runs one should the counter still be
            # set and nobody on it.
            if rebuild.rebuilding(rt.redis):
                _wait_for_rebuild(rt, installation_id, team)
                return
            log.info("team %s: the effects lock went from under the pass; it ends here", team)
            _check_again(rt, installation_id, team, EFFECTS_LOCK_SECONDS)
            return
        finally:
            locks.release(lock, f"effects lock of team {team}")


def _wait_for_rebuild(rt: Runtime, installation_id: int, team: str) -> None:
    """The ledgers do not know yet what GitHub shows: the rebuild sets the team's pass going
    when it is done, and a check comes back should the rebuild's job be lost."""
    log.info("team %s: effects wait for the state to be rebuilt from GitHub", team)
    rebuild.wait(rt.queue, installation_id, team)
    _check_again(rt, installation_id, team, REBUILD_CHECK_SECONDS)


def _check_again(rt: Runtime, installation_id: int, team: str, seconds: float) -> None:
    rt.schedule(
        rt.clock.now() + timedelta(seconds=seconds),
        jobs.apply_effects(installation_id, team),
        job_id=job_id("effects-check", installation_id, team),
    )


def _effects_pass(ctx: InstallationContext, team: str, lock: Lock) -> bool:
    """One fan-out of the team's current light; False when a newer light cut it short."""
    store, installation_id = ctx.store, ctx.installation_id
    light = store.light(team)
    if light is None:
        return True
    started = ctx.clock.now()

    def still_current() -> bool:
        # Raises if another pass took over, or Redis lost its data (and the lock with it);
        # with the lanes on a Redis of their own, a loss of the state takes the light instead.
        lock.reacquire()
        now = ctx.clock.now()
        if now - started > EFFECTS_PASS_LIMIT:
            raise WriteDeferred(installation_id, now)  # the rest goes to a fresh job, now
        latest = store.light(team)
        return latest is not None and latest.level == light.level

    github = ctx.github
    effects = TeamEffects(installation_id, ctx.settings.base_url, github.statuses, github.labels)
    pulls = store.open_pulls(team)
    marks = _marks(ctx, team, light.level, pulls)
    fanout = effects.apply(team, light.level, pulls, still_current, marks=marks)
    if fanout.writes:
        log.info("team %s: %d GitHub writes", team, fanout.writes)
    if not fanout.finished:
        log.info("team %s: fan-out for %s dropped, the light changed", team, light.level.label)
    return fanout.finished


def _marks(ctx: InstallationContext, team: str, level: Level, pulls: list[PullRecord]) -> TeamMarks:
    """What sets single PRs apart: place in the held lane, swarm, a configuration error."""
    store, configs = ctx.store, ctx.configs
    settings = ctx.team_settings(team)
    swarm_count = settings.swarm_labels
    swarm: list[str] = []
    if level is Level.RED and swarm_count > 0:
        holders = ClaimStore(ctx.redis, ctx.installation_id).holders(ctx.clock.now())
        swarm = swarm_keys(store, team, swarm_count, holders)  # unclaimed PRs first
    errors = {repo: error for repo in {p.repo for p in pulls} if (error := configs.error(repo))}
    return TeamMarks(
        held=tuple(store.held_keys(team)),
        swarm=frozenset(swarm),
        errors=errors,
        rules=settings.rules,
    )


_CLEAR_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _clear_if_unchanged(rt: Runtime, key: str, generation: bytes | str) -> None:
    rt.queue.eval(_CLEAR_IF_UNCHANGED, 1, key, generation)
