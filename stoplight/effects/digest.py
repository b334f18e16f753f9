"""The daily Slack digest: one message a working day per team, in the team's channel.

Nothing polls: each team's next digest is a timed job for its next working-day moment, put in
place when the team's settings are read (`ensure_scheduled`), and each digest job schedules
the one after it. A job's id names the team and the local date, so scheduling it again only
moves it; the job claims its (team, date) in Redis (SET NX) before posting, so however many
workers or runs there are, one digest goes out a day.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from stoplight import metrics
from stoplight.clients.slack import Message, SlackError
from stoplight.config.repos import RepoConfigs
from stoplight.config.schema import TeamSettings
from stoplight.core.calendar import DailySchedule
from stoplight.effects import notices
from stoplight.effects.digest_blocks import DigestContext, Turnover, daily_digest
from stoplight.effects.plan import team_url
from stoplight.effects.runtime import EffectsRuntime
from stoplight.state.history import read_history
from stoplight.state.keys import job_id
from stoplight.state.replies import scheduled_moment
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import load_team_view
from stoplight.transport import jobs

log = logging.getLogger(__name__)

PULLS_READ = 15  # the waiting, held and stale PRs a digest names, each
# A claim outlives one post with its quick retries; a worker that dies holding it lets it lapse.
CLAIM_TTL = timedelta(minutes=2)
# The record of a posted digest outlives the day it names, whatever the timezone.
POSTED_TTL = timedelta(days=3)
PENDING = "pending"


def digest_job_id(
    installation_id: int, team: str, moment: datetime, schedule: DailySchedule
) -> str:
    return job_id("digest", installation_id, team, schedule.local_date(moment).isoformat())


def ensure_scheduled(
    rt: EffectsRuntime, installation_id: int, team: str, settings: TeamSettings
) -> None:
    """Make sure the team's next digest is scheduled for its next working-day moment. Reads
    one score when it is; writes only when the moment is new or has moved."""
    schedule = settings.digest
    if schedule is None or not rt.slack.can_update(settings.slack_channel):
        return
    moment = schedule.next_after(rt.clock.now())
    digest = digest_job_id(installation_id, team, moment, schedule)
    with rt.queue.pipeline(transaction=False) as pipe:
        rt.read_schedule(pipe, digest)
        (reply,) = pipe.execute()
    if scheduled_moment(reply) == moment:
        return
    rt.schedule(moment, jobs.send_digest(installation_id, team, moment.timestamp()), job_id=digest)
    log.info("team %s: daily digest scheduled for %s", team, f"{moment:%Y-%m-%d %H:%M} UTC")


def send_digest(rt: EffectsRuntime, installation_id: int, team: str, moment: datetime) -> None:
    """The digest due at `moment`, unless the team's settings no longer put one there or it
    was posted already; then the next one is scheduled."""
    settings = RepoConfigs(rt.redis, installation_id).team(team)
    schedule = settings.digest
    if schedule is None:
        log.info("team %s: digest of %s dropped, the team has none now", team, f"{moment:%F}")
        return
    ensure_scheduled(rt, installation_id, team, settings)
    if not _still_due(rt, team, schedule, moment) or not rt.slack.can_update(
        settings.slack_channel
    ):
        return
    day = schedule.local_date(moment)
    record = QueueStore(rt.redis, installation_id).keys.team(team).slack_digest(day.isoformat())
    if not rt.redis.set(record, PENDING, nx=True, px=CLAIM_TTL):
        _check_claim_later(rt, installation_id, team, moment, record)
        return
    message = _digest(rt, installation_id, team, settings, schedule, moment)
    if message is None:
        rt.redis.delete(record)
        return
    try:
        rt.slack.post(settings.slack_channel, message)
    except SlackError as error:
        rt.redis.delete(record)
        job = jobs.send_digest(installation_id, team, moment.timestamp())
        notices.retry_or_give_up(rt, error, job, installation_id, team, subject="digest")
        return
    rt.redis.set(record, "posted", ex=POSTED_TTL)
    metrics.SLACK_POSTS.inc(rt.redis, "digest")
    log.info("team %s: daily digest of %s posted", team, day)


def _still_due(rt: EffectsRuntime, team: str, schedule: DailySchedule, moment: datetime) -> bool:
    """Whether `moment` is still one of the team's digest moments, and the latest one come:
    a job left from an earlier configuration, or run after the next is due, sends nothing."""
    if schedule.moment_on(schedule.local_date(moment)) != moment:
        log.info("team %s: digest moment %s is no longer the team's", team, f"{moment:%F %R}")
        return False
    if rt.clock.now() >= schedule.next_after(moment):
        log.info("team %s: digest of %s dropped, the next one is due", team, f"{moment:%F}")
        return False
    return True


def _digest(
    rt: EffectsRuntime,
    installation_id: int,
    team: str,
    settings: TeamSettings,
    schedule: DailySchedule,
    moment: datetime,
) -> Message | None:
    """The digest as the team stands now; None for a team never seen."""
    now = rt.clock.now()
    view = load_team_view(rt.redis, installation_id, team, now, settings, shown=PULLS_READ)
    if view is None:
        return None
    turnover = _turnover(rt, installation_id, team, schedule, moment)
    url = team_url(rt.settings.base_url, installation_id, team)
    return daily_digest(view, DigestContext(turnover, settings.slack_users, url))


def _turnover(
    rt: EffectsRuntime, installation_id: int, team: str, schedule: DailySchedule, moment: datetime
) -> Turnover:
    day = schedule.local_date(moment)
    since, until = schedule.since_previous_working_day(day)
    # The history's bounds are inclusive: a PR that moved at midnight counts on that day only.
    history = read_history(
        rt.redis, installation_id, team, since, until - timedelta(milliseconds=1)
    )
    entered = list(dict.fromkeys(entry.pull for entry in history.entries))
    left = list(dict.fromkeys(exit.pull for exit in history.exits))
    store = QueueStore(rt.redis, installation_id)
    previous = schedule.previous_working_day(day)
    return Turnover(
        since_day=previous,
        yesterday=previous == day - timedelta(days=1),
        entered=len(entered),
        left=len(left),
        entered_pulls=tuple(store.pulls(entered[:PULLS_READ])),
        left_pulls=tuple(store.pulls(left[:PULLS_READ])),
    )


def _check_claim_later(
    rt: EffectsRuntime, installation_id: int, team: str, moment: datetime, record: str
) -> None:
    """Another run holds the claim. Should its worker die before posting, look again as the
    claim lapses."""
    if rt.redis.get(record) != PENDING.encode():
        return  # posted already
    lapse = max(rt.redis.pttl(record), 0)
    at = rt.clock.now() + timedelta(milliseconds=lapse) + timedelta(seconds=1)
    # Named by the moment it runs, so it never replaces its own record while it runs.
    again = job_id("digest-claim", installation_id, team, str(at.timestamp()))
    rt.schedule(at, jobs.send_digest(installation_id, team, moment.timestamp()), job_id=again)
