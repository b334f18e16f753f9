"""Each repository's configuration, read from GitHub by workers and cached in Redis.

Lookup follows Probot: the repository's own `.github/stoplight.yml`, else the one in the org's
`.github` repository; `_extends` inherits another repository's file. A file that does not
validate leaves the last good configuration (or the defaults) in force, with its error kept
beside it for the PRs' statuses.

A team is the file that defines it and its name. The org-wide file's teams keep their plain
name as key; a team of another file has the key `name@repository` (the repository whose file
it is), so one name in two repositories' files is two teams, each with its own settings. A
file that is nothing but `_extends: other` is the other file: its teams are the other's.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Protocol

from redis import Redis
from redis.client import Pipeline

from stoplight.config.schema import (
    CONFIG_PATH,
    DEFAULT_CONFIG,
    Config,
    ConfigError,
    Invalid,
    TeamSettings,
    deep_merge,
    parse_yaml,
    validate,
)
from stoplight.state import keys
from stoplight.state.replies import binary, text

log = logging.getLogger(__name__)
ORG_CONFIG_REPO = ".github"


@dataclass(frozen=True)
class RepoConfig:
    config: Config
    error: str | None = None  # the message of the file's error; `config` is the last good one
    # The repository whose file defines the teams; None for the org-wide file.
    source: str | None = None


@dataclass(frozen=True)
class Fetched:
    raw: dict[str, Any]  # `_extends` merged in
    org_wide: bool
    source: str | None  # as RepoConfig.source


@dataclass(frozen=True)
class Entry:
    """A repository's cache entry as read (None: not cached)."""

    raw: bytes | None


class FileReader(Protocol):
    """Reads a file on a repository's default branch: the GitHub client, in a worker."""

    def read_file(self, repo: str, path: str) -> str | None: ...


def fetch(client: FileReader, repo: str) -> Fetched | Invalid:
    """The repository's merged raw configuration, and which file it is."""
    owner = repo.partition("/")[0]
    org_file = f"{owner}/{ORG_CONFIG_REPO}"
    text, org_wide = client.read_file(repo, CONFIG_PATH), False
    if text is None:
        text, org_wide = client.read_file(org_file, CONFIG_PATH), True
    if text is None:
        return Fetched({}, False, None)
    raw = parse_yaml(text)
    if isinstance(raw, Invalid):
        return raw
    if not isinstance(raw.get("_extends"), str):
        return Fetched(raw, org_wide, _source(repo if not org_wide else org_file, org_file))
    base_repo = raw["_extends"] if "/" in raw["_extends"] else f"{owner}/{raw['_extends']}"
    base_text = client.read_file(base_repo, CONFIG_PATH)
    if base_text is None:
        return Invalid((ConfigError("_extends", f"{base_repo} has no {CONFIG_PATH}"),))
    base = parse_yaml(base_text)
    if isinstance(base, Invalid):
        return Invalid(tuple(_within(base_repo, error) for error in base.errors))
    base.pop("_extends", None)  # one level of inheritance, as in Probot
    defining = base_repo if raw.keys() == {"_extends"} else repo
    return Fetched(deep_merge(base, raw), org_wide, _source(defining, org_file))


def _source(defining_repo: str, org_file: str) -> str | None:
    return None if defining_repo == org_file else defining_repo


def _within(repo: str, error: ConfigError) -> ConfigError:
    return ConfigError("_extends", f"{repo}: {error}")


class RepoConfigs:
    """Repository configurations of one installation, cached in Redis.

    With a GitHub client (in a worker) a repository not yet cached is read from GitHub; without
    one (the web process) the cache alone answers and an unknown repository has the defaults.
    """

    def __init__(
        self, redis: Redis, installation_id: int, client: FileReader | None = None
    ) -> None:
        self.redis = redis
        self.client = client
        self.keys = keys.InstallationKeys(installation_id)

    def reload(self, repo: str) -> RepoConfig:
        """Read the repository's file from GitHub and cache it, keeping the last good one."""
        if self.client is None:
            return self.get(repo)
        fetched = fetch(self.client, repo)
        if isinstance(fetched, Fetched):
            validated = validate(fetched.raw, org_wide=fetched.org_wide)
            if isinstance(validated, Config):
                self._store(repo, fetched, None)
                return RepoConfig(validated, None, fetched.source)
            fetched = validated
        log.warning("%s: %s", repo, fetched.message)
        kept = self._entry(repo)
        last_good = _fetched(repo, kept) if kept else Fetched({}, False, None)
        self._store(repo, last_good, fetched.message)
        return RepoConfig(_good(last_good), fetched.message, last_good.source)

    def get(self, repo: str) -> RepoConfig:
        raw = self.redis.get(self.keys.config(repo))
        if raw is None:
            return self.reload(repo) if self.client else RepoConfig(DEFAULT_CONFIG)
        return _parsed(repo, binary(raw))

    def error(self, repo: str) -> str | None:
        """The repository's configuration error, from the cache only."""
        entry = self._entry(repo)
        return entry["error"] if entry else None

    def repos(self) -> list[str]:
        prefix = self.keys.config("")
        found = self.redis.scan_iter(match=f"{prefix}*", count=500)
        return sorted(text(name)[len(prefix) :] for name in found)

    def assign_team(self, repo: str) -> TeamSettings:
        """The team a repository's PRs belong to. It writes: the repository is remembered as
        one that team covers, so the team's key finds its settings again (`team`)."""
        found = self.team_of_repository(repo)
        self.redis.hset(self.keys.team_homes, found.key, repo)
        return found

    def team_of_repository(self, repo: str, entry: Entry | None = None) -> TeamSettings:
        """The team a repository's PRs belong to, without remembering it (the caller does, as
        `assign_team` would); `entry`: the cache entry, when the caller has read it."""
        found = self._team_of(repo, entry)
        if isinstance(found, Invalid):
            log.warning("%s: %s", repo, found.message)
            return _own_team(repo)
        return found

    def read_entry(self, reads: Pipeline, repo: str) -> None:
        """Queue the read of the repository's cache entry; `Entry` holds its reply."""
        reads.get(self.keys.config(repo))

    def team(self, team: str) -> TeamSettings:
        """A team's settings by its key (the defaults for a team no configuration names)."""
        home = self.redis.hget(self.keys.team_homes, team)
        repo = text(home) if home else team
        found = self._team_of(repo)
        if isinstance(found, TeamSettings) and found.key == team:
            return found
        if isinstance(found, TeamSettings) and found.name == team:
            # Stored before teams were told apart by file: the name alone was the key. Its PRs
            # move to the new key at their next change or sync.
            return replace(found, key=team)
        return _own_team(team)

    def _team_of(self, repo: str, entry: Entry | None = None) -> TeamSettings | Invalid:
        raw = entry.raw if entry is not None else self.redis.get(self.keys.config(repo))
        if raw is None and self.client is not None:
            self.reload(repo)
            raw = self.redis.get(self.keys.config(repo))
        return _team_in(repo, binary(raw) if raw is not None else None)

    def _entry(self, repo: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.keys.config(repo))
        return json.loads(raw) if raw else None

    def _store(self, repo: str, good: Fetched, error: str | None) -> None:
        entry = {"raw": good.raw, "org_wide": good.org_wide, "source": good.source, "error": error}
        self.redis.set(self.keys.config(repo), json.dumps(entry, default=str))


# Parsed configurations by repository and cached entry, shared by every RepoConfigs of the
# process: a delivery costs one GET of the entry, and parses it only when it changed.
PARSED_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=PARSED_CACHE_SIZE)
def _parsed(repo: str, raw: bytes) -> RepoConfig:
    entry = json.loads(raw)
    kept = _fetched(repo, entry)
    return RepoConfig(_good(kept), entry["error"], kept.source)


@functools.lru_cache(maxsize=PARSED_CACHE_SIZE)
def _team_in(repo: str, raw: bytes | None) -> TeamSettings | Invalid:
    """The team `repo` belongs to by its cached entry (None: no entry, the defaults)."""
    loaded = _parsed(repo, raw) if raw is not None else RepoConfig(DEFAULT_CONFIG)
    found = loaded.config.team_for(repo)
    if isinstance(found, Invalid) or loaded.source is None:
        return found
    if not any(team.name == found.name for team in loaded.config.teams):
        return found  # the repository is a team of its own
    return replace(found, key=team_key(found.name, loaded.source))


def team_key(name: str, source: str) -> str:
    """The key of a team that a repository's own (or extended) file defines: URL-safe but for
    what the name holds, as org-wide keys are, and the same for every repository using it."""
    return f"{name}@{source.rpartition('/')[2]}"


def _fetched(repo: str, entry: dict[str, Any]) -> Fetched:
    # Entries cached before `source` was kept: a repository's own file, or the org-wide one.
    source = entry.get("source", None if entry["org_wide"] else repo)
    return Fetched(entry["raw"], entry["org_wide"], source)


def _own_team(repo: str) -> TeamSettings:
    found = DEFAULT_CONFIG.team_for(repo)
    assert isinstance(found, TeamSettings)
    return found


def _good(kept: Fetched) -> Config:
    validated = validate(kept.raw, org_wide=kept.org_wide)
    return validated if isinstance(validated, Config) else DEFAULT_CONFIG
