"""Limits of what the web process takes in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis

# GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub.
MAX_BODY_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True)
class WindowLimit:
    """At most `calls` requests a minute per caller, counted in Redis so every web worker
    shares the count (fixed one-minute windows)."""

    calls: int = 60
    window: timedelta = timedelta(minutes=1)

    def retry_after(self, redis: Redis, key_of: Callable[[int], str], now: datetime) -> int | None:
        """Count one call; the seconds until the caller may call again if it is one too many.
        `key_of` names the counter of a window by its number."""
        seconds = int(self.window.total_seconds())
        number, into = divmod(int(now.timestamp()), seconds)
        with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key_of(number))
            pipe.expire(key_of(number), seconds * 2)
            count, _ = pipe.execute()
        return seconds - into if count > self.calls else None
