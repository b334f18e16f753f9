"""Letting go of a Redis lock that may have gone from under its holder."""

from __future__ import annotations

import logging

from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

log = logging.getLogger(__name__)


def release(lock: Lock, what: str) -> None:
    """Release `lock`. One that is no longer ours (it expired, or Redis lost it with the rest
    of its data) guards nothing any more: the work it covered is done, and that is a line in
    the log, not a failed job retried for it."""
    try:
        lock.release()
    except LockNotOwnedError:
        log.warning("the %s was gone by the time it was released (expired, or lost)", what)
