"""The terminal chart of a backtest: the waiting count over the window, one column per slice
of time, each column as high as the most PRs waiting in it and coloured by the worst light."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text

from stoplight.core.flow import History
from stoplight.core.light import Level

COLOURS = {Level.GREEN: "green", Level.YELLOW: "yellow", Level.RED: "red"}
BLOCKS = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Column:
    start: datetime
    waiting: int  # the most PRs waiting at once in the column's slice
    level: Level  # the worst light in it


def columns(history: History, since: datetime, until: datetime, width: int) -> list[Column]:
    """`width` equal slices of [since, until]."""
    span = (until - since) / width
    starts = [since + span * n for n in range(width)]
    waiting = _highest([(s.at, s.waiting) for s in history.samples], starts, until)
    lights = _highest([(c.at, int(c.level)) for c in history.lights], starts, until)
    return [
        Column(start, count, Level(level))
        for start, count, level in zip(starts, waiting, lights, strict=True)
    ]


def _highest(
    steps: Sequence[tuple[datetime, int]], starts: list[datetime], until: datetime
) -> list[int]:
    """Per slice, the highest value of a step function (0, empty or green, before its first)."""
    moments = [moment for moment, _ in steps]
    found = []
    for start, end in zip(starts, [*starts[1:], until], strict=True):
        first = bisect.bisect_right(moments, start) - 1
        last = bisect.bisect_left(moments, end)
        values = [steps[n][1] for n in range(max(first, 0), last)]
        if first < 0:
            values.append(0)
        found.append(max(values))
    return found


def render_chart(
    history: History, since: datetime, until: datetime, *, width: int = 72, height: int = 8
) -> Text:
    """The chart as rich text: `height` rows of eighth-blocks, a scale and the dates."""
    cols = columns(history, since, until, width)
    top = max((column.waiting for column in cols), default=0) or 1
    text = Text()
    for row in range(height, 0, -1):
        label = f"{top:>4} " if row == height else "     "
        text.append(label, style="dim")
        for column in cols:
            eighths = round(column.waiting / top * height * 8) - (row - 1) * 8
            block = BLOCKS[max(0, min(eighths, 8))]
            text.append(block, style=COLOURS[column.level])
        text.append("\n")
    text.append("   0 " + "─" * width + "\n", style="dim")
    left, right = f"{since:%Y-%m-%d}", f"{until:%Y-%m-%d}"
    text.append("     " + left + " " * max(width - len(left) - len(right), 1) + right, style="dim")
    return text
