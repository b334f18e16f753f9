""" "I'll review" claims: who promised to review which PR, until when. The one writer of them.

One hash per installation, pull key -> the claim as JSON. A claim lapses at its `until`
(wall-clock time: the team's working hours do not stretch it); a lapsed claim reads as absent
and is dropped by the next write. Every change is one optimistic transaction on the hash, so
two clicks at once cannot both take the last of a person's claims.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from redis import Redis
from redis.client import Pipeline

from stoplight.config.schema import ClaimsConfig
from stoplight.core.clock import from_timestamp
from stoplight.core.pulls import PullRecord
from stoplight.state import keys
from stoplight.state.replies import text, transaction_value

if TYPE_CHECKING:  # the queue store ends claims in its own transactions, so it imports this
    from stoplight.state.review_queue import QueueStore

# Ends the claim of ARGV[1] if ARGV[2] holds it; one command, so it rides in the queue store's
# MULTI..EXEC with the review that keeps the promise.
_END_IF_HELD_BY = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw and cjson.decode(raw).login == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


@dataclass(frozen=True)
class Claim:
    login: str  # the GitHub login of the person who will review
    until: datetime

    def dump(self) -> str:
        return json.dumps({"login": self.login, "until": self.until.timestamp()})

    @classmethod
    def load(cls, raw: bytes | str) -> Claim:
        value = json.loads(raw)
        return cls(value["login"], from_timestamp(value["until"]))


class Outcome(enum.Enum):
    CLAIMED = "claimed"
    UNCLAIMED = "unclaimed"  # the claimer clicked again: they let it go
    TAKEN = "taken"  # someone else holds it
    AT_LIMIT = "at_limit"  # the person holds as many claims as the team allows


@dataclass(frozen=True)
class ClaimResult:
    outcome: Outcome
    holder: str  # who holds the PR now (the claimer, or the one who had it); "" when nobody


class ClaimStore:
    def __init__(self, redis: Redis, installation_id: int) -> None:
        self.redis = redis
        self.key = keys.InstallationKeys(installation_id).claims

    def claim(self, pull_key: str, login: str, now: datetime, rules: ClaimsConfig) -> ClaimResult:
        """`login` claims the PR, or lets it go when they hold it already."""

        def write(pipe: Pipeline) -> ClaimResult:
            raw = pipe.hgetall(self.key)
            live = _live(raw, now)
            pipe.multi()
            _drop_lapsed(pipe, self.key, raw, live)
            held = live.get(pull_key)
            if held is not None and held.login == login:
                pipe.hdel(self.key, pull_key)
                return ClaimResult(Outcome.UNCLAIMED, "")
            if held is not None:
                return ClaimResult(Outcome.TAKEN, held.login)
            if sum(claim.login == login for claim in live.values()) >= rules.max_per_reviewer:
                return ClaimResult(Outcome.AT_LIMIT, "")
            pipe.hset(self.key, pull_key, Claim(login, now + rules.expire).dump())
            return ClaimResult(Outcome.CLAIMED, login)

        return transaction_value(self.redis, write, self.key)

    def release(self, pull_key: str, login: str) -> bool:
        """End `login`'s claim of the PR (GitHub refused to request them); a claim someone
        else holds stays. True when one ended."""

        def write(pipe: Pipeline) -> bool:
            raw = pipe.hget(self.key, pull_key)
            if raw is None or Claim.load(raw).login != login:
                return False
            pipe.multi()
            pipe.hdel(self.key, pull_key)
            return True

        return transaction_value(self.redis, write, self.key)

    def holders(self, now: datetime) -> dict[str, str]:
        """Pull key -> the login of whoever holds a live claim of it."""
        return {key: claim.login for key, claim in _live(self.redis.hgetall(self.key), now).items()}


def end_claim_by_review(pipe: Pipeline, claims_key: str, pull_key: str, reviewer: str) -> None:
    """Queue on the caller's transaction the end of `reviewer`'s claim of the PR, if they hold
    it: their review came."""
    pipe.execute_command("EVAL", _END_IF_HELD_BY, 1, claims_key, pull_key, reviewer)


def swarm_keys(store: QueueStore, team: str, count: int, holders: dict[str, str]) -> list[str]:
    """The `count` PRs the red light asks everyone to review: the oldest waiting ones nobody
    has claimed, then (when too few are unclaimed) the oldest claimed ones."""
    if count <= 0:
        return []
    oldest = store.waiting_pulls(team, count + len(holders))
    return [record.key for record in unclaimed_first(oldest, holders)[:count]]


def unclaimed_first(records: Sequence[PullRecord], holders: dict[str, str]) -> list[PullRecord]:
    """The PRs with nobody's claim first, each part in its given order (oldest first)."""
    return sorted(records, key=lambda record: record.key in holders)


def _live(raw: Mapping[bytes | str, bytes | str], now: datetime) -> dict[str, Claim]:
    claims = {text(key): Claim.load(value) for key, value in raw.items()}
    return {key: claim for key, claim in claims.items() if claim.until > now}


def _drop_lapsed(
    pipe: Pipeline, key: str, raw: Mapping[bytes | str, bytes | str], live: dict[str, Claim]
) -> None:
    lapsed = [field for field in map(text, raw) if field not in live]
    if lapsed:
        pipe.hdel(key, *lapsed)
