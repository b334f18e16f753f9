"""The light stage: a team's light re-evaluated from its queue and stored, its next
evaluation scheduled; then handed to the fan-out stage (fanout.py) for people to see."""

from __future__ import annotations

import logging
from dataclasses import replace
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
from stoplight.effects import digest
from stoplight.pipeline.context import InstallationContext
from stoplight.pipeline.fanout import fan_out, mark_effects_stale
from stoplight.pipeline.runtime import Runtime
from stoplight.state.keys import job_id
from stoplight.state.replies import scheduled_moment
from stoplight.state.review_queue import LightUpdate, QueueStore, TeamRead
from stoplight.transport import jobs

log = logging.getLogger(__name__)


def refresh_team(
    ctx: InstallationContext,
    team: str,
    settings: TeamSettings | None = None,
    read: TeamRead | None = None,
) -> Verdict:
    """Re-evaluate the team's light now and store it (this stage), then fan it out (fanout.py).

    `settings`, `read`: the team's settings and state as a change just left them, if one did.
    """
    if settings is None:  # read here, not from a change: the team's digest may be new or moved
        settings = ctx.team_settings(team)
        digest.ensure_scheduled(ctx.runtime, ctx.installation_id, team, settings)
    update, verdict = evaluate_light(ctx, team, settings, read)
    rt, installation_id = ctx.runtime, ctx.installation_id
    tick = job_id("tick", installation_id, team)
    with rt.queue.pipeline(transaction=False) as pipe:  # one round trip for both stages
        mark_effects_stale(pipe, installation_id, team)
        rt.read_schedule(pipe, tick)
        _, effects_queued, scheduled = pipe.execute()
    if verdict.next_change_at is not None:
        _evaluate_again_by(rt, installation_id, team, verdict.next_change_at, scheduled)
    fan_out(ctx, team, update.previous, update.state, effects_queued)
    return verdict


def evaluate_light(
    ctx: InstallationContext, team: str, settings: TeamSettings, read: TeamRead | None
) -> tuple[LightUpdate, Verdict]:
    """The team's light evaluated from its queue and stored; PRs past `stale_after` leave the
    queue first, and held PRs the new light lets in enter it (the light evaluated again)."""
    store, now, policy = ctx.store, ctx.clock.now(), settings.policy
    if _sweep_stale(store, team, policy, now, read):
        read = None  # the measures changed under it
    verdicts: list[Verdict] = []

    def decide(measures: Measures, previous: LightState | None) -> LightState:
        verdicts.append(evaluate(measures, policy, previous, now))
        return verdicts[-1].state

    update = store.update_light(team, decide, read)
    if update.state.level < Level.RED and update.held:
        admitted = store.admit_held(team, policy, settings.rules, now)
        if admitted:
            log.info("team %s: admitted %s from the held lane", team, [p.key for p in admitted])
            update = replace(update, state=store.update_light(team, decide).state)
    verdict = verdicts[-1]
    previous, state = update.previous, update.state
    if previous is None or previous.level != state.level:
        log.info(
            "team %s light %s -> %s (%s)",
            team,
            previous.level.label if previous else "none",
            state.level.label,
            "; ".join(verdict.reasons) or "queue within limits",
        )
    return update, verdict


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
