"""A backtest in the terminal: per team, time in each light beside the suggestion's, what
the light would have set off, the targets the suggestion reached or why not, the weekly flow
figures, and the chart."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from stoplight.backtest.chart import render_chart
from stoplight.backtest.report import TeamResult
from stoplight.backtest.summary import TeamSummary, describe_held, describe_without_end
from stoplight.core.flow import WeekFigures
from stoplight.core.light import Level, format_duration
from stoplight.core.text import printable

STYLES = {Level.GREEN: "green", Level.YELLOW: "yellow", Level.RED: "red"}


def render(console: Console, teams: Sequence[TeamResult], snippet: str | None) -> None:
    if not teams:
        console.print("No pull requests in the window: nothing to replay.")
    for team in teams:
        console.print(_panel(team, console.width))
    if snippet is not None:
        console.print(Panel(Syntax(snippet, "yaml"), title="suggested .github/stoplight.yml"))


def _panel(team: TeamResult, width: int) -> Panel:
    run, summary, suggested = team.run, team.summary, team.suggested
    hours = summary.counted.total_seconds() / 3600
    calendar = "working hours" if summary.counted < summary.until - summary.since else "hours"
    headline = Text(
        f"{summary.since:%Y-%m-%d %H:%M} to {summary.until:%Y-%m-%d %H:%M} UTC: "
        f"{hours:.0f} {calendar} counted"
    )
    chart = render_chart(run.history, summary.since, summary.until, width=max(width - 16, 20))
    parts: list[RenderableType] = [
        headline,
        _lights(summary, suggested),
        *_targets(team),
        _weeks(summary.weeks),
        Text(""),
        chart,
    ]
    return Panel(
        Group(*parts),
        title=Text(printable(summary.name), style="bold"),  # a name from a repository's file
        subtitle=f"installation {summary.installation_id}",
        box=box.ROUNDED,
    )


def _lights(summary: TeamSummary, suggested: TeamSummary | None) -> Table:
    table = Table(box=None, pad_edge=False, header_style="dim")
    table.add_column("")
    table.add_column("current", justify="right")
    if suggested is not None:
        table.add_column("suggested", justify="right")
    for level in Level:
        row: list[RenderableType] = [
            Text(f"● {level.name.lower()}", style=STYLES[level]),
            _share(summary, level),
        ]
        if suggested is not None:
            row.append(_share(suggested, level))
        table.add_row(*row)
    rows = [
        ("light changes", lambda s: str(s.light_changes)),
        ("Slack notices", lambda s: str(s.slack_notices)),
        ("held PRs", describe_held),
        ("PRs with no end seen", describe_without_end),
    ]
    for label, value in rows:
        table.add_row(label, *(value(s) for s in (summary, suggested) if s is not None))
    return table


def _targets(team: TeamResult) -> list[Text]:
    """What the suggestion reached against its targets, and why a target was missed."""
    suggestion, targets = team.suggestion, team.targets
    if suggestion is None or suggestion.reached is None or targets is None:
        return []
    reached = suggestion.reached
    line = Text(
        f"suggestion reached {reached.yellow_or_worse:.0%} yellow or worse "
        f"(target {targets.yellow_or_worse:.0%}), {reached.red:.0%} red "
        f"(target {targets.red:.0%})",
        style="dim",
    )
    # A note may quote a team's name or limits: text, not markup.
    return [line, *(Text(f"⚠ {note}", style="yellow") for note in suggestion.notes)]


def _share(summary: TeamSummary, level: Level) -> str:
    spent = summary.time_in[level]
    return f"{spent.total_seconds() / 3600:.1f} h ({summary.share(level):.0%})"


def _weeks(weeks: Sequence[WeekFigures]) -> Group:
    # Short headings and collapsed padding: eleven columns fit beside a 90-column terminal's
    # panel; the line under the table says what they mean.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, header_style="dim")
    headings = (
        "week of", "in", "out", "held", "reviewed", "stale", "a day",
        "mean WIP", "L = λW", "median", "p85",
    )  # fmt: skip
    for heading in headings:
        table.add_column(heading, justify="left" if heading == "week of" else "right", no_wrap=True)
    for week in reversed(weeks):
        table.add_row(
            f"{week.first_day:%d %b}",
            str(week.entered),
            str(week.left),
            str(week.held),
            str(week.reviewed_held),
            str(week.went_stale),
            _number(week.throughput),
            _number(week.mean_wip),
            _number(week.throughput_x_wait),
            format_duration(week.median_wait) if week.median_wait is not None else "-",
            format_duration(week.p85_wait) if week.p85_wait is not None else "-",
        )
    legend = Text(
        "in, out: PRs entering and leaving review; held: joining the held lane, reviewed: "
        "of them, reviewed while held; stale: gone stale; a day: PRs leaving review a day; "
        "L = λW: the queue's departures a day times their mean wait",
        style="dim",
    )
    return Group(table, legend, *_agent_weeks(weeks), *_imbalances(weeks))


def _agent_weeks(weeks: Sequence[WeekFigures]) -> list[Table | Text]:
    """Agents' PRs apart from people's, for a history that has any."""
    if not any(week.agents_left for week in weeks):
        return []
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, header_style="dim")
    for heading in ("week of", "agents' out", "share", "agents' median", "people's median"):
        table.add_column(heading, justify="left" if heading == "week of" else "right", no_wrap=True)
    for week in reversed(weeks):
        table.add_row(
            f"{week.first_day:%d %b}",
            str(week.agents_left),
            f"{week.agents_share:.0%}" if week.agents_share is not None else "-",
            _duration(week.agents_median_wait),
            _duration(week.people_median_wait),
        )
    legend = Text(
        "agents' out: agents' PRs leaving review, and their share of all leaving; medians: "
        "the waits of agents' and of people's PRs leaving review",
        style="dim",
    )
    return [table, legend]


def _duration(value: timedelta | None) -> str:
    return format_duration(value) if value is not None else "-"


def _imbalances(weeks: Sequence[WeekFigures]) -> list[Text]:
    """Why mean WIP and L = λW differ, for each week where they do."""
    return [
        Text(f"week of {week.first_day:%d %b}: " + "; ".join(week.imbalance), style="dim")
        for week in reversed(weeks)
        if week.imbalance
    ]


def _number(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"
