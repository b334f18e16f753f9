"""The latest backtest of each team, kept in the app's Redis for the team page.

One JSON value per team beside the team's other keys (an uninstall deletes it with them),
replaced by each run that covers the team.
"""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from stoplight.state import keys


def latest_key(installation_id: int, team: str) -> str:
    return f"{keys.InstallationKeys(installation_id).team(team).root}:backtest"


def save_latest(redis: Redis, installation_id: int, team: str, report: dict[str, Any]) -> None:
    redis.set(latest_key(installation_id, team), json.dumps(report))


def load_latest(redis: Redis, installation_id: int, team: str) -> dict[str, Any] | None:
    raw = redis.get(latest_key(installation_id, team))
    return json.loads(raw) if raw else None
