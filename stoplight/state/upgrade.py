"""Renaming the keys of earlier versions to the names this one reads.

Version 1 named an installation's keys `stoplight:i:42:…`; version 2 puts the id in a hash tag,
`stoplight:i:{42}:…` (see `keys`). Version 3 keys a team of a repository's file by the file's
full repository, `name@owner/repo`, where version 2 wrote `name@repo`: the team's keys, its
entries in the installation's team and home hashes, and its PRs' records move. Version 4 keeps,
beside each team's waiting set, its waiting agent PRs and each person's count: they are built
from the waiting PRs' records, in a transaction that watches the waiting set.

Each key is renamed by a script that leaves a key alone if its new name is already taken (a
newer process wrote it) or if it expired meanwhile, so the upgrade can run again, from several
processes at once, and never overwrites anything. RENAME keeps each key's value and time to
live: review queues, histories and the ledgers of what was written to GitHub carry over as
they were.

While old and new processes share the data, a job may run on the other version than the one
that queued it, and read the other names: an effects pass finds its team's stale counter
under a name it does not read, and ends as if nothing were owed. The counters stay set, so
`owed_effects` finds the teams whose passes are owed, for the caller to queue them again.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline

from stoplight.core.pulls import PullRecord
from stoplight.state import keys
from stoplight.state.replies import members, text

log = logging.getLogger(__name__)

KEY_SCHEMA_VERSION = 4
_UNTAGGED = re.compile(rf"^{keys.PREFIX}:i:(\d+):")
_UNTAGGED_PATTERN = f"{keys.PREFIX}:i:[0-9]*"
_SCAN_BATCH = 500

_TEAM_INDEXES = f"{keys.PREFIX}:i:{{*}}:teams"
_EFFECTS_DIRTY_PATTERN = f"{keys.PREFIX}:i:{{*}}:t:*:effects:dirty"
_EFFECTS_DIRTY = re.compile(rf"^{keys.PREFIX}:i:\{{(\d+)\}}:t:(.+):effects:dirty$")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

# KEYS: a PR's record; ARGV: the record as read, the record with its new team. Written only
# if nobody changed it meanwhile (a newer process would have written the new key itself).
_SWAP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""

# KEYS: old name, new name. 1 renamed, 0 gone meanwhile, -1 the new name is taken.
_RENAME = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
"""


@dataclass(frozen=True)
class Upgrade:
    renamed: int
    left: int  # old keys whose new name was taken: kept as they are, for the operator


def tagged_name(name: str) -> str:
    """The version-2 name of a version-1 installation key; other names unchanged."""
    return _UNTAGGED.sub(lambda found: f"{keys.InstallationKeys(int(found[1])).root}:", name)


def upgrade_keys(redis: Redis) -> Upgrade:
    """Rename every version-1 key (one round trip a batch), then note the version."""
    renamed = left = 0
    batch: list[str] = []
    for name in redis.scan_iter(match=_UNTAGGED_PATTERN, count=_SCAN_BATCH):
        batch.append(text(name))
        if len(batch) == _SCAN_BATCH:
            done, kept = _rename(redis, batch)
            renamed, left, batch = renamed + done, left + kept, []
    done, kept = _rename(redis, batch)
    renamed, left = renamed + done, left + kept
    for index in redis.scan_iter(match=_TEAM_INDEXES, count=_SCAN_BATCH):
        done, kept = _qualify_team_keys(redis, text(index).removesuffix(":teams"))
        renamed, left = renamed + done, left + kept
    for index in redis.scan_iter(match=_TEAM_INDEXES, count=_SCAN_BATCH):
        installation = _installation_keys(text(index).removesuffix(":teams"))
        for team in redis.hkeys(installation.teams):
            _index_waiting(redis, installation, text(team))
    redis.set(keys.KEY_SCHEMA, KEY_SCHEMA_VERSION)
    if renamed or left:
        log.info(
            "key upgrade: %d keys renamed, %d left (their new names were taken)", renamed, left
        )
    return Upgrade(renamed=renamed, left=left)


def upgrade_keys_once(redis: Redis) -> Upgrade | None:
    """At start-up: upgrade unless the data is noted as upgraded already (one GET)."""
    stored = redis.get(keys.KEY_SCHEMA)
    if stored is not None and int(stored) >= KEY_SCHEMA_VERSION:
        return None
    return upgrade_keys(redis)


def owed_effects(redis: Redis) -> set[tuple[int, str]]:
    """The (installation, team) pairs whose effects are marked stale with no pass finished."""
    owed = set()
    for name in redis.scan_iter(match=_EFFECTS_DIRTY_PATTERN, count=_SCAN_BATCH):
        if found := _EFFECTS_DIRTY.match(text(name)):
            owed.add((int(found[1]), found[2]))
    return owed


def _rename(redis: Redis, names: list[str]) -> tuple[int, int]:
    """Renamed and left among `names`."""
    candidates = [name for name in names if _UNTAGGED.match(name)]
    if not candidates:
        return 0, 0
    with redis.pipeline(transaction=False) as pipe:
        for name in candidates:
            pipe.eval(_RENAME, 2, name, tagged_name(name))
        outcomes = pipe.execute()
    return outcomes.count(1), outcomes.count(-1)


def qualified_team_key(key: str, owner: str) -> str | None:
    """The version-3 key of a version-2 team key `name@repo` (None: not such a key)."""
    name, at, repo = key.rpartition("@")
    if not at or not name or "/" in repo:
        return None
    return f"{name}@{owner.lower()}/{repo.lower()}"


def _qualify_team_keys(redis: Redis, root: str) -> tuple[int, int]:
    """Move one installation's version-2 team keys to version 3: (keys renamed, left)."""
    installation = _installation_keys(root)
    names = {text(k): text(v) for k, v in redis.hgetall(installation.teams).items()}
    homes = {text(k): text(v) for k, v in redis.hgetall(installation.team_homes).items()}
    owner = next((home.partition("/")[0] for home in homes.values() if "/" in home), None)
    if owner is None:
        return 0, 0
    moves = {
        old: new for old in names if (new := qualified_team_key(old, owner)) and new not in names
    }
    renamed = left = 0
    for old, new in moves.items():
        done, kept = _rename_prefix(redis, installation.team(old).root, installation.team(new).root)
        renamed, left = renamed + done, left + kept
        with redis.pipeline(transaction=True) as pipe:
            pipe.hset(installation.teams, new, names[old])
            pipe.hset(installation.team_homes, new, f"{owner}/{old.rpartition('@')[2]}")
            pipe.hdel(installation.teams, old)
            pipe.hdel(installation.team_homes, old)
            pipe.execute()
    if moves:
        _move_pulls(redis, installation, moves)
        log.info("key upgrade: %d teams of installation %s keyed by their file's full name",
                 len(moves), installation.installation_id)  # fmt: skip
    return renamed, left


def _installation_keys(root: str) -> keys.InstallationKeys:
    return keys.InstallationKeys(int(root.rpartition("{")[2].rstrip("}")))


def _rename_prefix(redis: Redis, old_root: str, new_root: str) -> tuple[int, int]:
    """Rename every key under `old_root:` to the same name under `new_root:`."""
    pattern = _GLOB_SPECIAL.sub(r"\\\1", old_root) + ":*"
    names = [text(name) for name in redis.scan_iter(match=pattern, count=_SCAN_BATCH)]
    if not names:
        return 0, 0
    with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.eval(_RENAME, 2, name, new_root + name[len(old_root) :])
        outcomes = pipe.execute()
    return outcomes.count(1), outcomes.count(-1)


def _move_pulls(redis: Redis, installation: keys.InstallationKeys, moves: dict[str, str]) -> None:
    names = [text(name) for name in redis.scan_iter(match=installation.pull("*"), count=500)]
    for name, raw in zip(names, redis.mget(names) if names else [], strict=True):
        if raw is None:
            continue
        record = json.loads(raw)
        if record.get("team") in moves:
            moved = json.dumps({**record, "team": moves[record["team"]]})
            redis.eval(_SWAP, 1, name, raw, moved)


def _index_waiting(redis: Redis, installation: keys.InstallationKeys, team: str) -> None:
    """Build the team's waiting agents and per-person counts from its waiting PRs' records."""
    team_keys = installation.team(team)

    def write(pipe: Pipeline) -> None:
        names = [installation.pull(key) for key in members(pipe, team_keys.waiting)]
        raws = pipe.execute_command("MGET", *names) if names else []
        pipe.multi()
        pipe.delete(team_keys.waiting_agents, team_keys.waiting_people)
        for raw in raws:
            if raw is None:
                continue
            record = PullRecord.model_validate_json(raw)
            assert record.wait_since is not None
            if record.by_agent:
                pipe.zadd(team_keys.waiting_agents, {record.key: record.wait_since.timestamp()})
            pipe.zincrby(team_keys.waiting_people, 1, record.person)

    redis.transaction(write, team_keys.waiting)
