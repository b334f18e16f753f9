"""The Redis store of each team's review queue. The only writer of queue state.

Measures are read in O(log n): a sorted set of waiting PRs by wait start (count and oldest)
and a line counter updated in the same transaction as the set. So is the entrance the
admission rule reads (`core.admission`): the waiting agent PRs are a sorted set of their own,
and the waiting PRs per person a sorted set of counts, both kept with the waiting set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline

from stoplight.core.admission import Entrance, drain, entering
from stoplight.core.changes import PullChange, ReviewChange
from stoplight.core.clock import from_timestamp
from stoplight.core.light import Level, LightState, Measures, Policy
from stoplight.core.pulls import NEWLY_READY, PullRecord, Rules, admit, advance, go_stale
from stoplight.core.pulls import pull_key as pull_key_of
from stoplight.state import history, keys
from stoplight.state.claims import end_claim_by_review
from stoplight.state.installations import note_installation
from stoplight.state.replies import members, members_scored_up_to, text, transaction_value

# Joinings told apart within one second of the held lane; seconds up to 2106 keep scores exact.
HELD_ORDER_SPAN = 2**21

# (measures, previous light) -> next light
LightDecision = Callable[[Measures, LightState | None], LightState]


@dataclass(frozen=True)
class Team:
    key: str  # stable identity inside an installation
    name: str  # what people read
    # A repository whose configuration defines the team, remembered with a change it takes.
    home: str | None = None


@dataclass(frozen=True)
class TeamRead:
    measures: Measures
    held: int
    light: LightState | None
    agents_waiting: int = 0
    waiting_by_person: dict[str, int] = field(default_factory=dict)

    @property
    def entrance(self) -> Entrance:
        return _entrance(self.light, self.agents_waiting, self.waiting_by_person)


@dataclass(frozen=True)
class Transition:
    before: PullRecord | None
    after: PullRecord
    team: TeamRead  # the PR's team as the change left it


@dataclass(frozen=True)
class LightUpdate:
    previous: LightState | None
    state: LightState
    held: int  # PRs in the team's held lane as the light was decided


# KEYS: the team's waiting set, line counter, held lane, light, waiting agents, waiting per
# person. One round trip, where a watched pipeline before MULTI would take one per command.
_READ_TEAM = """
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or ''
return {redis.call('ZCARD', KEYS[1]), oldest, redis.call('GET', KEYS[2]) or '0',
        redis.call('ZCARD', KEYS[3]), redis.call('GET', KEYS[4]) or '',
        redis.call('ZCARD', KEYS[5]), redis.call('ZRANGE', KEYS[6], 0, -1, 'WITHSCORES')}
"""

# KEYS: a PR's record, its team's light, waiting agents, waiting per person: what a change
# needs to move the PR (a person has a handful of PRs waiting, a team a few dozen people).
_READ_ENTRANCE = """
return {redis.call('GET', KEYS[1]) or '', redis.call('GET', KEYS[2]) or '',
        redis.call('ZCARD', KEYS[3]), redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')}
"""


class QueueStore:
    def __init__(self, redis: Redis, installation_id: int) -> None:
        self.redis = redis
        self.installation_id = installation_id
        self.keys = keys.InstallationKeys(installation_id)

    def apply(
        self, change: PullChange | ReviewChange, team: Team, rules: Rules, now: datetime
    ) -> Transition:
        """Move one PR by `change`, keeping the team indexes in step, atomically.

        The team's entrance (its light, the agent PRs and each person's PRs waiting) is read in
        the same transaction: a PR that newly becomes ready goes to the held lane when the
        admission rule says so, and the PR records why.
        """
        pull_key = self.keys.pull(pull_key_of(change.pull.repo_id, change.pull.number))
        team_keys = self.keys.team(team.key)
        read_keys = (pull_key, team_keys.light, team_keys.waiting_agents, team_keys.waiting_people)
        # Only a PR that may be held depends on who else waits: other changes watch less.
        may_hold = isinstance(change, PullChange) and change.action in NEWLY_READY
        moved: tuple[PullRecord | None, PullRecord] | None = None

        def write(pipe: Pipeline) -> None:
            nonlocal moved
            # EVAL as a plain command: redis-py's cluster pipeline has no eval().
            raw_pull, raw_light, agents, people = pipe.execute_command(
                "EVAL", _READ_ENTRANCE, len(read_keys), *read_keys
            )
            before = _load(raw_pull)
            entrance = _entrance(_load_light(raw_light), agents, _counts(people))
            rule = entering(entrance, rules)
            after = advance(before, change, team.key, rules, now, entering=rule)
            if before is None:
                # Registered before its first PR is stored: a crash in between leaves an
                # installation without PRs in the registry, never PRs outside it.
                note_installation(self.redis, self.installation_id)
            if after.held and (before is None or not before.held):
                # Taken before MULTI, so a retried transaction may skip a number: gaps are fine.
                order = int(pipe.incr(self.keys.team(team.key).held_order))
                after = after.model_copy(update={"held_order": order})
            pipe.multi()
            pipe.set(pull_key, after.model_dump_json())
            pipe.hset(self.keys.teams, team.key, team.name)
            if team.home is not None:
                pipe.hset(self.keys.team_homes, team.key, team.home)
            self._reindex(pipe, before, after, now)
            if isinstance(change, ReviewChange) and change.action == "submitted":
                end_claim_by_review(pipe, self.keys.claims, after.key, change.reviewer)
            _queue_team_read(pipe, team_keys)  # answered last, with the change made
            moved = (before, after)

        replies = self.redis.transaction(write, *(read_keys if may_hold else read_keys[:2]))
        assert moved is not None and replies is not None
        return Transition(*moved, team=_team_read(replies[-1]))

    def admit_held(
        self, team: str, policy: Policy, rules: Rules, now: datetime
    ) -> list[PullRecord]:
        """Let held PRs into the queue as room appears (`core.admission.drain`: people's first,
        then agents', each lane first in first out), and note on those that stay held why
        they are held now.
        """
        team_keys = self.keys.team(team)
        admitted: list[PullRecord] = []

        def write(pipe: Pipeline) -> None:
            admitted.clear()
            read = _read_team(pipe, team_keys)
            held_keys = members(pipe, team_keys.held)
            if not held_keys:
                return
            names = [self.keys.pull(key) for key in held_keys]
            pipe.watch(*names)
            # MGET as a plain command: redis-py's cluster pipeline refuses mget(), though
            # these keys, one installation's, share the transaction's slot.
            loaded = [_load(raw) for raw in pipe.execute_command("MGET", *names)]
            held = [record for record in loaded if record is not None and record.held]
            outcome = drain(held, read.entrance, read.measures, policy, rules, now)
            admitted.extend(outcome.admitted)
            pipe.multi()
            for record in admitted:
                after = admit(record, now)
                pipe.set(self.keys.pull(record.key), after.model_dump_json())
                self._reindex(pipe, record, after, now)
            for record in held:
                reason = outcome.reasons.get(record.key, record.held_for)
                if reason != record.held_for:
                    update = record.model_copy(update={"held_for": reason})
                    pipe.set(self.keys.pull(record.key), update.model_dump_json())

        self.redis.transaction(
            write,
            team_keys.waiting,
            team_keys.lines,
            team_keys.held,
            team_keys.waiting_agents,
            team_keys.waiting_people,
        )
        return admitted

    def sweep_stale(self, team: str, cutoff: datetime, now: datetime) -> list[PullRecord]:
        """Move the team's PRs waiting since `cutoff` or earlier out of the queue, as stale.

        The waiting set is ordered by wait start, so finding none (most calls) is one command.
        """
        team_keys = self.keys.team(team)
        swept: list[PullRecord] = []

        def write(pipe: Pipeline) -> None:
            swept.clear()
            due = members_scored_up_to(pipe, team_keys.waiting, cutoff.timestamp())
            if not due:
                return
            names = [self.keys.pull(key) for key in due]
            pipe.watch(*names)
            records = [_load(raw) for raw in pipe.execute_command("MGET", *names)]
            pipe.multi()
            for record in records:
                if record is None or not record.waiting:
                    continue  # the set and the record are written together: not reached
                after = go_stale(record, now)
                pipe.set(self.keys.pull(record.key), after.model_dump_json())
                self._reindex(pipe, record, after, now)
                swept.append(after)

        self.redis.transaction(write, team_keys.waiting)
        return swept

    def stale_pulls(self, team: str, limit: int) -> list[PullRecord]:
        """The team's stale PRs, longest left first."""
        return self.pulls(members(self.redis, self.keys.team(team).stale, 0, limit - 1))

    def stale_count(self, team: str) -> int:
        return self.redis.zcard(self.keys.team(team).stale)

    def held_keys(self, team: str) -> list[str]:
        """The team's held lane, first in line first."""
        return members(self.redis, self.keys.team(team).held)

    def waiting_agent_pulls(self, team: str) -> list[PullRecord]:
        """The team's waiting agent PRs (at most `agents.max_waiting` enter), oldest first."""
        return self.pulls(members(self.redis, self.keys.team(team).waiting_agents))

    def held_count(self, team: str) -> int:
        return self.redis.zcard(self.keys.team(team).held)

    def _reindex(
        self, pipe: Pipeline, before: PullRecord | None, after: PullRecord | None, now: datetime
    ) -> None:
        """Queue the index updates for one PR's change, then its record in the history."""
        self._update_indexes(pipe, before, after)
        history.record_moves(pipe, self.keys, before, after, now)

    def _update_indexes(
        self, pipe: Pipeline, before: PullRecord | None, after: PullRecord | None
    ) -> None:
        if before is not None:
            old = self.keys.team(before.team)
            if before.waiting:
                pipe.zrem(old.waiting, before.key)
                pipe.decrby(old.lines, before.lines)
                pipe.zrem(old.waiting_agents, before.key)
                pipe.zincrby(old.waiting_people, -1, before.person)
                pipe.zremrangebyscore(old.waiting_people, "-inf", 0)
            if before.held:
                pipe.zrem(old.held, before.key)
            if before.stale:
                pipe.zrem(old.stale, before.key)
            pipe.srem(old.open, before.key)
        if after is None:
            return
        new = self.keys.team(after.team)
        if after.waiting:
            assert after.wait_since is not None
            pipe.zadd(new.waiting, {after.key: after.wait_since.timestamp()})
            pipe.incrby(new.lines, after.lines)
            if after.by_agent:
                pipe.zadd(new.waiting_agents, {after.key: after.wait_since.timestamp()})
            pipe.zincrby(new.waiting_people, 1, after.person)
        if after.held:
            pipe.zadd(new.held, {after.key: held_score(after)})
        if after.stale:
            assert after.wait_since is not None
            pipe.zadd(new.stale, {after.key: after.wait_since.timestamp()})
        if after.open:
            pipe.sadd(new.open, after.key)

    def forget_repository(self, repo: str, now: datetime) -> set[str]:
        """Drop every PR of a repository the app no longer sees; returns the teams touched."""
        return {
            before.team
            for name in self._repository_pulls(repo)
            if (before := self._rewrite(name, lambda record: None, now)) is not None
        }

    def move_repository(self, repo: str, team: Team, now: datetime) -> set[str]:
        """Put the repository's PRs in `team` (its configuration changed); returns the teams
        they left. Each keeps its place: a waiting PR waits on, a held one stays held."""
        self.redis.hset(self.keys.teams, team.key, team.name)
        if team.home is not None:
            self.redis.hset(self.keys.team_homes, team.key, team.home)
        moved = (
            self._rewrite(name, lambda record: record.model_copy(update={"team": team.key}), now)
            for name in self._repository_pulls(repo)
        )
        return {before.team for before in moved if before is not None and before.team != team.key}

    def stored_repositories(self) -> dict[int, str]:
        """The repositories of the PRs the store holds: name by id."""
        return {record.repo_id: record.repo for _, record in self._scan_pulls()}

    def _repository_pulls(self, repo: str) -> list[str]:
        return [name for name, record in self._scan_pulls() if record.repo == repo]

    def _scan_pulls(self) -> list[tuple[str, PullRecord]]:
        # A scan of the installation's PRs: configuration changes, removals and syncs are rare.
        names = list(self.redis.scan_iter(match=self.keys.pull("*"), count=500))
        records = zip(names, self.redis.mget(names) if names else [], strict=True)
        return [(name, record) for name, raw in records if (record := _load(raw)) is not None]

    def _rewrite(
        self, name: str, change: Callable[[PullRecord], PullRecord | None], now: datetime
    ) -> PullRecord | None:
        """Replace one PR's record and its index entries atomically; returns the old record."""

        def write(pipe: Pipeline) -> PullRecord | None:
            before = _load(pipe.get(name))
            if before is None:
                return None
            after = change(before)
            pipe.multi()
            if after is None:
                pipe.delete(name)
            else:
                pipe.set(name, after.model_dump_json())
            self._reindex(pipe, before, after, now)
            return before

        return transaction_value(self.redis, write, name)

    def pull(self, pull_key: str) -> PullRecord | None:
        return _load(self.redis.get(self.keys.pull(pull_key)))

    def measures(self, team: str) -> Measures:
        return _measures(self.redis.pipeline(transaction=False), self.keys.team(team))

    def open_pulls(self, team: str) -> list[PullRecord]:
        found = self.redis.smembers(self.keys.team(team).open)
        return self.pulls(sorted(text(member) for member in found))

    def waiting_pulls(self, team: str, limit: int) -> list[PullRecord]:
        """The team's longest-waiting PRs, oldest first."""
        return self.pulls(members(self.redis, self.keys.team(team).waiting, 0, limit - 1))

    def pulls(self, pull_keys: Iterable[str]) -> list[PullRecord]:
        names = [self.keys.pull(key) for key in pull_keys]
        if not names:
            return []
        return [record for raw in self.redis.mget(names) if (record := _load(raw)) is not None]

    def teams(self) -> dict[str, str]:
        """Team key -> team name, for every team this installation has seen."""
        return {text(k): text(v) for k, v in self.redis.hgetall(self.keys.teams).items()}

    def light(self, team: str) -> LightState | None:
        return _load_light(self.redis.get(self.keys.team(team).light))

    def update_light(
        self, team: str, decide: LightDecision, read: TeamRead | None = None
    ) -> LightUpdate:
        """Read measures and the stored light, let `decide` pick the next light, store it.

        Runs as one optimistic transaction over the team's keys, so two workers evaluating the
        same team never both record the same change. Most evaluations leave the light as it
        is: a first read, atomic in itself, settles those without a transaction. `read`: that
        first read, when the caller has it (a change's `Transition.team`).
        """
        team_keys = self.keys.team(team)
        read = read or _read_team(self.redis, team_keys)
        state = decide(read.measures, read.light)
        if state == read.light:
            return LightUpdate(read.light, state, read.held)
        result: LightUpdate | None = None

        def write(pipe: Pipeline) -> None:
            nonlocal result
            read = _read_team(pipe, team_keys)
            previous = read.light
            state = decide(read.measures, previous)
            pipe.multi()
            if state != previous:
                pipe.set(team_keys.light, _dump_light(state))
            if previous is None or state.level != previous.level:
                history.record_light(pipe, team_keys, state)
            result = LightUpdate(previous, state, read.held)

        self.redis.transaction(write, team_keys.light, team_keys.waiting, team_keys.lines)
        assert result is not None
        return result


def held_score(record: PullRecord) -> int:
    """The held lane's order: the second the PR joined, then its number among that second's.

    Scores stay below 2**53, so Redis's doubles hold them exactly. Lanes stored before the
    numbers scored by the plain moment; those are all lower, and older, so they stay first.
    """
    assert record.held_since is not None
    second = int(record.held_since.timestamp())
    return second * HELD_ORDER_SPAN + record.held_order % HELD_ORDER_SPAN


def _read_team(redis: Redis, team: keys.TeamKeys) -> TeamRead:
    """The team's measures, held count and light, at one moment (a watched pipeline before
    MULTI answers at once too)."""
    return _team_read(_queue_team_read(redis, team))


def _queue_team_read(redis: Redis, team: keys.TeamKeys) -> Any:
    """The read of `_read_team`: its reply, or the pipeline it was queued on."""
    # EVAL as a plain command: redis-py's cluster pipeline has no eval().
    return redis.execute_command(
        "EVAL",
        _READ_TEAM,
        6,
        team.waiting,
        team.lines,
        team.held,
        team.light,
        team.waiting_agents,
        team.waiting_people,
    )


def _team_read(reply: list[Any]) -> TeamRead:
    waiting, oldest, lines, held, light, agents, people = reply
    measures = Measures(
        waiting=int(waiting),
        oldest_since=from_timestamp(float(oldest)) if oldest else None,
        lines=int(lines),
    )
    return TeamRead(measures, int(held), _load_light(light), int(agents), _counts(people))


def _counts(flat: list[Any]) -> dict[str, int]:
    """A WITHSCORES reply as Lua hands it on: member, score, member, score..."""
    return {text(flat[i]): int(float(flat[i + 1])) for i in range(0, len(flat), 2)}


def _entrance(light: LightState | None, agents: int, people: Mapping[str, int]) -> Entrance:
    return Entrance(
        level=light.level if light else Level.GREEN,
        agents_waiting=int(agents),
        waiting_by_person=people,
    )


def _measures(pipe: Pipeline, team: keys.TeamKeys) -> Measures:
    pipe.zcard(team.waiting)
    pipe.zrange(team.waiting, 0, 0, withscores=True)
    pipe.get(team.lines)
    waiting, oldest_scored, lines = pipe.execute()
    oldest = [score for _, score in oldest_scored]
    return Measures(
        waiting=int(waiting),
        oldest_since=from_timestamp(oldest[0]) if oldest else None,
        lines=int(lines or 0),
    )


def _load(raw: bytes | str | None) -> PullRecord | None:
    return PullRecord.model_validate_json(raw) if raw else None


def _dump_light(state: LightState) -> str:
    lower = state.lower_called_since.timestamp() if state.lower_called_since else ""
    return f"{int(state.level)}|{state.since.timestamp()}|{lower}"


def _load_light(raw: bytes | str | None) -> LightState | None:
    if not raw:
        return None
    level, since, lower = text(raw).split("|")
    return LightState(
        level=Level(int(level)),
        since=from_timestamp(float(since)),
        lower_called_since=from_timestamp(float(lower)) if lower else None,
    )
