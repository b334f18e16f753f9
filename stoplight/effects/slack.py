"""Slack notices of a team's light: exactly one per change, and a red one kept up to date.

The pipeline calls `on_light` after each evaluation; it only enqueues jobs, so Slack never
delays the handler or the GitHub statuses. The jobs claim each change in Redis (SET NX) before
posting, so however many workers, retries or redeliveries run, one message goes out per change.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stoplight import keys, slack
from stoplight.clock import from_timestamp
from stoplight.effects.github import team_url
from stoplight.effects.slack_blocks import NoticeContext, light_notice, red_fingerprint
from stoplight.light import Level, LightState, Policy
from stoplight.queue import QueueStore
from stoplight.runtime import Runtime, job_id
from stoplight.slack import Posted, SlackClient, SlackError, SlackRateLimited, SlackRejected
from stoplight.views import TeamView, team_view

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
}


@dataclass(frozen=True)
class SlackTarget:
    channel: str | None  # None: the incoming webhook, if there is one
    users: Mapping[str, str] = field(default_factory=dict)  # GitHub login -> Slack member id


def slack_target(rt: Runtime, installation_id: int, team: str) -> SlackTarget:
    """Where the team's notices go. Teams name no channel yet, so the webhook takes them all."""
    return SlackTarget(channel=None, users={})


@dataclass(frozen=True)
class LightChange:
    previous: LightState
    current: LightState

    @property
    def identity(self) -> str:
        return f"{int(self.current.level)}-{self.current.since.timestamp()}"

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
    rt: Runtime, installation_id: int, team: str, previous: LightState | None, state: LightState
) -> None:
    """Enqueue a notice when the light changed, or an update of the red notice while red."""
    if slack.mode(rt.settings) is None or previous is None:
        return  # no Slack, or the team's first light: nothing to announce
    if previous.level != state.level:
        change = LightChange(previous, state)
        rt.enqueue("stoplight.jobs.send_light_notice", installation_id, team, *change.job_args())
    elif state.level is Level.RED and slack.mode(rt.settings) == "bot":
        rt.enqueue("stoplight.jobs.update_red_notice", installation_id, team)


def send_notice(
    rt: Runtime, installation_id: int, team: str, change: LightChange, policy: Policy, held: int = 0
) -> None:
    """Post the notice of `change` unless it was posted already or the light has moved on."""
    store = QueueStore(rt.redis, installation_id)
    if not _still_current(store, team, change.current):
        log.info("team %s: notice of %s dropped, the light changed again", team, change.identity)
        return
    record = store.keys.team(team).slack_notice(change.identity)
    if not rt.redis.set(record, PENDING, nx=True, px=CLAIM_TTL):
        _check_claim_later(rt, installation_id, team, change, record)
        return
    target = slack_target(rt, installation_id, team)
    view = _view(rt, store, team, policy)
    context = NoticeContext(
        change.previous, held, target.users, _team_url(rt, installation_id, team)
    )
    try:
        posted = SlackClient(rt.settings).post(target.channel, light_notice(view, context))
    except SlackError as error:
        rt.redis.delete(record)
        retry_at = _give_up_or_wait(rt, error, f"team {team} notice")
        if retry_at is not None:
            args = (installation_id, team, *change.job_args())
            rt.schedule(
                retry_at,
                "stoplight.jobs.send_light_notice",
                *args,
                job_id=job_id(
                    "slack-notice",
                    installation_id,
                    team,
                    change.identity,
                    str(retry_at.timestamp()),
                ),
            )
        return
    _remember(rt, record, posted, red_fingerprint(view, held))
    log.info("team %s: Slack notice of %s posted", team, change.current.level.label)
    if posted.ts is not None and change.current.level is Level.RED:
        # The queue may have moved while this post was on its way.
        rt.enqueue("stoplight.jobs.update_red_notice", installation_id, team)


def update_red_notice(
    rt: Runtime, installation_id: int, team: str, policy: Policy, held: int = 0
) -> None:
    """Edit the team's red notice in place when the PRs or counts it shows have changed."""
    store = QueueStore(rt.redis, installation_id)
    light = store.light(team)
    if light is None or light.level is not Level.RED:
        return
    record = store.keys.team(team).slack_notice(LightChange(light, light).identity)
    raw = rt.redis.get(record)
    if raw is None or raw.decode() == PENDING:
        return  # not posted yet: the post will show the queue as it is then
    sent = json.loads(raw)
    view = _view(rt, store, team, policy)
    fingerprint = red_fingerprint(view, held)
    if sent["ts"] is None or sent["fingerprint"] == fingerprint:
        return
    target = slack_target(rt, installation_id, team)
    previous = LightState(Level.YELLOW, light.since)  # only the red body is redrawn
    context = NoticeContext(previous, held, target.users, _team_url(rt, installation_id, team))
    posted = Posted(sent["channel"], sent["ts"])
    try:
        SlackClient(rt.settings).update(posted, light_notice(view, context))
    except SlackError as error:
        retry_at = _give_up_or_wait(rt, error, f"team {team} notice update")
        if retry_at is not None:
            rt.schedule(
                retry_at,
                "stoplight.jobs.update_red_notice",
                installation_id,
                team,
                job_id=job_id("slack-update", installation_id, team, str(retry_at.timestamp())),
            )
        return
    _remember(rt, record, posted, fingerprint)
    log.info("team %s: red Slack notice updated", team)


def _still_current(store: QueueStore, team: str, state: LightState) -> bool:
    light = store.light(team)
    return light is not None and (light.level, light.since) == (state.level, state.since)


def _check_claim_later(
    rt: Runtime, installation_id: int, team: str, change: LightChange, record: str
) -> None:
    """Another worker holds the claim. Should it die before posting, look again as it lapses."""
    if rt.redis.get(record) != PENDING.encode():
        return  # posted already
    lapse = max(rt.redis.pttl(record), 0)
    at = rt.clock.now() + timedelta(milliseconds=lapse) + timedelta(seconds=1)
    rt.schedule(
        at,
        "stoplight.jobs.send_light_notice",
        installation_id,
        team,
        *change.job_args(),
        job_id=job_id("slack-claim", installation_id, team, change.identity, str(at.timestamp())),
    )


def _give_up_or_wait(rt: Runtime, error: SlackError, what: str) -> datetime | None:
    """When to try again: after Slack's Retry-After, or never; transient errors go to RQ."""
    if isinstance(error, SlackRateLimited):
        log.info("%s: %s, trying again then", what, error)
        return rt.clock.now() + timedelta(seconds=error.retry_after)
    if isinstance(error, SlackRejected):
        _report_once(rt, error)
        return None
    log.warning("%s: %s; the job will retry", what, error)
    raise error


def _report_once(rt: Runtime, error: SlackRejected) -> None:
    problem = hashlib.blake2b(f"{error.reason}\x1f{error.where}".encode(), digest_size=8)
    if rt.redis.set(keys.slack_reported(problem.hexdigest()), 1, nx=True, ex=REPORT_TTL):
        advice = ADVICE.get(error.reason, "check the Slack settings")
        log.error("%s: %s. Notices to it are not sent until this is fixed.", error, advice)


def _remember(rt: Runtime, record: str, posted: Posted, fingerprint: str) -> None:
    sent = {"channel": posted.channel, "ts": posted.ts, "fingerprint": fingerprint}
    rt.redis.set(record, json.dumps(sent), ex=NOTICE_TTL)


def _view(rt: Runtime, store: QueueStore, team: str, policy: Policy) -> TeamView:
    name = store.teams().get(team, team)
    return team_view(store, team, name, policy, rt.clock.now())


def _team_url(rt: Runtime, installation_id: int, team: str) -> str:
    return team_url(rt.settings.base_url, installation_id, team)
