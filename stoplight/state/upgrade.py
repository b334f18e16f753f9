"""Renaming the keys of earlier versions to the names this one reads.

Version 1 named an installation's keys `stoplight:i:42:…`; version 2 puts the id in a hash tag,
`stoplight:i:{42}:…` (see `keys`). Each key is renamed by a script that leaves a key alone if
its new name is already taken (a newer process wrote it) or if it expired meanwhile, so the
upgrade can run again, from several processes at once, and never overwrites anything. RENAME
keeps each key's value and time to live: review queues, histories and the ledgers of what was
written to GitHub carry over as they were.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from redis import Redis

from stoplight.state import keys
from stoplight.state.replies import text

log = logging.getLogger(__name__)

KEY_SCHEMA_VERSION = 2
_UNTAGGED = re.compile(rf"^{keys.PREFIX}:i:(\d+):")
_UNTAGGED_PATTERN = f"{keys.PREFIX}:i:[0-9]*"
_SCAN_BATCH = 500

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
