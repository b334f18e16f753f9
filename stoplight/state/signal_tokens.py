"""Bearer tokens for the pull signal: the one writer of them.

A token is shown once, when it is made; Redis keeps only its SHA-256, with the one team it may
read. Its id (the start of that hash) names it in listings and for revoking.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from redis import Redis

from stoplight.core.clock import from_timestamp
from stoplight.state import keys
from stoplight.state.installations import installation_ids
from stoplight.state.replies import text

TOKEN_PREFIX = "slt_"
ID_LENGTH = 12

# Marks the token used only while it still exists, in one step: a token revoked meanwhile
# leaves nothing behind.
_FIND_AND_TOUCH = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return raw
"""


@dataclass(frozen=True)
class SignalToken:
    id: str
    installation_id: int
    team: str
    name: str
    created: datetime
    last_used: datetime | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "installation": self.installation_id,
            "team": self.team,
            "name": self.name,
            "created": self.created.isoformat(),
            "last_used": self.last_used.isoformat() if self.last_used else None,
        }


class TokenStore:
    def __init__(self, redis: Redis, installation_id: int) -> None:
        self.redis = redis
        self.installation_id = installation_id
        self.keys = keys.InstallationKeys(installation_id)

    def create(self, team: str, name: str, now: datetime) -> tuple[str, SignalToken]:
        """A new token for `team`: its text (to show once) and what is stored of it."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = _digest(token)
        record = {"team": team, "name": name, "created": now.timestamp()}
        self.redis.hset(self.keys.signal_tokens, digest, json.dumps(record))
        return token, self._token(digest, record, None)

    def find(self, token: str, now: datetime) -> SignalToken | None:
        """The stored token whose text is `token`, marked as used now; None for any other."""
        digest = _digest(token)
        raw = self.redis.eval(
            _FIND_AND_TOUCH,
            2,
            self.keys.signal_tokens,
            self.keys.signal_tokens_used,
            digest,
            str(now.timestamp()),
        )
        return self._token(digest, json.loads(raw), now) if raw is not None else None

    def listed(self) -> list[SignalToken]:
        reads = self.redis.pipeline(transaction=False)
        reads.hgetall(self.keys.signal_tokens)
        reads.hgetall(self.keys.signal_tokens_used)
        stored, used = reads.execute()
        return [
            self._token(text(digest), json.loads(raw), _moment(used.get(digest)))
            for digest, raw in stored.items()
        ]

    def revoke(self, token_id: str) -> SignalToken | None:
        """Remove the token with id `token_id`; None when this installation has none."""
        stored = (text(digest) for digest in self.redis.hkeys(self.keys.signal_tokens))
        digest = next((each for each in stored if each[:ID_LENGTH] == token_id), None)
        if digest is None:
            return None
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(self.keys.signal_tokens, digest)
            pipe.hdel(self.keys.signal_tokens, digest)
            pipe.hdel(self.keys.signal_tokens_used, digest)
            raw, _, _ = pipe.execute()
        return self._token(digest, json.loads(raw), None) if raw is not None else None

    def _token(
        self, digest: str, record: dict[str, object], last_used: datetime | None
    ) -> SignalToken:
        created = record["created"]
        assert isinstance(created, float | int)
        return SignalToken(
            id=digest[:ID_LENGTH],
            installation_id=self.installation_id,
            team=str(record["team"]),
            name=str(record["name"]),
            created=from_timestamp(created),
            last_used=last_used,
        )


def every_token(redis: Redis) -> list[SignalToken]:
    """The tokens of every installation, oldest first."""
    stores = (TokenStore(redis, each) for each in installation_ids(redis))
    found = [token for store in stores for token in store.listed()]
    return sorted(found, key=lambda token: token.created)


def revoke_anywhere(redis: Redis, token_id: str) -> SignalToken | None:
    """Revoke the token with this id, in whichever installation holds it."""
    for each in installation_ids(redis):
        revoked = TokenStore(redis, each).revoke(token_id)
        if revoked is not None:
            return revoked
    return None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _moment(raw: bytes | None) -> datetime | None:
    return from_timestamp(float(raw)) if raw is not None else None
