"""Each team's history in Redis: light changes, samples of the measures, PRs entering and
leaving review. Written by the queue store in the same transaction as the change it records,
read for the team page and its JSON. A PR leaves review however it stops waiting (approved,
changes requested, closed, made a draft, moved to another team with its repository); the exit
keeps the moment its wait began, so its wait is counted in the team's calendar when read.

Every kind is a sorted set by moment (epoch milliseconds), one or two commands per change:
a Lua script adds the record and trims what is older than the retention (90 days; a backtest's
scratch Redis keeps a year), keeping the newest older record so the state at the window's
start stays known. The scripts go as EVAL inside the
store's MULTI: Redis caches them, and no SCRIPT EXISTS round trip precedes the transaction.
A sample is taken only when the measures change, and at most one per minute: a sample within
the minute of the previous one replaces it (keeping its moment), so a burst of events costs
one sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.client import Pipeline

from stoplight.core.clock import from_timestamp
from stoplight.core.flow import (
    CHART_SPAN,
    DAY,
    WEEK,
    ChartSeries,
    Entry,
    Exit,
    History,
    LightChange,
    Sample,
    WeekFigures,
    chart_series,
    timezone_of,
    week_start,
    weekly_figures,
)
from stoplight.core.light import Level, LightState, WaitCalendar
from stoplight.core.pulls import Phase, PullRecord
from stoplight.state import keys

RETENTION = timedelta(days=90)
HELD_MARK = "held"  # on the exit of a PR reviewed while it was held
AGENT_MARK = "agent"  # on the exit of an agent's PR
# What the records written in this context keep: the live app's RETENTION, unless a backtest
# replaying a longer window on its own Redis asks for more (`retained_for`).
_retention: ContextVar[timedelta] = ContextVar("history_retention", default=RETENTION)
SAMPLE_EVERY = timedelta(minutes=1)
WEEKS_SHOWN = 4

# Drop records older than the cutoff but the newest of them; forget an idle team's history.
_TRIM = """
local older = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[2])
if older > 1 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, older - 2) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
"""

# KEYS: the record's set. ARGV: moment (ms), cutoff (ms), ttl (s), member.
_APPEND = (
    """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
"""
    + _TRIM
)

# KEYS: samples, the team's waiting set, its line counter. ARGV: moment, cutoff, ttl, minute.
_SAMPLE = (
    """
local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local since = ''
if oldest[2] then since = string.format('%d', math.floor(tonumber(oldest[2]) * 1000 + 0.5)) end
local measures = redis.call('ZCARD', KEYS[2]) .. '|' .. (redis.call('GET', KEYS[3]) or '0')
measures = measures .. '|' .. since
local at = ARGV[1]
local last = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
if last then
  local last_at, last_measures = string.match(last, '^(%d+)|(.*)$')
  if last_measures == measures then return 0 end
  local minute = tonumber(ARGV[4])
  if math.floor(tonumber(at) / minute) <= math.floor(tonumber(last_at) / minute) then
    redis.call('ZREM', KEYS[1], last)
    at = last_at
  end
end
redis.call('ZADD', KEYS[1], at, at .. '|' .. measures)
"""
    + _TRIM
)


@contextmanager
def retained_for(retention: timedelta) -> Iterator[None]:
    """Records written within keep `retention` of history instead of RETENTION."""
    token = _retention.set(retention)
    try:
        yield
    finally:
        _retention.reset(token)


def record_light(pipe: Pipeline, team: keys.TeamKeys, state: LightState) -> None:
    """Note a change of the team's light (queued on `pipe`, inside the store's transaction)."""
    record = f"{_ms(state.since)}|{int(state.level)}"
    _append(pipe, team.history.lights, state.since, record, now=state.since)


def record_moves(
    pipe: Pipeline,
    installation: keys.InstallationKeys,
    before: PullRecord | None,
    after: PullRecord | None,
    now: datetime,
) -> None:
    """Note what one PR's change did to its teams' queues: leaving review (with the moment its
    wait began) or going stale, entering review, joining the held lane or being reviewed in
    it, and the measures after. Queued after the store's index updates."""
    was_waiting = before is not None and before.waiting
    is_waiting = after is not None and after.waiting
    same_team = before is not None and after is not None and before.team == after.team
    if was_waiting and not (is_waiting and same_team):
        assert before is not None and before.wait_since is not None
        left = installation.team(before.team).history
        kind = left.stale if same_team and after is not None and after.stale else left.exits
        member = f"{_ms(now)}|{before.key}|{_ms(before.wait_since)}{_agent_mark(before)}"
        _append(pipe, kind, now, member, now)
    if before is not None and after is not None and same_team and before.held:
        _record_held_review(pipe, installation.team(after.team).history, before, after, now)
    if after is not None and after.held and not (before is not None and before.held):
        _append(
            pipe, installation.team(after.team).history.held, now, f"{_ms(now)}|{after.key}", now
        )
    if is_waiting and not (was_waiting and same_team):
        assert after is not None and after.wait_since is not None
        entries = installation.team(after.team).history.entries
        _append(pipe, entries, after.wait_since, f"{_ms(after.wait_since)}|{after.key}", now)
    for team in sorted({r.team for r in (before, after) if r is not None and r.waiting}):
        team_keys = installation.team(team)
        sample_keys = (team_keys.history.samples, team_keys.waiting, team_keys.lines)
        _eval(pipe, _SAMPLE, sample_keys, (*_window(now), _ms_of(SAMPLE_EVERY)))


def _record_held_review(
    pipe: Pipeline, names: keys.HistoryKeys, before: PullRecord, after: PullRecord, now: datetime
) -> None:
    """A PR reviewed while held has been in review, from the moment it was held: it counts
    as entering and leaving (marked, since the queue's measures never held it)."""
    if after.phase not in (Phase.APPROVED, Phase.CHANGES_REQUESTED):
        return
    assert before.held_since is not None
    since = _ms(before.held_since)
    _append(pipe, names.entries, before.held_since, f"{since}|{before.key}", now)
    member = f"{_ms(now)}|{before.key}|{since}|{HELD_MARK}{_agent_mark(before)}"
    _append(pipe, names.exits, now, member, now)


def _agent_mark(record: PullRecord) -> str:
    return f"|{AGENT_MARK}" if record.by_agent else ""


def _append(pipe: Pipeline, name: str, moment: datetime, member: str, now: datetime) -> None:
    """Add `member` at `moment` (a wait's start may lie in the past); trim as of `now`."""
    _, cutoff, ttl = _window(now)
    _eval(pipe, _APPEND, (name,), (_ms(moment), cutoff, ttl, member))


def _eval(pipe: Pipeline, script: str, names: tuple[str, ...], args: tuple[str | int, ...]) -> None:
    """Queue EVAL on `pipe`. Sent as a plain command: redis-py's cluster pipeline has no eval()
    (its keys, all of one installation, are in the transaction's slot)."""
    pipe.execute_command("EVAL", script, len(names), *names, *args)


def _window(now: datetime) -> tuple[int, int, int]:
    """The moment, the cutoff before which records go, and how long an idle set is kept."""
    retention = _retention.get()
    return _ms(now), _ms(now - retention), int(retention.total_seconds())


def read_history(
    redis: Redis, installation_id: int, team: str, since: datetime, until: datetime
) -> History:
    """The team's records from `since` to `until`, with the light and measures at `since`."""
    names = keys.InstallationKeys(installation_id).team(team).history
    start, end = _ms(since), _ms(until)
    pipe = redis.pipeline(transaction=False)
    for name in (names.lights, names.samples):
        pipe.zrevrangebyscore(name, start, "-inf", start=0, num=1)
        pipe.zrangebyscore(name, f"({start}", end)
    for name in (names.entries, names.exits, names.stale, names.held):
        pipe.zrangebyscore(name, start, end)
    light_at_start, lights, sample_at_start, samples, entries, exits, stale, held = (
        [raw.decode().split("|") for raw in found] for found in pipe.execute()
    )
    return History(
        since=since,
        until=until,
        lights=tuple(
            LightChange(_moment(at), Level(int(level))) for at, level in light_at_start + lights
        ),
        samples=tuple(
            Sample(_moment(at), int(waiting), int(lines), _moment(oldest) if oldest else None)
            for at, waiting, lines, oldest in sample_at_start + samples
        ),
        entries=tuple(Entry(_moment(at), pull) for at, pull in entries),
        exits=tuple(_exit(*fields) for fields in exits),
        stale=tuple(_exit(*fields) for fields in stale),
        held=tuple(Entry(_moment(at), pull) for at, pull in held),
    )


def _exit(at: str, pull: str, waiting_since: str, *marks: str) -> Exit:
    return Exit(
        _moment(at),
        pull,
        _moment(waiting_since),
        held=HELD_MARK in marks,
        agent=AGENT_MARK in marks,
    )


@dataclass(frozen=True)
class FlowView:
    """The team page's history part: the 14-day series and the weekly figures, newest first."""

    weeks: tuple[WeekFigures, ...]
    series: ChartSeries

    def as_json(self) -> dict[str, Any]:
        return {
            "weeks": [week.as_json() for week in self.weeks],
            "chart": self.series.as_json(),
        }


def load_flow(
    redis: Redis,
    installation_id: int,
    team: str,
    calendar: WaitCalendar,
    now: datetime,
    weeks: int = WEEKS_SHOWN,
) -> FlowView:
    """The flow of `team` for its page and its JSON; reads only. The team's calendar counts
    the waits and sets where weeks begin."""
    # A day more than the weeks shown, in case a daylight-saving change falls between.
    first_week = week_start(now, timezone_of(calendar)) - (weeks - 1) * WEEK - DAY
    history = read_history(redis, installation_id, team, min(first_week, now - CHART_SPAN), now)
    return FlowView(
        weeks=weekly_figures(history, calendar, now, weeks),
        series=chart_series(history, calendar, now),
    )


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def _ms_of(duration: timedelta) -> int:
    return round(duration.total_seconds() * 1000)


def _moment(ms: str) -> datetime:
    return from_timestamp(int(ms) / 1000)
