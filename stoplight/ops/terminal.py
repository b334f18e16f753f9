"""`stoplight status`: every team's light and queue, for a terminal (rich) or a script (JSON)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from redis import Redis
from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from stoplight.config.repos import RepoConfigs
from stoplight.core.light import Level, format_duration
from stoplight.core.marks import size_label
from stoplight.core.text import printable
from stoplight.state.installations import installation_ids
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import TeamView, limit_text, team_view

STYLES = {Level.GREEN: "bold green", Level.YELLOW: "bold yellow", Level.RED: "bold red"}


def team_views(redis: Redis, now: datetime) -> list[TeamView]:
    """Every team of every installation, installations and teams in order."""
    views = []
    for installation_id in installation_ids(redis):
        store, configs = QueueStore(redis, installation_id), RepoConfigs(redis, installation_id)
        for key, name in sorted(store.teams().items()):
            views.append(team_view(store, key, name, configs.team(key), now))
    return views


def render(console: Console, views: Sequence[TeamView]) -> None:
    if not views:
        console.print("No teams yet: Stoplight has not seen a pull request.")
        return
    for view in views:
        console.print(_panel(view))


def _panel(view: TeamView) -> Panel:
    light = view.level.label.upper() if view.level is not None else "UNKNOWN"
    style = STYLES[view.level] if view.level is not None else "bold"
    headline = Text.assemble(("● ", style), (light, style))
    if view.since is not None:
        headline.append(f"  since {view.since:%Y-%m-%d %H:%M} UTC")
    headline.append(f"  ·  {view.held} held")
    if view.agents.waiting or view.agents.held:
        headline.append(f"  ·  agents' PRs: {view.agents.waiting} waiting, {view.agents.held} held")
    if view.stale:
        headline.append(f"  ·  {view.stale} stale")
    parts: list[RenderableType] = [headline, _measures(view), _pulls(view)]
    if view.stale_line:
        parts.append(_stale(view))
    return Panel(
        Group(*parts),
        # Names, logins and titles come from repositories: Text, never markup, and printable.
        title=Text(printable(view.name), style="bold"),
        subtitle=f"installation {view.installation_id}",
        box=box.ROUNDED,
    )


def _measures(view: TeamView) -> Table:
    table = Table(box=None, pad_edge=False, header_style="dim")
    for column in ("measure", "now", "yellow at", "red at"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    yellow, red = view.limits(Level.YELLOW), view.limits(Level.RED)
    table.add_row(
        "waiting", str(view.measures.waiting), limit_text(yellow.waiting), limit_text(red.waiting)
    )
    table.add_row(
        "oldest wait",
        format_duration(view.oldest),
        limit_text(yellow.oldest, format_duration),
        limit_text(red.oldest, format_duration),
    )
    table.add_row(
        "lines",
        f"{view.measures.lines:,}",
        limit_text(yellow.lines, "{:,}".format),
        limit_text(red.lines, "{:,}".format),
    )
    return table


def _pulls(view: TeamView) -> Table | Text:
    if not view.waiting:
        return Text("Nothing is waiting for review.", style="dim")
    table = Table(box=None, pad_edge=False, header_style="dim", title_justify="left")
    table.add_column("oldest first", no_wrap=True)
    table.add_column("waited", justify="right", no_wrap=True)
    table.add_column("size", no_wrap=True)
    table.add_column("reviewers", overflow="ellipsis", no_wrap=True, max_width=16)
    # A wrappable column is the one rich narrows; its cells still keep to one line.
    table.add_column("title", ratio=1)
    for waiting in view.waiting:
        pull = waiting.record
        ref = Text(printable(f"{pull.repo}#{pull.number}"), style=Style(link=pull.url))
        size = size_label(pull.lines).name.removeprefix("size/")
        table.add_row(
            ref,
            format_duration(waiting.waited),
            f"{size} ({pull.lines:,})",
            Text(printable(", ".join(pull.requested_reviewers)) or "none"),
            Text(printable(pull.title), no_wrap=True, overflow="ellipsis"),
        )
    return table


def _stale(view: TeamView) -> Group:
    """The stale PRs, apart from the queue they left."""
    assert view.policy.stale_after is not None
    after = format_duration(view.policy.stale_after)
    heading = Text(f"stale: waiting over {after}, out of the measures", style="dim")
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("longest first", no_wrap=True)
    table.add_column("left for", justify="right", no_wrap=True)
    table.add_column("title", ratio=1)
    for stale in view.stale_line:
        pull = stale.record
        ref = Text(printable(f"{pull.repo}#{pull.number}"), style=Style(link=pull.url))
        name = Text(printable(pull.title), no_wrap=True, overflow="ellipsis")
        table.add_row(ref, format_duration(stale.waited), name)
    return Group(heading, table)


def as_json(views: Iterable[TeamView]) -> dict[str, Any]:
    """Stable keys for scripts; durations in seconds, moments in ISO 8601 UTC."""
    installations: dict[int, list[dict[str, Any]]] = {}
    for view in views:
        installations.setdefault(view.installation_id, []).append(view.as_json())
    return {
        "installations": [
            {"id": installation_id, "teams": teams}
            for installation_id, teams in installations.items()
        ]
    }
