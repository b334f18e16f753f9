"""What a PR shows on GitHub, as values: its `stoplight` status and the labels the app manages."""

from __future__ import annotations

from dataclasses import dataclass

STATUS_CONTEXT = "stoplight"


@dataclass(frozen=True)
class Status:
    state: str  # success | pending | error | failure
    description: str
    target_url: str

    def fingerprint(self) -> str:
        return f"{self.state}\x1f{self.description}\x1f{self.target_url}"


@dataclass(frozen=True)
class LabelSpec:
    name: str
    color: str
    description: str


# Prow's size buckets: (upper bound exclusive, label, color).
SIZES: tuple[tuple[float, LabelSpec], ...] = (
    (10, LabelSpec("size/XS", "009900", "Changes 0-9 lines")),
    (30, LabelSpec("size/S", "77bb00", "Changes 10-29 lines")),
    (100, LabelSpec("size/M", "eebb00", "Changes 30-99 lines")),
    (500, LabelSpec("size/L", "ee9900", "Changes 100-499 lines")),
    (1000, LabelSpec("size/XL", "ee5500", "Changes 500-999 lines")),
    (float("inf"), LabelSpec("size/XXL", "ee0000", "Changes 1000+ lines")),
)
SIZE_LABELS = frozenset(spec.name for _, spec in SIZES)
HELD_LABEL = LabelSpec("stoplight:held", "fbca04", "Waiting to enter the review queue")
SWARM_LABEL = LabelSpec("stoplight:swarm", "d93f0b", "Review this first: the queue is red")
STALE_LABEL = LabelSpec(
    "stoplight:stale", "cccccc", "Waited so long it left the review queue: push or re-request"
)
MANAGED_LABELS = SIZE_LABELS | {HELD_LABEL.name, SWARM_LABEL.name, STALE_LABEL.name}


def size_label(lines: int) -> LabelSpec:
    return next(spec for bound, spec in SIZES if lines < bound)
