"""Recorded deliveries, in time order: what a backtest feeds through the pipeline.

The file format is the one `stoplight replay` takes: JSON lines of `{"event", "payload"}` with
an optional `"delivery"` id, and here an optional `"at"`. Without `"at"`, a delivery happened
when its payload says: a review when it was submitted, a PR change when the PR was updated
(the moment the handlers take as the change's). A line with neither happened with the line
before it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stoplight.core.clock import parse_github_time


class HistoryError(ValueError):
    """A line of a recorded history that cannot be used; the message names the line."""


@dataclass(frozen=True)
class Recorded:
    at: datetime
    event: str
    payload: dict[str, Any]
    delivery: str | None = None

    def as_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"event": self.event, "payload": self.payload}
        if self.delivery is not None:
            record["delivery"] = self.delivery
        return record


def moment_of(payload: dict[str, Any]) -> datetime | None:
    """When the delivery's change happened, as its payload tells."""
    review, pull = payload.get("review"), payload.get("pull_request")
    if isinstance(review, dict) and isinstance(review.get("submitted_at"), str):
        return parse_github_time(review["submitted_at"])
    if isinstance(pull, dict) and isinstance(pull.get("updated_at"), str):
        return parse_github_time(pull["updated_at"])
    return None


def read_recorded(lines: Iterable[bytes | str]) -> list[Recorded]:
    """The deliveries of a recorded file, ordered by moment (file order within one)."""
    found: list[Recorded] = []
    previous: datetime | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            event, payload = record["event"], record["payload"]
            at = parse_github_time(record["at"]) if "at" in record else moment_of(payload)
        except (ValueError, KeyError, TypeError):
            expected = 'expected {"event": ..., "payload": {...}}'
            raise HistoryError(f"line {number}: {expected}") from None
        if not isinstance(event, str) or not isinstance(payload, dict):
            raise HistoryError(f"line {number}: event must be a name, payload an object")
        at = at or previous
        if at is None:
            raise HistoryError(f"line {number}: no moment (an `at`, or a PR's updated_at)")
        delivery = record.get("delivery")
        found.append(Recorded(at, event, payload, str(delivery) if delivery else None))
        previous = at
    return sorted(found, key=lambda recorded: recorded.at)


def write_recorded(deliveries: Iterable[Recorded]) -> Iterable[str]:
    """JSON lines a backtest, or `stoplight replay`, reads back."""
    for recorded in deliveries:
        yield json.dumps(recorded.as_json(), separators=(",", ":")) + "\n"
