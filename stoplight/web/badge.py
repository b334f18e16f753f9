"""The public badge: a team's light as a small SVG, in the shape READMEs already carry."""

from __future__ import annotations

from stoplight.core.light import Level

LABEL = "review queue"
COLORS = {Level.GREEN: "#1a7f37", Level.YELLOW: "#bf8700", Level.RED: "#cf222e", None: "#6e7781"}
CHAR_WIDTH = 6.5  # Verdana 11px, near enough for short words
PADDING = 10


def badge_svg(level: Level | None) -> str:
    value = level.name.lower() if level is not None else "unknown"
    left = _width(LABEL)
    right = _width(value)
    total = left + right
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{LABEL}: {value}"><title>{LABEL}: {value}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{COLORS[level]}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{left / 2}" y="14">{LABEL}</text>'
        f'<text x="{left + right / 2}" y="14">{value}</text></g></svg>'
    )


def _width(text: str) -> int:
    return round(len(text) * CHAR_WIDTH) + PADDING
