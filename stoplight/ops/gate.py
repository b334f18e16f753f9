"""`stoplight gate`: exit 0 when a new PR would enter review now, 1 when it would be held.

It reads the pull signal, from the local state or from a running Stoplight's endpoint, and with
a wait asks again (as soon as the light could change, at least every minute) until the PR
would enter or the time is up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import requests
from redis import Redis

from stoplight.config.repos import RepoConfigs
from stoplight.core.clock import Clock
from stoplight.state.installations import installation_ids
from stoplight.state.pull_signal import load_signal
from stoplight.state.review_queue import QueueStore

FEWEST_SECONDS_BETWEEN_ASKS = 5
MOST_SECONDS_BETWEEN_ASKS = 60

Ask = Callable[[], dict[str, Any]]  # the signal's JSON


class GateError(Exception):
    """The signal could not be read: exit 2, with this message."""


class RateLimited(GateError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the signal is rate-limited: try again in {retry_after}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Answer:
    enters: bool
    line: str  # "go: ..." or "held: ..."
    retry_after_seconds: int | None


def read_answer(signal: dict[str, Any], *, agent: bool) -> Answer:
    entry = signal["held_if_opened_now"]["agent" if agent else "human"]
    word = "held" if entry["held"] else "go"
    return Answer(not entry["held"], f"{word}: {entry['why']}", signal["retry_after_seconds"])


def gate(
    ask: Ask,
    *,
    agent: bool,
    wait: timedelta,
    clock: Clock,
    sleep: Callable[[float], None],
    note: Callable[[str], None] = lambda line: None,
) -> Answer:
    """The answer once the PR would enter, or the last one when `wait` is up."""
    deadline = clock.now() + wait
    while True:
        try:
            answer = read_answer(ask(), agent=agent)
            pause: float = answer.retry_after_seconds or MOST_SECONDS_BETWEEN_ASKS
        except RateLimited as limited:
            if clock.now() >= deadline:
                raise
            answer, pause = None, limited.retry_after
        left = (deadline - clock.now()).total_seconds()
        if answer is not None and (answer.enters or left <= 0):
            return answer
        if left <= 0:
            raise GateError("the signal stayed rate-limited until the wait was up")
        pause = min(max(pause, FEWEST_SECONDS_BETWEEN_ASKS), MOST_SECONDS_BETWEEN_ASKS, left)
        if answer is not None:
            note(f"{answer.line}; asking again in {int(pause)}s")
        sleep(pause)


def local_signal(
    redis: Redis, installation_id: int, team: str, clock: Clock, person: str | None
) -> Ask:
    """The signal read from the state directly, as the endpoint reads it."""

    def ask() -> dict[str, Any]:
        settings = RepoConfigs(redis, installation_id).team(team)
        found = load_signal(redis, installation_id, team, clock.now(), settings, person)
        if found is None:
            raise GateError(f"installation {installation_id} has no team {team!r}")
        return found.as_json()

    return ask


def remote_signal(
    base_url: str, installation_id: int, team: str, token: str, person: str | None
) -> Ask:
    """The signal from a running Stoplight's endpoint, with a bearer token."""
    url = f"{base_url.rstrip('/')}/api/signal/{installation_id}/{quote(team, safe='')}"

    def ask() -> dict[str, Any]:
        try:
            response = requests.get(
                url,
                headers={"Authorization": f"Bearer {token}"},
                params={"person": person} if person else None,
                timeout=10,
            )
        except requests.RequestException as error:
            raise GateError(f"cannot reach {base_url}: {error}") from None
        if response.status_code == 404:
            raise GateError(
                "the signal answered 404: the token is wrong or revoked, or it is not for "
                f"team {team!r} of installation {installation_id}"
            )
        if response.status_code == 429:
            raise RateLimited(int(response.headers.get("Retry-After", MOST_SECONDS_BETWEEN_ASKS)))
        if response.status_code != 200:
            raise GateError(f"the signal answered {response.status_code}")
        signal: dict[str, Any] = response.json()
        return signal

    return ask


def installations_with_team(redis: Redis, team: str) -> list[int]:
    """The installations that have seen a team keyed `team`."""
    return [each for each in installation_ids(redis) if team in QueueStore(redis, each).teams()]
