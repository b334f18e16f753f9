"""RQ entry points. Each is a thin wrapper that runs the pipeline with the process runtime.

Arguments are ids only: payloads and secrets never sit in a job stored in Redis.
"""

from __future__ import annotations

from rq import get_current_job

from stoplight import logs
from stoplight.core.clock import from_timestamp
from stoplight.effects import digest, notices
from stoplight.pipeline import (
    claims,
    fanout,
    heal,
    lights,
    merge_groups,
    redeliver,
    runtime,
    slack_commands,
    sync,
    worker,
)
from stoplight.pipeline.context import InstallationContext


def process_delivery(delivery_id: str, installation_id: int) -> None:
    job = get_current_job()
    assert job is not None, "runs as an RQ job"
    rt = runtime.current()
    rt.lanes.leave(installation_id, delivery_id)
    with logs.bound(delivery=delivery_id, installation=installation_id):
        worker.apply_handed_over(rt, delivery_id, installation_id, job.id)


def refresh_team(installation_id: int, team: str) -> None:
    with logs.bound(installation=installation_id, team=team):
        lights.refresh_team(InstallationContext.of(runtime.current(), installation_id), team)


def apply_effects(installation_id: int, team: str) -> None:
    with logs.bound(installation=installation_id, team=team):
        fanout.apply_effects(InstallationContext.of(runtime.current(), installation_id), team)


def post_merge_group_status(installation_id: int, repo: str, sha: str) -> None:
    with logs.bound(installation=installation_id, repo=repo):
        context = InstallationContext.of(runtime.current(), installation_id)
        merge_groups.post_merge_group_status(context, repo, sha)


def send_light_notice(
    installation_id: int,
    team: str,
    previous_level: int,
    previous_since: float,
    level: int,
    since: float,
) -> None:
    change = notices.LightChange.from_job_args(previous_level, previous_since, level, since)
    notices.send_notice(runtime.current(), installation_id, team, change)


def update_red_notice(installation_id: int, team: str) -> None:
    notices.update_red_notice(runtime.current(), installation_id, team)


def send_digest(installation_id: int, team: str, moment_timestamp: float) -> None:
    with logs.bound(installation=installation_id, team=team):
        digest.send_digest(
            runtime.current(), installation_id, team, from_timestamp(moment_timestamp)
        )


def update_claimed_notice(installation_id: int, team: str) -> None:
    notices.update_claimed_notice(runtime.current(), installation_id, team)


def answer_slack_click(click_id: str, installation_id: int, pull_key: str) -> None:
    with logs.bound(installation=installation_id):
        claims.answer_slack_click(runtime.current(), click_id, installation_id, pull_key)


def answer_slack_command(command_id: str) -> None:
    slack_commands.answer_slack_command(runtime.current(), command_id)


def sync_installation(installation_id: int) -> None:
    sync.sync_installation(runtime.current(), installation_id)


def scheduled_sync() -> None:
    rt = runtime.current()
    if sync.sync_all(rt) is not None:  # the run that skipped leaves the schedule to the other
        sync.schedule_next_sync(rt)


def redeliver_since(since_timestamp: float) -> None:
    redeliver.redeliver_since(runtime.current(), from_timestamp(since_timestamp))


def heal_lost_state(since_timestamp: float | None) -> None:
    since = from_timestamp(since_timestamp) if since_timestamp is not None else None
    heal.heal(runtime.current(), since)
