"""Text cut to the lengths GitHub and Slack accept, and text from outside (PR titles, team
names, logins, exception messages) made safe to show: control characters are how a title
rewrites a terminal (escape sequences) or forges a log line (a newline)."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

# Bidirectional embeddings, overrides and isolates reorder what follows them on screen
# ("Trojan Source"); the marks (LRM, RLM) only nudge neutral characters and are left alone.
_BIDI_CONTROLS = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
_WHITESPACE = {"\t": " ", "\n": " ", "\r": " "}
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Terminal sequences as a whole (CSI such as a colour or a screen clear, OSC such as a
# hyperlink or a window title), so that no half of one is left on screen.
_TERMINAL_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")


def clip(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: str) -> str:
    """`text` for one line of a terminal or a message: tabs and line breaks become spaces,
    terminal sequences, other control characters and bidirectional overrides are dropped."""
    return _TERMINAL_SEQUENCE.sub("", text).translate(_printable_table())


def escape_controls(text: str) -> str:
    """`text` with control characters and bidirectional overrides written as escapes
    (`\\n`, `\\x1b`, `\\u202e`), for a log line: what was there stays readable, and a
    newline in a message cannot start a line of its own."""
    return text.translate(_escaping_table())


def _controls() -> list[int]:
    return [point for point in range(0xA0) if unicodedata.category(chr(point)) == "Cc"] + list(
        _BIDI_CONTROLS
    )


@cache
def _printable_table() -> dict[int, str | None]:
    return {point: _WHITESPACE.get(chr(point)) for point in _controls()}


@cache
def _escaping_table() -> dict[int, str]:
    return {point: _NAMED_ESCAPES.get(chr(point), _escape(point)) for point in _controls()}


def _escape(point: int) -> str:
    return f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}"
