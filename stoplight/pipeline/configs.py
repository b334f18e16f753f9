"""Repository configurations and team settings as the pipeline reads them."""

from __future__ import annotations

from stoplight.config.repos import RepoConfigs
from stoplight.config.schema import TeamSettings
from stoplight.pipeline.runtime import Runtime


def repo_configs(rt: Runtime, installation_id: int) -> RepoConfigs:
    """Configurations as a worker sees them: read from GitHub when not yet cached."""
    client = rt.github.installation(installation_id) if rt.github else None
    return RepoConfigs(rt.redis, installation_id, client)


def team_settings(rt: Runtime, installation_id: int, team: str) -> TeamSettings:
    """A team's policy, rules and labels, from the cached configuration."""
    return RepoConfigs(rt.redis, installation_id).team(team)
