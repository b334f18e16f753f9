"""The 14-day chart of a team's queue, drawn as inline SVG on the server.

Three small panels share the time axis (PRs waiting, oldest wait, lines waiting), each over
soft bands of the light, with the team's yellow and red thresholds as dashed lines. Built with
the standard library's ElementTree, which escapes every text and attribute: no script, no web
font, nothing fetched, so it works in a closed network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from xml.etree import ElementTree as ET

from markupsafe import Markup

from stoplight.core.flow import ChartSeries, Point
from stoplight.core.light import Level, Policy, Thresholds, format_duration

WIDTH = 640
LEFT = 56  # room for the value labels
RIGHT = 12
PANEL_HEIGHT = 84
TITLE_HEIGHT = 22
GAP = 14
AXIS_HEIGHT = 26
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"

BAND_COLOURS = {Level.GREEN: "#dafbe1", Level.YELLOW: "#fff1b8", Level.RED: "#ffd8d3"}
INK = "#1f2328"
MUTED = "#59636e"
GRID = "#d0d7de"
LINE_COLOURS = {"waiting": "#0969da", "oldest": "#8250df", "lines": "#bc4c00"}
LIMIT_COLOURS = {Level.YELLOW: "#bf8700", Level.RED: "#cf222e"}

HOUR = 3600.0
# Scale tops for the oldest wait, in seconds: round hours, then round days.
WAIT_TOPS = tuple(HOUR * h for h in (1, 2, 4, 8, 12, 24, 48, 72, 96, 168, 336, 720, 1440, 2160))


@dataclass(frozen=True)
class Panel:
    name: str  # the series' class in the SVG
    title: str
    points: tuple[Point, ...]
    stepped: bool
    limits: dict[Level, float]  # the thresholds the team set for this measure
    top: float
    show: Callable[[float], str]


def render_chart(series: ChartSeries, title: str, policy: Policy | None = None) -> Markup:
    """The chart as an `<svg>` element that scales to its container's width; with the
    team's `policy`, its thresholds are drawn too."""
    height = 3 * (TITLE_HEIGHT + PANEL_HEIGHT + GAP) + AXIS_HEIGHT
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {WIDTH} {height}",
            "width": "100%",
            "role": "img",
            "aria-label": title,
            "class": "flow-chart",
            "font-family": FONT,
            "font-size": "13",
        },
    )
    ET.SubElement(svg, "title").text = title
    ET.SubElement(svg, "desc").text = _summary(series)
    scale = _TimeScale(series.start, series.end)
    for index, panel in enumerate(_panels(series, policy)):
        top = index * (TITLE_HEIGHT + PANEL_HEIGHT + GAP) + TITLE_HEIGHT
        _draw_panel(svg, panel, series, scale, top)
    _draw_days(svg, series, scale, height - AXIS_HEIGHT - GAP)
    return Markup(ET.tostring(svg, encoding="unicode"))


def _panels(series: ChartSeries, policy: Policy | None) -> list[Panel]:
    levels = ((Level.YELLOW, policy.yellow), (Level.RED, policy.red)) if policy else ()

    def limits(pick: Callable[[Thresholds], float | None]) -> dict[Level, float]:
        return {level: value for level, set_at in levels if (value := pick(set_at)) is not None}

    waiting = limits(lambda t: t.waiting)
    oldest = limits(lambda t: t.oldest.total_seconds() if t.oldest is not None else None)
    lines = limits(lambda t: t.lines)
    return [
        Panel(
            "waiting",
            "PRs waiting",
            series.waiting,
            stepped=True,
            limits=waiting,
            top=_nice_top(_highest(series.waiting, waiting), minimum=4),
            show=lambda value: f"{value:g}",
        ),
        Panel(
            "oldest",
            "Oldest wait",
            series.oldest,
            stepped=False,
            limits=oldest,
            top=next((t for t in WAIT_TOPS if t >= _highest(series.oldest, oldest)), WAIT_TOPS[-1]),
            show=lambda value: format_duration(timedelta(seconds=value)) if value else "0",
        ),
        Panel(
            "lines",
            "Lines waiting",
            series.lines,
            stepped=True,
            limits=lines,
            top=_nice_top(_highest(series.lines, lines), minimum=100),
            show=lambda value: f"{value:,.0f}",
        ),
    ]


class _TimeScale:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.span = max((end - start).total_seconds(), 1.0)

    def x(self, moment: datetime) -> float:
        share = (moment - self.start).total_seconds() / self.span
        return LEFT + min(max(share, 0.0), 1.0) * (WIDTH - LEFT - RIGHT)


def _draw_panel(
    svg: ET.Element, panel: Panel, series: ChartSeries, scale: _TimeScale, top: int
) -> None:
    group = ET.SubElement(svg, "g", {"class": f"panel {panel.name}"})
    label = ET.SubElement(group, "text", {"x": str(LEFT), "y": str(top - 7), "fill": INK})
    label.text = panel.title
    if panel.points:
        now = ET.SubElement(
            group,
            "text",
            {"x": str(WIDTH - RIGHT), "y": str(top - 7), "fill": MUTED, "text-anchor": "end"},
        )
        now.text = f"now {panel.show(_value_at_end(panel, series))}"
    for band in series.bands:
        x0, x1 = scale.x(band.start), scale.x(band.end)
        ET.SubElement(
            group,
            "rect",
            {
                "class": f"band {band.level.name.lower()}",
                "x": _num(x0),
                "y": str(top),
                "width": _num(x1 - x0),
                "height": str(PANEL_HEIGHT),
                "fill": BAND_COLOURS[band.level],
            },
        )
    bottom = top + PANEL_HEIGHT
    for y, value in ((top, panel.top), (bottom, 0.0)):
        ET.SubElement(
            group,
            "line",
            {"x1": str(LEFT), "x2": str(WIDTH - RIGHT), "y1": str(y), "y2": str(y), "stroke": GRID},
        )
        tick = ET.SubElement(
            group,
            "text",
            {"x": str(LEFT - 6), "y": str(y + 4), "fill": MUTED, "text-anchor": "end"},
        )
        tick.text = panel.show(value)
    for level, limit in panel.limits.items():
        if limit <= panel.top:
            limit_y = _num(bottom - limit / panel.top * PANEL_HEIGHT)
            ET.SubElement(
                group,
                "line",
                {
                    "class": f"limit {level.name.lower()}",
                    "x1": str(LEFT),
                    "x2": str(WIDTH - RIGHT),
                    "y1": limit_y,
                    "y2": limit_y,
                    "stroke": LIMIT_COLOURS[level],
                    "stroke-dasharray": "6 4",
                },
            )

    def y_of(value: float) -> float:
        return bottom - min(value / panel.top, 1.0) * PANEL_HEIGHT

    ET.SubElement(
        group,
        "path",
        {
            "class": f"series {panel.name}",
            "d": _path(panel.points, scale, y_of, panel.stepped, series.end),
            "fill": "none",
            "stroke": LINE_COLOURS[panel.name],
            "stroke-width": "2",
            "stroke-linejoin": "round",
        },
    )


def _path(
    points: Sequence[Point],
    scale: _TimeScale,
    y_of: Callable[[float], float],
    stepped: bool,
    end: datetime,
) -> str:
    if not points:
        return ""
    commands = [f"M{_num(scale.x(points[0].at))} {_num(y_of(points[0].value))}"]
    for point in points[1:]:
        x, y = _num(scale.x(point.at)), _num(y_of(point.value))
        commands.append(f"H{x} V{y}" if stepped else f"L{x} {y}")
    if stepped:
        commands.append(f"H{_num(scale.x(end))}")
    return " ".join(commands)


def _draw_days(svg: ET.Element, series: ChartSeries, scale: _TimeScale, axis_y: int) -> None:
    """A faint line at each midnight in the team's timezone, every other one labelled."""
    group = ET.SubElement(svg, "g", {"class": "days", "fill": MUTED, "text-anchor": "middle"})
    day = series.start.astimezone(series.timezone).date() + timedelta(days=1)
    last = series.end.astimezone(series.timezone).date()
    index = 0
    while day <= last:
        midnight = datetime.combine(day, time(0), tzinfo=series.timezone)
        x = _num(scale.x(midnight))
        ET.SubElement(
            group,
            "line",
            {
                "x1": x,
                "x2": x,
                "y1": str(TITLE_HEIGHT),
                "y2": str(axis_y + 4),
                "stroke": GRID,
                "stroke-dasharray": "2 3",
            },
        )
        if index % 2 == 0:
            label = ET.SubElement(group, "text", {"x": x, "y": str(axis_y + 20)})
            label.text = f"{day:%a} {day.day}"
        day += timedelta(days=1)
        index += 1


def _summary(series: ChartSeries) -> str:
    """The chart in words, for screen readers."""
    waiting = max((p.value for p in series.waiting), default=0)
    oldest = max((p.value for p in series.oldest), default=0)
    lines = max((p.value for p in series.lines), default=0)
    return (
        f"From {series.start:%Y-%m-%d} to {series.end:%Y-%m-%d}: at most {waiting:g} PRs "
        f"waiting, an oldest wait of at most {format_duration(timedelta(seconds=oldest))}, "
        f"at most {lines:,.0f} lines waiting."
    )


def _value_at_end(panel: Panel, series: ChartSeries) -> float:
    return panel.points[-1].value if panel.points else 0.0


def _highest(points: Sequence[Point], limits: dict[Level, float]) -> float:
    """What the scale must reach: the highest value, and the yellow threshold if set."""
    return max([point.value for point in points] + [limits.get(Level.YELLOW, 0.0)])


def _nice_top(value: float, minimum: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above `value` (and `minimum`)."""
    top = minimum
    while top < value:
        top = _next_nice(top)
    return top


def _next_nice(value: float) -> float:
    magnitude = 10 ** (len(str(int(value))) - 1)
    return next(float(step * magnitude) for step in (1, 2, 5, 10) if step * magnitude > value)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")
