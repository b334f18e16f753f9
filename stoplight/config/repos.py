"""Each repository's configuration, read from GitHub by workers and cached in Redis.

Lookup follows Probot: the repository's own `.github/stoplight.yml`, else the one in the org's
`.github` repository; `_extends` inherits another file of the same owner, and the repository's
own keys override what it inherits. A file that does not validate leaves the last good
configuration (or the defaults) in force, with its error kept beside it for the PRs' statuses.

The file is untrusted: anyone who can push to the repository writes it. So it is bounded and
validated (schema.py) before it is merged with anything, `_extends` may name only a repository
of the same owner, and a file decides nothing outside its repository:

- a repository is in a team only when the team's defining file lists it (`repos`); a team of a
  repository's own file without `repos` covers that repository alone. `_extends` inherits
  settings, never membership;
- a team is keyed by its defining file: the org-wide file's teams by their plain name, any
  other file's as `name@owner/repo`; the team's settings (thresholds, cooldown, hours, Slack,
  badge) come from that file only, while the rules a PR is judged by (approvals, the expedite
  label, ignored authors, size exclusions) come from the PR's own repository's configuration.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
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
    parse_extends,
    parse_yaml,
    validate,
)
from stoplight.state import keys
from stoplight.state.replies import binary, text

log = logging.getLogger(__name__)
ORG_CONFIG_REPO = ".github"


class UnreadableFile(Exception):
    """A configuration file exists but cannot be used as text (too large, not UTF-8)."""


@dataclass(frozen=True)
class RepoConfig:
    config: Config
    error: str | None = None  # the message of the file's error; `config` is the last good one
    # The repository whose file lists the teams `config` holds (None: no file at all).
    teams_from: str | None = None
    org_wide: bool = False  # the org-wide file stands for the repository


@dataclass(frozen=True)
class Fetched:
    raw: dict[str, Any]  # `_extends` merged in
    org_wide: bool  # the org-wide file stands for the repository (or is its own)
    teams_from: str | None  # as RepoConfig.teams_from


@dataclass(frozen=True)
class Entry:
    """A repository's cache entry as read (None: not cached)."""

    raw: bytes | None


class FileReader(Protocol):
    """Reads a file on a repository's default branch: the GitHub client, in a worker. Raises
    UnreadableFile for a file it will not read whole."""

    def read_file(self, repo: str, path: str) -> str | None: ...


def owner_of(repo: str) -> str:
    return repo.partition("/")[0]


def org_file_of(repo: str) -> str:
    """The org-wide file's repository for a repository of the same owner."""
    return f"{owner_of(repo)}/{ORG_CONFIG_REPO}"


def _same(one: str, other: str) -> bool:
    return one.lower() == other.lower()  # GitHub's names ignore case


def fetch(client: FileReader, repo: str) -> Fetched | Invalid:
    """The repository's merged raw configuration, and whose file lists its teams. Each file is
    validated alone before it is merged, so no problem of a file is met after the merge."""
    org_file = org_file_of(repo)
    own = _read(client, repo, CONFIG_PATH)
    if isinstance(own, Invalid):
        return own
    defining, org_wide = repo, _same(repo, org_file)
    if own is None and not org_wide:
        own = _read(client, org_file, CONFIG_PATH)
        if isinstance(own, Invalid):
            return own
        defining, org_wide = org_file, True
    if own is None:
        return Fetched({}, False, None)
    raw = parse_yaml(own)
    if isinstance(raw, Invalid):
        return raw
    alone = validate(raw, org_wide=org_wide)
    if isinstance(alone, Invalid):
        return alone
    if alone.extends is None:
        return Fetched(raw, org_wide, defining)
    base = _base(client, defining, alone.extends)
    if isinstance(base, Invalid):
        return base
    base_repo, base_raw = base
    teams_from = defining if "teams" in raw else base_repo
    return Fetched(deep_merge(base_raw, raw), org_wide, teams_from)


def _read(client: FileReader, repo: str, path: str) -> str | Invalid | None:
    try:
        return client.read_file(repo, path)
    except UnreadableFile as error:
        return Invalid((ConfigError("", str(error)),))


def _base(client: FileReader, defining: str, extends: str) -> tuple[str, dict[str, Any]] | Invalid:
    """The file `_extends` names, read and validated alone; its own `_extends` is dropped (one
    level of inheritance, as in Probot). An unusable base is named, never shown."""
    owner = owner_of(defining)
    target = parse_extends(extends)  # its shape was validated with the file
    if target.owner is not None and not _same(target.owner, owner):
        return _refused(f"must name a repository of {owner} (not {target.owner})")
    base_repo = target.full_name(owner)
    if _same(base_repo, defining) and target.path == CONFIG_PATH:
        return _refused("names this file itself")
    base_text = _read(client, base_repo, target.path)
    base = parse_yaml(base_text) if isinstance(base_text, str) else None
    if isinstance(base, dict):
        is_org_file = _same(base_repo, org_file_of(defining)) and target.path == CONFIG_PATH
        if isinstance(validate(base, org_wide=is_org_file), Config):
            base.pop("_extends", None)
            return base_repo, base
    return _refused(f"the extended file {target.shown(owner)} is invalid")


def _refused(message: str) -> Invalid:
    return Invalid((ConfigError("_extends", message),))


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
        """Read the repository's file from GitHub and cache it, keeping the last good one.
        The file that lists its teams is cached too, where it is another repository's, so the
        teams' settings can be read from it."""
        if self.client is None:
            return self.get(repo)
        loaded = self._reload(repo)
        defining = loaded.teams_from
        if defining is not None and not _same(defining, repo) and not self._cached(defining):
            self._reload(defining)
        return loaded

    def _reload(self, repo: str) -> RepoConfig:
        assert self.client is not None
        fetched = fetch(self.client, repo)
        if isinstance(fetched, Fetched):
            validated = validate(fetched.raw, org_wide=fetched.org_wide)
            if isinstance(validated, Config):
                self._store(repo, fetched, None)
                return RepoConfig(validated, None, fetched.teams_from, fetched.org_wide)
            fetched = validated
        log.warning("%s: %s", repo, fetched.message)
        kept = self._entry(repo)
        last_good = _fetched(repo, kept) if kept else Fetched({}, False, None)
        self._store(repo, last_good, fetched.message)
        return RepoConfig(
            _good(last_good), fetched.message, last_good.teams_from, last_good.org_wide
        )

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
        """The team a repository's PRs belong to. It writes: the team's defining repository is
        remembered as its home, so the team's key finds its settings again (`team`)."""
        found = self.team_of_repository(repo)
        self.redis.hset(self.keys.team_homes, found.key, found.home or repo)
        return found

    def team_of_repository(self, repo: str, entry: Entry | None = None) -> TeamSettings:
        """The team a repository's PRs belong to, without remembering it (the caller does, as
        `assign_team` would); `entry`: the cache entry, when the caller has read it."""
        raw = entry.raw if entry is not None else self.redis.get(self.keys.config(repo))
        if raw is None and self.client is not None:
            self.reload(repo)
            raw = self.redis.get(self.keys.config(repo))
        found, problem = _team_in(repo, binary(raw) if raw is not None else None)
        if problem is not None:
            log.warning("%s: %s", repo, problem)
        if isinstance(found, TeamSettings):
            return found
        # The team is another file's: its settings are that file's, the PR's rules its own.
        own = _parsed(repo, binary(raw)) if raw is not None else RepoConfig(DEFAULT_CONFIG)
        settings = self._defined(found.defining, found.key, found.name)
        return own.config.with_pull_rules(settings or _own_team(repo, own.config))

    def read_entry(self, reads: Pipeline, repo: str) -> None:
        """Queue the read of the repository's cache entry; `Entry` holds its reply."""
        reads.get(self.keys.config(repo))

    def team(self, team: str) -> TeamSettings:
        """A team's settings by its key, from its defining file (the defaults for a team no
        configuration defines)."""
        name, source = split_team_key(team)
        if source is None:  # a repository in no team: its own configuration's hours
            return _own_team(team, self.get(team).config)
        home = self.redis.hget(self.keys.team_homes, team)
        defining = text(home) if home else source
        if name == team and "/" not in defining:
            return _own_team(team, DEFAULT_CONFIG)  # an org team whose owner is not known
        return self._defined(defining, team, name) or _own_team(team, DEFAULT_CONFIG)

    def _defined(self, defining: str, key: str, name: str) -> TeamSettings | None:
        """The settings of team `name` as the file of `defining` gives them, provided that
        file still defines the team under `key`."""
        loaded = self.get(defining)
        if loaded.teams_from is None:
            return None
        for team in loaded.config.teams:
            if team.name != name:
                continue
            if team_key(name, loaded.teams_from) == key:
                return loaded.config.team_settings(key, team, home=defining)
            if key == name and _same(loaded.teams_from, defining):
                # Stored before teams were told apart by file: the name alone was the key, and
                # the home its own repository. Its PRs move to the new key at their next
                # change or sync.
                return loaded.config.team_settings(key, team, home=defining)
        return None

    def _cached(self, repo: str) -> bool:
        return bool(self.redis.exists(self.keys.config(repo)))

    def _entry(self, repo: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.keys.config(repo))
        return json.loads(raw) if raw else None

    def _store(self, repo: str, good: Fetched, error: str | None) -> None:
        entry = {
            "raw": good.raw,
            "org_wide": good.org_wide,
            "teams_from": good.teams_from,
            "error": error,
        }
        self.redis.set(self.keys.config(repo), json.dumps(entry, default=str))


def split_team_key(key: str) -> tuple[str, str | None]:
    """A team key's name and its defining repository as the key spells it (lower case); an
    org-wide team's source is its owner's `.github`, which the key does not name (""); a
    repository's own team (its key is the repository) has None."""
    name, at, source = key.rpartition("@")
    if at:
        return name, source
    return (key, None) if "/" in key else (key, "")


def team_key(name: str, teams_from: str) -> str:
    """The key of team `name` that the file of repository `teams_from` defines: its plain name
    for the org-wide file, else `name@owner/repo` (lower case: GitHub's names ignore case)."""
    if _same(teams_from, org_file_of(teams_from)):
        return name
    return f"{name}@{teams_from.lower()}"


@dataclass(frozen=True)
class Elsewhere:
    """A team that another repository's file defines: its settings are read from there."""

    key: str
    name: str
    defining: str


@functools.lru_cache(maxsize=4096)
def _team_in(repo: str, raw: bytes | None) -> tuple[TeamSettings | Elsewhere, str | None]:
    """The team `repo` belongs to by its cached entry (None: no entry, the defaults), and the
    configuration problem that left it in a team of its own, if any."""
    loaded = _parsed(repo, raw) if raw is not None else RepoConfig(DEFAULT_CONFIG)
    defining = loaded.teams_from
    if defining is None:
        return _own_team(repo, loaded.config), None
    team = loaded.config.member_team(repo, own_file=_same(defining, repo))
    if isinstance(team, Invalid):
        return _own_team(repo, loaded.config), team.message
    if team is None:
        return _own_team(repo, loaded.config), None
    key = team_key(team.name, defining)
    # The repository's configuration is the defining file's own when it is that file, or when
    # the repository has no file and the org-wide one stands for it.
    if _same(defining, repo) or (loaded.org_wide and _same(defining, org_file_of(repo))):
        return loaded.config.team_settings(key, team, home=defining), None
    return Elsewhere(key, team.name, defining), None


# Parsed configurations by repository and cached entry, shared by every RepoConfigs of the
# process: a delivery costs one GET of the entry, and parses it only when it changed.
PARSED_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=PARSED_CACHE_SIZE)
def _parsed(repo: str, raw: bytes) -> RepoConfig:
    entry = json.loads(raw)
    kept = _fetched(repo, entry)
    return RepoConfig(_good(kept), entry["error"], kept.teams_from, kept.org_wide)


def _fetched(repo: str, entry: dict[str, Any]) -> Fetched:
    if "teams_from" in entry:
        return Fetched(entry["raw"], entry["org_wide"], entry["teams_from"])
    # Cached before membership needed consent: `source` named the defining repository, None
    # the org-wide file. The next reload stores the entry afresh.
    source = entry.get("source", None if entry["org_wide"] else repo)
    return Fetched(entry["raw"], entry["org_wide"], source or org_file_of(repo))


def _own_team(repo: str, config: Config) -> TeamSettings:
    """A repository in no team: the default thresholds, its configuration's hours and rules."""
    return config.team_settings(repo, None, home=repo)


def _good(kept: Fetched) -> Config:
    validated = validate(kept.raw, org_wide=kept.org_wide)
    return validated if isinstance(validated, Config) else DEFAULT_CONFIG
