"""The installations the app holds state for and the repositories each grants: their one owner.

Deliveries, syncs and uninstalls all change this registry through here; nothing else writes
`stoplight:installations`, an installation's repository set or its deleted marker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from redis import Redis
from redis.client import Pipeline

from stoplight.state import keys

# Deliveries sent before an uninstall may still arrive (or be redelivered) this long after.
DELETED_MEMORY = timedelta(days=4)


def installation_ids(redis: Redis) -> list[int]:
    """Every installation the store holds state for, in order."""
    return sorted(int(i) for i in redis.smembers(keys.INSTALLATIONS))


def note_installation(redis: Redis, installation_id: int) -> None:
    """The installation holds state now (or is about to). A command of its own, never inside
    a transaction over the installation's keys: the registry is app-wide, in another Redis
    Cluster slot."""
    redis.sadd(keys.INSTALLATIONS, installation_id)


@dataclass(frozen=True)
class Admission:
    """What the registry says of a delivery's repository."""

    deleted: bool  # the app was uninstalled
    granted: bool  # the repository is among those granted, or none are known yet


def admission_of(deleted: int, known: int, granted: int) -> Admission:
    """The admission that `Installation.read_admission`'s three replies make."""
    return Admission(deleted=bool(deleted), granted=bool(granted) or not known)


class Installation:
    def __init__(self, redis: Redis, installation_id: int) -> None:
        self.redis = redis
        self.installation_id = installation_id
        self.keys = keys.InstallationKeys(installation_id)

    def grant(self, added: Iterable[int] = (), removed: Iterable[int] = ()) -> None:
        """Installed, unsuspended or given repositories: alive, with these changes."""
        added, removed = list(added), list(removed)
        note_installation(self.redis, self.installation_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.deleted)
            if added:
                pipe.sadd(self.keys.repositories, *added)
            if removed:
                pipe.srem(self.keys.repositories, *removed)
            pipe.execute()

    def grant_exactly(self, repository_ids: Iterable[int]) -> None:
        """GitHub listed the installation's repositories: these and no others (a sync)."""
        listed = list(repository_ids)
        note_installation(self.redis, self.installation_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.repositories, self.keys.deleted)
            if listed:
                pipe.sadd(self.keys.repositories, *listed)
            pipe.execute()

    def admission(self, repository_id: int) -> Admission:
        with self.redis.pipeline() as reads:
            self.read_admission(reads, repository_id)
            return admission_of(*reads.execute())

    def read_admission(self, reads: Pipeline, repository_id: int) -> None:
        """Queue the admission's reads on the caller's pipeline; `admission_of` their replies."""
        reads.exists(self.keys.deleted)
        reads.exists(self.keys.repositories)
        reads.sismember(self.keys.repositories, str(repository_id))

    def forget(self) -> None:
        """Uninstalled: delete every key of the installation, and remember it was, for a while,
        so late deliveries for it are ignored."""
        for name in self.redis.scan_iter(match=f"{self.keys.root}:*", count=500):
            self.redis.delete(name)
        self.redis.set(self.keys.deleted, 1, ex=DELETED_MEMORY)
        self.redis.srem(keys.INSTALLATIONS, self.installation_id)
