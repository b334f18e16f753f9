"""A team's light: re-evaluated from its queue, stored, and set going to where people see it."""

from __future__ import annotations

import logging
from datetime import datetime

from stoplight.config.schema import TeamSettings
from stoplight.core.light import (
    Level,
    LightState,
    Measures,
    Policy,
    Verdict,
    evaluate,
    stale_cutoff,
)
from stoplight.effects import digest, notices
from stoplight.pipeline.configs import team_settings
from stoplight.pipeline.fanout import ensure_effects_pass, mark_effects_stale
from stoplight.pipeline.runtime import Runtime, job_id, scheduled_moment
from stoplight.state.review_queue import QueueStore, TeamRead
from stoplight.transport import jobs

log = logging.getLogger(__name__)


def refresh_team(
    rt: Runtime,
    installation_id: int,
    team: str,
    settings: TeamSettings | None = None,
    read: TeamRead | None = None,
) -> Verdict:
    """Re-evaluate the team's light now, store it, and set the effects and next tick going.

    `settings`, `read`: the team's settings and state as a change just left them, if one did.
    """
    store = QueueStore(rt.redis, installation_id)
    now = rt.clock.now()
    if settings is None:  # read here, not from a change: the team's digest may be new or moved
        settings = team_settings(rt, installation_id, team)
        digest.ensure_scheduled(rt, installation_id, team, settings)
    policy = settings.policy
    if _sweep_stale(store, team, policy, now, read):
        read = None  # the measures changed under it
    verdicts: list[Verdict] = []

    def decide(measures: Measures, previous: LightState | None) -> LightState:
        verdicts.append(evaluate(measures, policy, previous, now))
        return verdicts[-1].state

    update = store.update_light(team, decide, read)
    previous, state = update.previous, update.state
    if state.level < Level.RED and update.held:
        admitted = store.admit_held(team, policy, settings.rules, now)
        if admitted:
            log.info("team %s: admitted %s from the held lane", team, [p.key for p in admitted])
            state = store.update_light(team, decide).state
    verdict = verdicts[-1]
    if previous is None or previous.level != state.level:
        log.info(
            "team %s light %s -> %s (%s)",
            team,
            previous.level.label if previous else "none",
            state.level.label,
            "; ".join(verdict.reasons) or "queue within limits",
        )
    tick = job_id("tick", installation_id, team)
    with rt.queue.pipeline(transaction=False) as pipe:  # one round trip for both
        mark_effects_stale(pipe, installation_id, team)
        rt.read_schedule(pipe, tick)
        _, effects_queued, scheduled = pipe.execute()
    if verdict.next_change_at is not None:
        _evaluate_again_by(rt, installation_id, team, verdict.next_change_at, scheduled)
    ensure_effects_pass(rt, installation_id, team, effects_queued)
    notices.on_light(rt, installation_id, team, previous, state)
    return verdict


def _sweep_stale(
    store: QueueStore, team: str, policy: Policy, now: datetime, read: TeamRead | None
) -> bool:
    """Move the PRs that waited past the team's `stale_after` out of its queue; True if any.
    A change's own read of the measures says whether any did, sparing the look."""
    if policy.stale_after is None:
        return False
    cutoff = stale_cutoff(now, policy.stale_after)
    if read is not None and (
        read.measures.oldest_since is None or read.measures.oldest_since > cutoff
    ):
        return False
    swept = store.sweep_stale(team, cutoff, now)
    if swept:
        log.info("team %s: stale, out of the queue: %s", team, [record.key for record in swept])
    return bool(swept)


def _evaluate_again_by(
    rt: Runtime, installation_id: int, team: str, at: datetime, tick_reply: float | None
) -> None:
    """Make sure the team's light is evaluated again by `at`: its tick moves there, unless
    it is still to come and due by then (that evaluation schedules the next tick as it runs).
    Most deliveries find the tick where it should be, and write nothing."""
    scheduled = scheduled_moment(tick_reply)
    if scheduled is not None and rt.clock.now() < scheduled <= at:
        return
    tick = job_id("tick", installation_id, team)
    rt.schedule(at, jobs.refresh_team(installation_id, team), job_id=tick)
