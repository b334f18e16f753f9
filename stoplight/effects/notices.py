"""Slack notices of a team's light: exactly one per change, and a red one kept up to date.

The pipeline calls `on_light` after each evaluation; it only enqueues jobs, so Slack never
delays the handler or the GitHub statuses. The jobs claim each change in Redis (SET NX) before
posting, so however many workers, retries or redeliveries run, one message goes out per change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from stoplight import metrics
from stoplight.clients import slack
from stoplight.clients.slack import Posted, SlackError, SlackRateLimited, SlackRejected
from stoplight.config.repos import RepoConfigs
from stoplight.config.schema import TeamSettings
from stoplight.core.clock import from_timestamp
from stoplight.core.light import Level, LightState
from stoplight.effects.notice_blocks import NoticeContext, light_notice, red_fingerprint
from stoplight.effects.plan import team_url
from stoplight.effects.runtime import EffectsRuntime
from stoplight.state import keys
from stoplight.state.keys import job_id
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import TeamView, load_team_view
from stoplight.transport import jobs
from stoplight.transport.jobs import Job

log = logging.getLogger(__name__)

# A claim outlives one post with its quick retries; a worker that dies holding it lets it lapse.
CLAIM_TTL = timedelta(minutes=2)
# The record of a posted notice outlives any red spell it may have to update.
NOTICE_TTL = timedelta(days=30)
# A problem the operator must fix is logged once, and again a day later if it is still there.
REPORT_TTL = timedelta(days=1)
PENDING = "pending"
ADVICE = {
    "invalid_auth": "check SLACK_BOT_TOKEN",
    "not_authed": "check SLACK_BOT_TOKEN",
    "account_inactive": "the bot's Slack account is inactive: reinstall the Slack app",
    "token_revoked": "SLACK_BOT_TOKEN was revoked: reinstall the Slack app",
    "channel_not_found": "check the team's slack_channel",
    "not_in_channel": "invite the bot to the team's Slack channel",
    "is_archived": "the team's Slack channel is archived",
    "no_service": "check SLACK_WEBHOOK_URL",
    "invalid_token": "check SLACK_WEBHOOK_URL",
    "no_active_hooks": "the incoming webhook is turned off: check SLACK_WEBHOOK_URL",
    "channel_is_archived": "the incoming webhook's channel is archived",
}


def light_identity(state: LightState) -> str:
    """Names one spell of a light: its level and the moment it began."""
    return f"{int(state.level)}-{state.since.timestamp()}"


@dataclass(frozen=True)
class LightChange:
    previous: LightState
    current: LightState

    @property
    def identity(self) -> str:
        return light_identity(self.current)

    def job_args(self) -> tuple[int, float, int, float]:
        return (
            int(self.previous.level),
            self.previous.since.timestamp(),
            int(self.current.level),
            self.current.since.timestamp(),
        )

    @classmethod
    def from_job_args(
        cls, previous_level: int, previous_since: float, level: int, since: float
    ) -> LightChange:
        return cls(
            LightState(Level(previous_level), from_timestamp(previous_since)),
            LightState(Level(level), from_timestamp(since)),
        )


def on_light(
    rt: EffectsRuntime,
    installation_id: int,
    team: str,
    previous: LightState | None,
    state: LightState,
) -> None:
    """Enqueue a notice when the light changed, or an update of the red notice while red."""
    if slack.mode(rt.settings) is None or previous is None:
        return  # no Slack, or the team's first light: nothing to announce
    if previous.level != state.level:
        change = LightChange(previous, state)
        rt.enqueue(jobs.send_light_notice(installation_id, team, *change.job_args()))
    elif state.level is Level.RED and slack.mode(rt.settings) == "bot":
        rt.enqueue(jobs.update_red_notice(installation_id, team))


def send_notice(rt: EffectsRuntime, installation_id: int, team: str, change: LightChange) -> None:
    """Post the notice of `change` unless it was posted already or the light has moved on."""
    store = QueueStore(rt.redis, installation_id)
    if not _still_current(store, team, change.current):
        log.info("team %s: notice of %s dropped, the light changed again", team, change.identity)
        return
    # The team's channel, or (None) the incoming webhook if there is one.
    settings = _team_settings(rt, installation_id, team)
    if not rt.slack.can_post(settings.slack_channel):
        log.debug("team %s: no Slack channel and no webhook, no notice", team)
        return
    record = store.keys.team(team).slack_notice(change.identity)
    if not rt.redis.set(record, PENDING, nx=True, px=CLAIM_TTL):
        _check_claim_later(rt, installation_id, team, change, record)
        return
    view = _view(rt, installation_id, team, settings)
    url = _team_url(rt, installation_id, team)
    context = NoticeContext(change.previous, settings.slack_users, url, _buttons(rt))
    try:
        posted = rt.slack.post(settings.slack_channel, light_notice(view, context))
    except SlackError as error:
        rt.redis.delete(record)
        job = jobs.send_light_notice(installation_id, team, *change.job_args())
        retry_or_give_up(rt, error, job, installation_id, team, subject=change.identity)
        return
    metrics.SLACK_POSTS.inc(rt.redis, "posted")
    _remember(rt, record, Sent(posted, red_fingerprint(view), change.previous))
    log.info("team %s: Slack notice of %s posted", team, change.current.level.label)
    if posted.ts is not None and change.current.level is Level.RED:
        # The queue may have moved while this post was on its way.
        rt.enqueue(jobs.update_red_notice(installation_id, team))


def update_red_notice(rt: EffectsRuntime, installation_id: int, team: str) -> None:
    """Edit the team's red notice in place when the PRs or counts it shows have changed."""
    job = jobs.update_red_notice(installation_id, team)
    _update_notice(rt, installation_id, team, job, {Level.RED})


def update_claimed_notice(rt: EffectsRuntime, installation_id: int, team: str) -> None:
    """Edit the team's yellow or red notice in place after a claim from its buttons, so the
    channel sees who took what."""
    job = jobs.update_claimed_notice(installation_id, team)
    _update_notice(rt, installation_id, team, job, {Level.YELLOW, Level.RED})


def _update_notice(
    rt: EffectsRuntime, installation_id: int, team: str, job: Job, levels: set[Level]
) -> None:
    """Edit the notice of the team's light, if it is at one of `levels`; `job` retries it."""
    store = QueueStore(rt.redis, installation_id)
    light = store.light(team)
    if light is None or light.level not in levels:
        return
    record = store.keys.team(team).slack_notice(light_identity(light))
    sent = _recall(rt, record)
    if sent is None or sent.posted.ts is None:
        return  # not posted yet (the post will show the queue as it is then), or not editable
    settings = _team_settings(rt, installation_id, team)
    view = _view(rt, installation_id, team, settings)
    fingerprint = red_fingerprint(view)
    if sent.fingerprint == fingerprint:
        return
    url = _team_url(rt, installation_id, team)
    context = NoticeContext(sent.previous, settings.slack_users, url, _buttons(rt))
    try:
        rt.slack.update(sent.posted, light_notice(view, context))
    except SlackError as error:
        retry_or_give_up(rt, error, job, installation_id, team, subject="update")
        return
    metrics.SLACK_POSTS.inc(rt.redis, "updated")
    _remember(rt, record, Sent(sent.posted, fingerprint, sent.previous))
    log.info("team %s: %s Slack notice updated", team, light.level.label.lower())


@dataclass(frozen=True)
class Sent:
    """A posted notice, as remembered: where it is, what it shows, the light it replaced."""

    posted: Posted
    fingerprint: str
    previous: LightState


def _remember(rt: EffectsRuntime, record: str, sent: Sent) -> None:
    value = {
        "channel": sent.posted.channel,
        "ts": sent.posted.ts,
        "fingerprint": sent.fingerprint,
        "previous": [int(sent.previous.level), sent.previous.since.timestamp()],
    }
    rt.redis.set(record, json.dumps(value), ex=NOTICE_TTL)


def _recall(rt: EffectsRuntime, record: str) -> Sent | None:
    raw = rt.redis.get(record)
    if raw is None or raw == PENDING.encode():
        return None
    value = json.loads(raw)
    level, since = value["previous"]
    previous = LightState(Level(level), from_timestamp(since))
    return Sent(Posted(value["channel"], value["ts"]), value["fingerprint"], previous)


def _still_current(store: QueueStore, team: str, state: LightState) -> bool:
    light = store.light(team)
    return light is not None and (light.level, light.since) == (state.level, state.since)


def _check_claim_later(
    rt: EffectsRuntime, installation_id: int, team: str, change: LightChange, record: str
) -> None:
    """Another worker holds the claim. Should it die before posting, look again as it lapses."""
    if rt.redis.get(record) != PENDING.encode():
        return  # posted already
    lapse = max(rt.redis.pttl(record), 0)
    at = rt.clock.now() + timedelta(milliseconds=lapse) + timedelta(seconds=1)
    rt.schedule(
        at,
        jobs.send_light_notice(installation_id, team, *change.job_args()),
        job_id=job_id("slack-claim", installation_id, team, change.identity, str(at.timestamp())),
    )


def retry_or_give_up(
    rt: EffectsRuntime,
    error: SlackError,
    job: Job,
    installation_id: int,
    team: str,
    *,
    subject: str,
) -> None:
    """Wait as long as Slack asks, give up on what only the operator can fix, else let RQ retry.

    A 429 reschedules the job rather than sleep in a worker; its id names the moment, so a
    job that is itself such a retry never replaces its own record while it runs.
    """
    metrics.SLACK_POSTS.inc(rt.redis, type(error).__name__.removeprefix("Slack").lower())
    if isinstance(error, SlackRateLimited):
        at = rt.clock.now() + timedelta(seconds=error.retry_after)
        log.info("team %s: %s; trying again at %s", team, error, f"{at:%H:%M:%S}")
        retry_id = job_id("slack-retry", installation_id, team, subject, str(at.timestamp()))
        rt.schedule(at, job, job_id=retry_id)
        return
    if isinstance(error, SlackRejected):
        _report_once(rt, error)
        return
    log.warning("team %s: %s; the job will retry", team, error)
    raise error


def _report_once(rt: EffectsRuntime, error: SlackRejected) -> None:
    problem = hashlib.blake2b(f"{error.reason}\x1f{error.where}".encode(), digest_size=8)
    if rt.redis.set(keys.slack_reported(problem.hexdigest()), 1, nx=True, ex=REPORT_TTL):
        advice = ADVICE.get(error.reason, "check the Slack settings")
        log.error("%s: %s. Notices to it are not sent until this is fixed.", error, advice)


def _team_settings(rt: EffectsRuntime, installation_id: int, team: str) -> TeamSettings:
    return RepoConfigs(rt.redis, installation_id).team(team)


def _view(rt: EffectsRuntime, installation_id: int, team: str, settings: TeamSettings) -> TeamView:
    view = load_team_view(rt.redis, installation_id, team, rt.clock.now(), settings)
    assert view is not None, "a team with a light has been seen"
    return view


def _buttons(rt: EffectsRuntime) -> bool:
    """Buttons only when Slack's clicks reach the app: verified requests to /slack/actions,
    or Socket Mode."""
    settings = rt.settings
    return settings.slack_signing_secret is not None or settings.slack_app_token is not None


def _team_url(rt: EffectsRuntime, installation_id: int, team: str) -> str:
    return team_url(rt.settings.base_url, installation_id, team)
