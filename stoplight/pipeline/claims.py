""" "I'll review" clicks from Slack: the process Slack reached (the web app over HTTP, a worker
over Socket Mode) records one and queues its job; the job claims the PR, asks GitHub for the
review and edits the notice.

A click's job may run more than once (a GitHub 5xx, a worker killed): the click's record keeps
how far it got, so a retry neither toggles the claim back nor asks GitHub twice. The record
holds Slack's `response_url` and so lives in Redis, never among the job's arguments, and only
as long as Slack honours that URL.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from github import GithubException
from redis.exceptions import WatchError

from stoplight.clients import slack
from stoplight.clients.github import WriteDeferred
from stoplight.clients.slack import SlackError
from stoplight.config.schema import TeamSettings
from stoplight.core.light import Level
from stoplight.core.pulls import Phase, PullRecord
from stoplight.effects.notice_blocks import CLAIM_ACTION
from stoplight.pipeline.context import InstallationContext
from stoplight.pipeline.fanout import request_effects
from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.slack_people import unknown_person
from stoplight.state import keys
from stoplight.state.claims import ClaimResult, ClaimStore, Outcome
from stoplight.state.keys import job_id
from stoplight.state.replies import text
from stoplight.state.slack_links import SlackPerson, known_login
from stoplight.transport import jobs
from stoplight.transport.lanes import Lanes

log = logging.getLogger(__name__)

# Slack accepts answers on a click's response_url for 30 minutes.
CLICK_TTL = timedelta(minutes=30)
# GitHub's answer when it cannot request this person: the PR's author, or not a collaborator.
UNPROCESSABLE = 422


@dataclass(frozen=True)
class Click:
    """Someone pressed "I'll review" on a PR of a notice."""

    installation_id: int
    pull_key: str
    slack_user: str  # Slack member id
    response_url: str
    workspace: str = ""  # Slack team id: with the member id, whom a linked login belongs to


def accept_interaction(lanes: Lanes, payload: object, interaction_id: str) -> bool:
    """Queue the job of an interaction Slack sent (over HTTP or Socket Mode, once its
    sender is known to be Slack), if it is an "I'll review" click. False for any other
    interaction, or a click of this id already queued."""
    click = click_of(payload)
    return click is not None and queue_click(lanes, click, interaction_id)


def click_of(payload: object) -> Click | None:
    """The "I'll review" click in a `block_actions` payload; None for any other interaction.
    ValueError for a click that does not say who clicked what."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    actions = [a for a in payload.get("actions") or [] if isinstance(a, dict)]
    action = next((a for a in actions if a.get("action_id") == CLAIM_ACTION), None)
    if action is None:
        return None
    installation, _, pull_key = str(action.get("value", "")).partition("|")
    user = payload["user"].get("id") if isinstance(payload.get("user"), dict) else None
    response_url = payload.get("response_url")
    if not installation.isdigit() or not pull_key or not user or not response_url:
        raise ValueError("the click names no installation, PR, user or response_url")
    return Click(int(installation), pull_key, str(user), str(response_url), _workspace(payload))


def _workspace(payload: dict[str, Any]) -> str:
    """The clicker's Slack team id: the payload's team, or their own (`user.team_id`)."""
    team, user = payload.get("team"), payload.get("user")
    found = team.get("id") if isinstance(team, dict) else None
    if not found and isinstance(user, dict):
        found = user.get("team_id")
    return str(found or "")


def queue_click(lanes: Lanes, click: Click, click_id: str) -> bool:
    """Record the click and queue its job, in one transaction: the answer to Slack waits for
    nothing else. False, and nothing queued, when a click of this id is recorded already:
    Slack sent the same one again, and two jobs of one click could toggle its claim twice."""
    record = keys.slack_action(click_id)
    with lanes.redis.pipeline() as pipe:
        pipe.watch(record)
        if pipe.exists(record):
            return False
        jobs.enqueue(
            lanes.shared,
            jobs.answer_slack_click(click_id, click.installation_id, click.pull_key),
            job_id=f"slack-click-{click_id}",
            description=f"answer_slack_click({click.installation_id}, {click.pull_key})",
            pipeline=pipe,
        )  # first: RQ's enqueue on a pipeline opens its transaction
        pipe.hset(
            record,
            mapping={
                "user": click.slack_user,
                "workspace": click.workspace,
                "response_url": click.response_url,
            },
        )
        pipe.expire(record, CLICK_TTL)
        try:
            pipe.execute()
        except WatchError:  # the same click, recorded meanwhile by another process
            return False
    return True


def answer_slack_click(rt: Runtime, click_id: str, installation_id: int, pull_key: str) -> None:
    record_key = keys.slack_action(click_id)
    stored = {text(k): text(v) for k, v in rt.queue.hgetall(record_key).items()}
    if not stored:
        log.info("Slack click %s: its record lapsed before its job ran", click_id)
        return
    reply = stored["response_url"]
    ctx = InstallationContext.of(rt, installation_id)
    pull = ctx.store.pull(pull_key)
    if pull is None or pull.phase is Phase.CLOSED:
        _tell(reply, "Stoplight no longer follows that PR.")
        return
    settings = ctx.team_settings(pull.team)
    # A record queued before clicks named their workspace links nobody: slack_users alone.
    person = SlackPerson(stored.get("workspace", ""), stored["user"])
    login = known_login(rt.redis, settings.slack_users, person)
    if login is None:
        _tell(reply, unknown_person(rt.redis, rt.settings, person, settings.name))
        return
    result = _claim_once(rt, record_key, stored, installation_id, pull, login, settings)
    if result.outcome is Outcome.TAKEN:
        _tell(reply, f"{_name(pull)} is claimed by {result.holder} already.")
        return
    if result.outcome is Outcome.AT_LIMIT:
        limit = settings.claims.max_per_reviewer
        _tell(
            reply, f"You hold {limit} claims already: review one, or click it again to let it go."
        )
        return
    if result.outcome is Outcome.CLAIMED and "requested" not in stored:
        if not _request_review(ctx, click_id, pull, login, reply):
            return
        rt.queue.hset(record_key, "requested", 1)
    _show_claims(ctx, pull.team)


def _claim_once(
    rt: Runtime,
    record_key: str,
    stored: dict[str, str],
    installation_id: int,
    pull: PullRecord,
    login: str,
    settings: TeamSettings,
) -> ClaimResult:
    """The click's claim (or release), made once however often its job runs."""
    if "result" in stored:
        done = json.loads(stored["result"])
        return ClaimResult(Outcome(done["outcome"]), done["holder"])
    claims = ClaimStore(rt.redis, installation_id)
    result = claims.claim(pull.key, login, rt.clock.now(), settings.claims)
    value = json.dumps({"outcome": result.outcome.value, "holder": result.holder})
    rt.queue.hset(record_key, "result", value)
    log.info("%s: %s by %s", _name(pull), result.outcome.value, login)
    return result


def _request_review(
    ctx: InstallationContext, click_id: str, pull: PullRecord, login: str, reply: str
) -> bool:
    """Ask GitHub to request `login`'s review; on GitHub's refusal the claim is undone and
    the clicker told why. False when the job ends here."""
    rt, installation_id = ctx.runtime, ctx.installation_id
    try:
        ctx.github.request_review(pull.repo, pull.number, login)
    except WriteDeferred as deferred:
        rt.schedule(
            deferred.until,
            jobs.answer_slack_click(click_id, installation_id, pull.key),
            job_id=job_id("slack-click-deferred", installation_id, click_id),
        )
        return False
    except GithubException as error:
        if error.status != UNPROCESSABLE:
            raise  # GitHub's trouble: the job's retry asks again
        ClaimStore(rt.redis, installation_id).release(pull.key, login)
        _tell(reply, f"GitHub would not request your review of {_name(pull)}: {_reason(error)}")
        return False
    return True


def _show_claims(ctx: InstallationContext, team: str) -> None:
    """The notice shows the claims; while red, the swarm labels move to unclaimed PRs."""
    rt, installation_id = ctx.runtime, ctx.installation_id
    rt.enqueue(jobs.update_claimed_notice(installation_id, team))
    light = ctx.store.light(team)
    if light is not None and light.level is Level.RED:
        request_effects(rt, installation_id, team)


def _tell(response_url: str, message: str) -> None:
    """A private answer to the clicker: best effort, for the notice shows the outcome too."""
    try:
        slack.reply_privately(response_url, message)
    except SlackError as error:
        log.warning("private Slack reply not sent: %s", error)


def _reason(error: GithubException) -> str:
    data = error.data if isinstance(error.data, dict) else {}
    message = str(data.get("message") or error.message or "unprocessable")
    details = [
        str(item.get("message", "")) if isinstance(item, dict) else str(item)
        for item in data.get("errors") or []
    ]
    return "; ".join(part for part in [message, *details] if part)


def _name(pull: PullRecord) -> str:
    return f"{pull.repo}#{pull.number}"
