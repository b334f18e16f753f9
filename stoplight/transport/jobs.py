"""The RQ jobs the pipeline sets off, each named by a typed function, and how they are queued.

A job is stored in Redis by the path of its entry point in `stoplight.jobs`, with its
arguments: the path is the one thing an upgrade must never change, as jobs queued before it
run after it. The functions below are the only place that spells a path out, so the
pipeline names a job and its arguments as a call mypy checks, e.g.
`rt.enqueue(jobs.refresh_team(installation_id, team))`; `tests/test_job_paths.py` checks that
each path resolves to an entry point taking these parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from redis.client import Pipeline
from rq import Queue, Retry

ENTRY_POINTS = "stoplight.jobs"

# Job-level retries for failures the client's quick retries could not absorb, and for jobs
# whose worker died (RQ retries an abandoned job only if it has retries left). Spaced out to
# five minutes, they outlast about three hours of GitHub or Slack failing; a job that fails
# longer ends in RQ's failed registry, and the scheduled sync restores what it missed.
# RQ takes the intervals from the end of the list as retries run out, so it has one for each.
_RETRY_INTERVALS = [2, 10, 30, 60, 120] + [300] * 35
JOB_RETRY = Retry(max=len(_RETRY_INTERVALS), interval=_RETRY_INTERVALS)
# Every job is short (an effects pass hands over to a fresh job well before this); a short
# timeout lets a dead worker's job be found and retried within a minute.
JOB_TIMEOUT_SECONDS = 25
# Redelivery is the long exception: after a long outage it lists and asks for thousands of
# deliveries, one request each. Cut short, each retry would start over from the listing.
REDELIVER_TIMEOUT_SECONDS = 30 * 60


@dataclass(frozen=True)
class Job:
    """One call of an entry point of `stoplight.jobs`, as RQ stores it: ids only as arguments,
    never payloads or secrets."""

    name: str
    args: tuple[object, ...]

    @property
    def path(self) -> str:
        return f"{ENTRY_POINTS}.{self.name}"

    @property
    def description(self) -> str:
        # An explicit description spares RQ a repr() of the arguments on every enqueue.
        return f"{self.name}({', '.join(str(arg) for arg in self.args)})"


def process_delivery(delivery_id: str, installation_id: int) -> Job:
    return Job("process_delivery", (delivery_id, installation_id))


def refresh_team(installation_id: int, team: str) -> Job:
    return Job("refresh_team", (installation_id, team))


def apply_effects(installation_id: int, team: str) -> Job:
    return Job("apply_effects", (installation_id, team))


def post_merge_group_status(installation_id: int, repo: str, sha: str) -> Job:
    return Job("post_merge_group_status", (installation_id, repo, sha))


def send_light_notice(
    installation_id: int,
    team: str,
    previous_level: int,
    previous_since: float,
    level: int,
    since: float,
) -> Job:
    args = (installation_id, team, previous_level, previous_since, level, since)
    return Job("send_light_notice", args)


def update_red_notice(installation_id: int, team: str) -> Job:
    return Job("update_red_notice", (installation_id, team))


def send_digest(installation_id: int, team: str, moment_timestamp: float) -> Job:
    return Job("send_digest", (installation_id, team, moment_timestamp))


def update_claimed_notice(installation_id: int, team: str) -> Job:
    return Job("update_claimed_notice", (installation_id, team))


def answer_slack_click(click_id: str, installation_id: int, pull_key: str) -> Job:
    return Job("answer_slack_click", (click_id, installation_id, pull_key))


def answer_slack_command(command_id: str) -> Job:
    return Job("answer_slack_command", (command_id,))


def sync_installation(installation_id: int) -> Job:
    return Job("sync_installation", (installation_id,))


def scheduled_sync() -> Job:
    return Job("scheduled_sync", ())


def redeliver_since(since_timestamp: float) -> Job:
    return Job("redeliver_since", (since_timestamp,))


def heal_lost_state(since_timestamp: float | None) -> Job:
    return Job("heal_lost_state", (since_timestamp,))


def enqueue(
    lane: Queue,
    job: Job,
    *,
    job_id: str | None = None,
    description: str | None = None,
    timeout: int = JOB_TIMEOUT_SECONDS,
    pipeline: Pipeline | None = None,
) -> None:
    """Run `job` soon in `lane`, with retries; with `pipeline`, as part of the caller's
    transaction (RQ's enqueue on a pipeline opens it, so it goes first)."""
    lane.enqueue_call(
        job.path,
        args=job.args,
        job_id=job_id,
        description=description or job.description,
        retry=JOB_RETRY,
        timeout=timeout,
        pipeline=pipeline,
    )


def schedule_at(
    lane: Queue, at: datetime, job: Job, *, job_id: str, timeout: int = JOB_TIMEOUT_SECONDS
) -> None:
    """Run `job` at `at`; scheduling the same job id again moves it instead of adding one."""
    lane.enqueue_at(
        at,
        job.path,
        *job.args,
        job_id=job_id,
        description=job.description,
        retry=JOB_RETRY,
        job_timeout=timeout,
    )
