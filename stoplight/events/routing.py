"""Probot-style routing: `@router.on("pull_request.opened")` registers a handler.

A handler takes a Delivery and returns change records; it never calls GitHub or Slack.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from stoplight.core.changes import Change

Payload = dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    payload: Payload

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def name(self) -> str:
        return f"{self.event}.{self.action}" if self.action else self.event

    @property
    def installation_id(self) -> int | None:
        return installation_id_of(self.payload)


def installation_id_of(payload: dict[str, Any]) -> int | None:
    """The installation a payload names, if it names a valid one."""
    installation = payload.get("installation")
    if not isinstance(installation, dict):
        return None
    value = installation.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


Handler = Callable[[Delivery], Iterable[Change]]


class Router:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._events: set[str] = set()

    def on(self, *names: str) -> Callable[[Handler], Handler]:
        """Register for events (`pull_request`) or event actions (`pull_request.opened`)."""

        def register(handler: Handler) -> Handler:
            for name in names:
                self._add(name, handler)
            return handler

        return register

    def include(self, other: Router) -> None:
        for name, handlers in other._handlers.items():
            for handler in handlers:
                self._add(name, handler)

    def _add(self, name: str, handler: Handler) -> None:
        self._handlers[name].append(handler)
        self._events.add(name.partition(".")[0])

    def handles_event(self, event: str) -> bool:
        """Whether any handler listens to some action of this event: a set lookup, for intake."""
        return event in self._events

    def dispatch(self, delivery: Delivery) -> list[Change]:
        handlers = [*self._handlers.get(delivery.event, ())]
        if delivery.action:
            handlers += self._handlers.get(delivery.name, ())
        return [change for handler in handlers for change in handler(delivery)]
