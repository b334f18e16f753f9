"""What `/stoplight` answers, in Slack's mrkdwn, to the person alone. Pure.

A team's answer: its light with the thresholds its measures reach, the next PRs for the person
to review (each with link, title, wait and size), and the PRs they claimed.
"""

from __future__ import annotations

from collections.abc import Sequence

from stoplight.core.light import format_duration
from stoplight.core.marks import size_label
from stoplight.core.pulls import PullRecord
from stoplight.core.text import clip, printable
from stoplight.effects.notice_blocks import ICONS, MAX_TITLE, escape
from stoplight.state.views import TeamView, WaitingPull

COMMAND = "/stoplight"
HELP = "\n".join(
    [
        f"*{COMMAND}* answers only you:",
        f"• `{COMMAND}`: your team's light, the PRs for you to review next, and your claims",
        f"• `{COMMAND} TEAM`: the same for another team you may see on GitHub",
        f"• `{COMMAND} unlink`: forget the GitHub account you linked",
        f"• `{COMMAND} help`: this list",
    ]
)


def team_answer(
    view: TeamView,
    login: str,
    next_pulls: Sequence[WaitingPull],
    claimed: Sequence[PullRecord],
    other_teams: Sequence[str] = (),
) -> str:
    """The team's light and reasons, the next PRs for `login`, their claims; with `other_teams`
    (the person's other teams, by name), which team this is and how to ask for another."""
    lines = [_light_line(view), f"*Next for you to review* (@{escape(login)}):"]
    lines += [f"• {_pull_line(pull.record)}, waiting {format_duration(pull.waited)}"
              for pull in next_pulls] or ["Nothing waits for a review of yours."]  # fmt: skip
    lines.append("*Your claims:*")
    lines += [f"• {_pull_line(record)}" for record in claimed] or ["none."]
    if other_teams:
        names = ", ".join(escape(name) for name in other_teams)
        lines.append(
            f"Answered for team {escape(view.name)}. Your other teams: {names}; "
            f"`{COMMAND} TEAM` answers for one of them."
        )
    return "\n".join(lines)


def no_such_team(asked: str) -> str:
    """One answer for a team that does not exist and one the person may not see."""
    return (
        f"Stoplight knows no team “{escape(clip(printable(asked), MAX_TITLE))}” that you can see. "
        f"`{COMMAND} help` lists what you can ask."
    )


def no_team_of_yours() -> str:
    return (
        "Stoplight finds no team of yours: none lists you in `slack_users`, this channel is no "
        f"team's, and no open PR is yours or asks for your review. `{COMMAND} TEAM` answers for "
        "a team by its name."
    )


def _light_line(view: TeamView) -> str:
    icon = ICONS[view.level] if view.level is not None else "⚪"
    light = view.level.label.lower() if view.level is not None else "not known yet"
    measures = (
        f"{view.measures.waiting} waiting, oldest {format_duration(view.oldest)}, "
        f"{view.measures.lines:,} lines"
    )
    reasons = "; ".join(view.reasons) if view.reasons else "no threshold reached"
    return f"{icon} *{escape(view.name)}*: {light}. {measures}: {reasons}."


def _pull_line(record: PullRecord) -> str:
    title = escape(clip(printable(record.title), MAX_TITLE))
    size = f"{size_label(record.lines).name} ({record.lines:,} lines)"
    return f"<{record.url}|{record.repo}#{record.number}> {title} · {size}"
