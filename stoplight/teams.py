"""Each repository's configuration, read from GitHub by workers and cached in Redis.

Lookup follows Probot: the repository's own `.github/stoplight.yml`, else the one in the org's
`.github` repository; `_extends` inherits another repository's file. A file that does not
validate leaves the last good configuration (or the defaults) in force, with its error kept
beside it for the PRs' statuses.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from redis import Redis

from stoplight import keys
from stoplight.config import (
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
from stoplight.github import InstallationClient

log = logging.getLogger(__name__)
ORG_CONFIG_REPO = ".github"


@dataclass(frozen=True)
class RepoConfig:
    config: Config
    error: str | None = None  # the message of the file's error; `config` is the last good one


def fetch(client: InstallationClient, repo: str) -> tuple[dict[str, Any], bool] | Invalid:
    """The repository's merged raw configuration and whether it is the org-wide file."""
    owner = repo.partition("/")[0]
    text, org_wide = client.read_file(repo, CONFIG_PATH), False
    if text is None:
        text, org_wide = client.read_file(f"{owner}/{ORG_CONFIG_REPO}", CONFIG_PATH), True
    if text is None:
        return {}, False
    raw = parse_yaml(text)
    if isinstance(raw, Invalid) or not isinstance(raw.get("_extends"), str):
        return raw if isinstance(raw, Invalid) else (raw, org_wide)
    base_repo = raw["_extends"] if "/" in raw["_extends"] else f"{owner}/{raw['_extends']}"
    base_text = client.read_file(base_repo, CONFIG_PATH)
    if base_text is None:
        return Invalid((ConfigError("_extends", f"{base_repo} has no {CONFIG_PATH}"),))
    base = parse_yaml(base_text)
    if isinstance(base, Invalid):
        return Invalid(tuple(_within(base_repo, error) for error in base.errors))
    base.pop("_extends", None)  # one level of inheritance, as in Probot
    return deep_merge(base, raw), org_wide


def _within(repo: str, error: ConfigError) -> ConfigError:
    return ConfigError("_extends", f"{repo}: {error}")


class RepoConfigs:
    """Repository configurations of one installation, cached in Redis.

    With a GitHub client (in a worker) a repository not yet cached is read from GitHub; without
    one (the web process) the cache alone answers and an unknown repository has the defaults.
    """

    def __init__(
        self, redis: Redis, installation_id: int, client: InstallationClient | None = None
    ) -> None:
        self.redis = redis
        self.client = client
        self.keys = keys.InstallationKeys(installation_id)

    def reload(self, repo: str) -> RepoConfig:
        """Read the repository's file from GitHub and cache it, keeping the last good one."""
        if self.client is None:
            return self.get(repo)
        fetched = fetch(self.client, repo)
        if isinstance(fetched, tuple):
            validated = validate(fetched[0], org_wide=fetched[1])
            if isinstance(validated, Config):
                self._store(repo, fetched, None)
                return RepoConfig(validated)
            fetched = validated
        log.warning("%s: %s", repo, fetched.message)
        kept = self._entry(repo)
        last_good = (kept["raw"], kept["org_wide"]) if kept else ({}, False)
        self._store(repo, last_good, fetched.message)
        return RepoConfig(_good(last_good), fetched.message)

    def get(self, repo: str) -> RepoConfig:
        entry = self._entry(repo)
        if entry is None:
            return self.reload(repo) if self.client else RepoConfig(DEFAULT_CONFIG)
        return RepoConfig(_good((entry["raw"], entry["org_wide"])), entry["error"])

    def error(self, repo: str) -> str | None:
        """The repository's configuration error, from the cache only."""
        entry = self._entry(repo)
        return entry["error"] if entry else None

    def repos(self) -> list[str]:
        prefix = self.keys.config("")
        found = self.redis.scan_iter(match=f"{prefix}*", count=500)
        return sorted(name.decode()[len(prefix) :] for name in found)

    def team_of_repo(self, repo: str) -> TeamSettings:
        """The team a repository's PRs belong to, remembered so its key finds it again."""
        found = self.get(repo).config.team_for(repo)
        if isinstance(found, Invalid):
            log.warning("%s: %s", repo, found.message)
            found = _own_team(repo)
        self.redis.hset(self.keys.team_homes, found.key, repo)
        return found

    def team(self, team: str) -> TeamSettings:
        """A team's settings by its key (the defaults for a team no configuration names)."""
        home = self.redis.hget(self.keys.team_homes, team)
        repo = home.decode() if home else team
        found = self.get(repo).config.team_for(repo)
        if isinstance(found, TeamSettings) and found.key == team:
            return found
        return _own_team(team)

    def _entry(self, repo: str) -> dict[str, Any] | None:
        raw = self.redis.get(self.keys.config(repo))
        return json.loads(raw) if raw else None

    def _store(self, repo: str, good: tuple[dict[str, Any], bool], error: str | None) -> None:
        entry = {"raw": good[0], "org_wide": good[1], "error": error}
        self.redis.set(self.keys.config(repo), json.dumps(entry, default=str))


def _own_team(repo: str) -> TeamSettings:
    found = DEFAULT_CONFIG.team_for(repo)
    assert isinstance(found, TeamSettings)
    return found


def _good(kept: tuple[dict[str, Any], bool]) -> Config:
    validated = validate(kept[0], org_wide=kept[1])
    return validated if isinstance(validated, Config) else DEFAULT_CONFIG
