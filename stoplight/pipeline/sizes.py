"""A PR's size as its team counts it: lines in files `size.exclude` skips do not count. The
file list of a head commit is read once and cached."""

from __future__ import annotations

import json
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import overload

from redis import Redis

from stoplight.clients.github import InstallationClient
from stoplight.core.changes import (
    PullChange,
    ReviewChange,
)
from stoplight.state import keys

# A head commit's file list never changes; keep it as long as a PR plausibly stays open.
FILES_TTL = timedelta(days=30)


@overload
def with_excluded_lines(
    redis: Redis, client: InstallationClient, change: PullChange, exclude: tuple[str, ...]
) -> PullChange: ...


@overload
def with_excluded_lines(
    redis: Redis, client: InstallationClient, change: ReviewChange, exclude: tuple[str, ...]
) -> ReviewChange: ...


def with_excluded_lines(
    redis: Redis,
    client: InstallationClient,
    change: PullChange | ReviewChange,
    exclude: tuple[str, ...],
) -> PullChange | ReviewChange:
    """The change with the lines of excluded files counted, listing files once per head sha."""
    pull = change.pull
    if not pull.open:
        return change
    cache = keys.InstallationKeys(client.installation_id).files(pull.repo, pull.head_sha)
    cached = redis.get(cache)
    if cached is None:
        files = client.changed_files(pull.repo, pull.number)
        redis.set(cache, json.dumps(files), ex=FILES_TTL)
    else:
        files = json.loads(cached)
    excluded = sum(lines for path, lines in files if excluded_path(path, exclude))
    snapshot = pull.model_copy(update={"excluded_lines": excluded})
    return change.model_copy(update={"pull": snapshot})


def excluded_path(path: str, patterns: tuple[str, ...]) -> bool:
    """gitignore-like: a pattern without a slash matches the file name at any depth."""
    name = path.rpartition("/")[2]
    return any(fnmatchcase(path if "/" in p else name, p) for p in patterns)
