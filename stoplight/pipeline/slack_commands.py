"""`/stoplight` from Slack: the answer, from Redis alone, or a job that asks GitHub first.

`answer_command` takes the slash command's form fields (`command`, `text`, `user_id`,
`team_id`, `channel_id`, `channel_name`, `response_url`, ...) however they came (the web route
`/slack/commands`, or Socket Mode) and returns the private answer, or None when a job answers
through `response_url` (Slack waits 3 seconds for the answer; GitHub may take longer).

Who someone is: the team's `slack_users` first, then the GitHub login they linked. Which team
is theirs, in this order: the team whose `slack_channel` is the channel they typed in, the
teams whose `slack_users` list them, then the teams with an open PR their login authored or is
asked to review. `/stoplight` answers for the first and names the others. `/stoplight TEAM`
for a team of theirs answers at once; for any other name a job asks GitHub whether their login
may read one of the team's repositories (the pages' rule), and a team they may not see gets
the same answer as one that does not exist.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis import Redis

from stoplight.clients import slack
from stoplight.clients.slack import SlackError
from stoplight.config.repos import RepoConfigs
from stoplight.config.schema import TeamSettings
from stoplight.core.pulls import PullRecord
from stoplight.effects.command_answers import HELP, no_such_team, no_team_of_yours, team_answer
from stoplight.pipeline.context import InstallationContext
from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.slack_people import unknown_person
from stoplight.settings import Settings
from stoplight.state import keys
from stoplight.state.claims import ClaimStore
from stoplight.state.installations import installation_ids
from stoplight.state.replies import text
from stoplight.state.review_queue import QueueStore
from stoplight.state.slack_links import SlackLinks, SlackPerson, listed_login
from stoplight.state.views import TeamView, WaitingPull, load_team_view, team_repositories
from stoplight.transport import jobs
from stoplight.transport.lanes import Lanes

log = logging.getLogger(__name__)

# Slack accepts answers on a command's response_url for 30 minutes.
COMMAND_TTL = timedelta(minutes=30)
# GitHub's word on who may read a repository, kept as long as the pages keep theirs.
READERS_CACHED_FOR = timedelta(minutes=5)
NEXT_LISTED = 5
# The oldest waiting PRs read to find the next few a person may review (not theirs, unclaimed).
CANDIDATES_READ = 50


@dataclass(frozen=True)
class Command:
    person: SlackPerson
    text: str  # what follows `/stoplight`, its spaces collapsed
    channel_id: str
    channel_name: str
    response_url: str

    @classmethod
    def parse(cls, form: Mapping[str, str]) -> Command:
        member, response_url = form.get("user_id", ""), form.get("response_url", "")
        if not member or not response_url:
            raise ValueError("the command names no user_id or response_url")
        return cls(
            SlackPerson(form.get("team_id", ""), member),
            " ".join(form.get("text", "").split()),
            form.get("channel_id", ""),
            form.get("channel_name", ""),
            response_url,
        )


@dataclass(frozen=True)
class Team:
    installation_id: int
    key: str
    name: str
    settings: TeamSettings

    def named(self, asked: str) -> bool:
        return asked.lower() in (self.key.lower(), self.name.lower())


def answer_command(
    redis: Redis, lanes: Lanes, settings: Settings, now: datetime, form: Mapping[str, str]
) -> dict[str, Any] | None:
    """The private answer to one `/stoplight`, or None when its job will answer. A form
    without the person or the response_url is a ValueError."""
    command = Command.parse(form)
    word = command.text.lower()
    if word == "help":
        return private(HELP)
    if word == "unlink":
        return private(_unlink(redis, command.person))
    teams = all_teams(redis)
    login = _login(redis, teams, command.person)
    if login is None:
        return private(unknown_person(redis, settings, command.person, None))
    theirs = _teams_of(redis, teams, command, login)
    if not command.text:
        if not theirs:
            return private(no_team_of_yours())
        others = [team.name for team in theirs[1:]]
        return private(_team_text(redis, theirs[0], login, now, others))
    asked = next((team for team in theirs if team.named(command.text)), None)
    if asked is not None:
        return private(_team_text(redis, asked, login, now))
    _queue_command(lanes, command, login)
    return None


def private(message: str) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": message}


def all_teams(redis: Redis) -> list[Team]:
    """Every team of every installation, by name."""
    found = []
    for installation_id in installation_ids(redis):
        configs = RepoConfigs(redis, installation_id)
        for key, name in QueueStore(redis, installation_id).teams().items():
            found.append(Team(installation_id, key, name, configs.team(key)))
    return sorted(found, key=lambda team: (team.name.lower(), team.key))


def _login(redis: Redis, teams: list[Team], person: SlackPerson) -> str | None:
    """`slack_users` of any team first, then the link."""
    for team in teams:
        listed = listed_login(team.settings.slack_users, person.member)
        if listed is not None:
            return listed
    return SlackLinks(redis).login(person) if person.workspace else None


def _teams_of(redis: Redis, teams: list[Team], command: Command, login: str) -> list[Team]:
    """The person's teams, the one to answer for first (see the module's docstring)."""
    here = [team for team in teams if _is_channel(team.settings.slack_channel, command)]
    listed = [team for team in teams if command.person.member in team.settings.slack_users.values()]
    active = [team for team in teams if _works_in(redis, team, login)]
    first: dict[tuple[int, str], Team] = {}
    for team in [*here, *listed, *active]:
        first.setdefault((team.installation_id, team.key), team)
    return list(first.values())


def _is_channel(channel: str | None, command: Command) -> bool:
    if not channel:
        return False
    wanted = channel.removeprefix("#").lower()
    return wanted in (command.channel_id.lower(), command.channel_name.lower())


def _works_in(redis: Redis, team: Team, login: str) -> bool:
    """An open PR of the team is `login`'s, or asks for their review."""
    pulls = QueueStore(redis, team.installation_id).open_pulls(team.key)
    return any(
        login in (record.author, record.agent_for) or login in record.requested_reviewers
        for record in pulls
    )


def _team_text(
    redis: Redis, team: Team, login: str, now: datetime, other_teams: list[str] | None = None
) -> str:
    view = load_team_view(
        redis, team.installation_id, team.key, now, team.settings, shown=CANDIDATES_READ
    )
    assert view is not None, "a team listed by its installation has a view"
    return team_answer(
        view, login, next_for(view, login), _claimed_by(redis, team, login, now), other_teams or ()
    )


def next_for(view: TeamView, login: str) -> list[WaitingPull]:
    """The oldest waiting PRs `login` may review: not theirs (nor their agent's), not claimed.
    Held and stale PRs are not waiting, so never among them."""
    return [
        pull
        for pull in view.waiting
        if login not in (pull.record.author, pull.record.agent_for) and pull.claimed_by is None
    ][:NEXT_LISTED]


def _claimed_by(redis: Redis, team: Team, login: str, now: datetime) -> list[PullRecord]:
    holders = ClaimStore(redis, team.installation_id).holders(now)
    mine = sorted(key for key, holder in holders.items() if holder == login)
    return QueueStore(redis, team.installation_id).pulls(mine)


def _unlink(redis: Redis, person: SlackPerson) -> str:
    links = SlackLinks(redis)
    login = links.login(person) if person.workspace else None
    still = "(`slack_users` in a team's file, if it lists you, still names you.)"
    if login is None or not links.unlink(person):
        return f"No GitHub account is linked to you. {still}"
    return f"Unlinked: Stoplight no longer takes you for @{login}. {still}"


def _queue_command(lanes: Lanes, command: Command, login: str) -> None:
    """Keep the command (its response_url is a credential for 30 minutes, so it stays in
    Redis, out of the job's arguments) and queue the job that answers it."""
    command_id = uuid.uuid4().hex
    record = keys.slack_command(command_id)
    with lanes.redis.pipeline() as pipe:
        jobs.enqueue(
            lanes.shared,
            jobs.answer_slack_command(command_id),
            job_id=f"slack-command-{command_id}",
            description="answer_slack_command",
            pipeline=pipe,
        )  # first: RQ's enqueue on a pipeline must open it
        pipe.hset(
            record,
            mapping={"login": login, "text": command.text, "response_url": command.response_url},
        )
        pipe.expire(record, COMMAND_TTL)
        pipe.execute()


def answer_slack_command(rt: Runtime, command_id: str) -> None:
    """`/stoplight TEAM` for a team not the person's own: the answer once GitHub said whether
    their login may read one of its repositories."""
    record = keys.slack_command(command_id)
    stored = {text(k): text(v) for k, v in rt.queue.hgetall(record).items()}
    if not stored:
        log.info("Slack command %s: answered already, or its record lapsed", command_id)
        return
    login, asked = stored["login"], stored["text"]
    named = [team for team in all_teams(rt.redis) if team.named(asked)]
    visible = next((team for team in named if _may_see(rt, team, login)), None)
    if visible is None:
        message = no_such_team(asked)
    else:
        message = _team_text(rt.redis, visible, login, rt.clock.now())
    try:
        slack.reply_privately(stored["response_url"], message)
    except SlackError as error:
        log.warning("answer to /stoplight not sent: %s", error)
    rt.queue.delete(record)


def _may_see(rt: Runtime, team: Team, login: str) -> bool:
    """The pages' rule: who may read one of the team's repositories may see the team."""
    ctx = InstallationContext.of(rt, team.installation_id)
    _, homes = team_repositories(rt.redis, team.installation_id, team.key)
    open_pulls = ctx.store.open_pulls(team.key)
    names = sorted({record.repo for record in open_pulls} | homes)
    return any(_may_read(ctx, name, login) for name in names)


def _may_read(ctx: InstallationContext, repo: str, login: str) -> bool:
    cache = ctx.store.keys.repository_reader(repo, login)
    cached = ctx.redis.get(cache)
    if cached is not None:
        return text(cached) == "1"
    readable = ctx.github.may_read(repo, login)
    if readable is None:
        return False  # nobody can tell (no GitHub): not remembered, so it is asked again
    ctx.redis.set(cache, "1" if readable else "0", ex=READERS_CACHED_FOR)
    return readable
