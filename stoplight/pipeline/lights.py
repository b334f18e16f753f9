"""A team's light: re-evaluated from its queue, stored, and set going to where people see it."""

from __future__ import annotations

import logging

from stoplight.core.light import Level, LightState, Measures, Policy, Verdict, evaluate
from stoplight.effects import notices
from stoplight.pipeline.configs import team_settings
from stoplight.pipeline.fanout import request_effects
from stoplight.pipeline.runtime import Runtime, job_id
from stoplight.state.review_queue import QueueStore

log = logging.getLogger(__name__)


def refresh_team(
    rt: Runtime, installation_id: int, team: str, policy: Policy | None = None
) -> Verdict:
    """Re-evaluate the team's light now, store it, and set the effects and next tick going.

    `policy`: the team's, when the caller has just read its settings.
    """
    store = QueueStore(rt.redis, installation_id)
    now = rt.clock.now()
    if policy is None:
        policy = team_settings(rt, installation_id, team).policy
    verdicts: list[Verdict] = []

    def decide(measures: Measures, previous: LightState | None) -> LightState:
        verdicts.append(evaluate(measures, policy, previous, now))
        return verdicts[-1].state

    update = store.update_light(team, decide)
    previous, state = update.previous, update.state
    if state.level < Level.RED and update.held:
        admitted = store.admit_held(team, policy, now)
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
    if verdict.next_change_at is not None:
        rt.schedule(
            verdict.next_change_at,
            "stoplight.jobs.refresh_team",
            installation_id,
            team,
            job_id=job_id("tick", installation_id, team),
        )
    request_effects(rt, installation_id, team)
    notices.on_light(rt, installation_id, team, previous, state)
    return verdict
