"""What a team's Slack notice says: Block Kit blocks and a plain-text fallback. Pure.

A notice is built from the team's view (light, measures, thresholds, longest-waiting PRs), the
light it replaces and the held count, so the same inputs always give the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from stoplight.clients.slack import Message
from stoplight.core.light import Level, LightState, format_duration
from stoplight.core.marks import size_label
from stoplight.core.text import clip, printable
from stoplight.state.views import TeamView, WaitingPull, limit_text

# Block Kit's limits, and how much of each PR a notice shows.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_TITLE = 200
PULLS_LISTED = 5
CLAIM_ACTION = "claim"
CLAIM_BUTTON = "I'll review"
STALE_LISTED = 3

ICONS = {Level.GREEN: "🟢", Level.YELLOW: "🟡", Level.RED: "🔴"}
HEADLINES = {
    Level.GREEN: "{name} is green again",
    Level.YELLOW: "{name} is yellow: review queue filling",
    Level.RED: "{name} is red: swarm on reviews",
}


@dataclass(frozen=True)
class NoticeContext:
    """What a notice needs beyond the team's view."""

    previous: LightState
    users: Mapping[str, str] = field(default_factory=dict)  # GitHub login -> Slack member id
    team_url: str | None = None
    buttons: bool = False  # an "I'll review" button on each PR (Slack can call the app back)


def light_notice(view: TeamView, context: NoticeContext) -> Message:
    """The notice for the team's change from `context.previous` to its current light."""
    assert view.level is not None and view.since is not None
    level = view.level
    blocks: list[dict[str, Any]] = [
        _header(f"{ICONS[level]} {HEADLINES[level].format(name=view.name)}"),
        _section(_call_to_action(view, context)),
        _measures(view),
    ]
    listed = view.waiting[:PULLS_LISTED] if level is not Level.GREEN else ()
    blocks += [_pull_block(view.installation_id, pull, context) for pull in listed]
    if view.stale_line:
        blocks.append(_section(_stale_line(view)))
    footer = _footer(view, len(listed), context.team_url)
    if footer:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    assert len(blocks) <= MAX_BLOCKS
    return Message(text=_fallback(view, listed, context), blocks=blocks)


def red_fingerprint(view: TeamView) -> str:
    """What a red notice's update depends on: the PRs it lists and the counts it shows."""
    listed = ",".join(_claimed_key(pull) for pull in view.waiting[:PULLS_LISTED])
    stale = ",".join(pull.record.key for pull in view.stale_line[:STALE_LISTED])
    agents = f"{view.agents.waiting}|{view.agents.held}"
    return f"{listed}|{view.measures.waiting}|{view.measures.lines}|{view.held}|{stale}|{agents}"


def claim_value(installation_id: int, pull_key: str) -> str:
    """What an "I'll review" button carries back: the installation and the PR."""
    return f"{installation_id}|{pull_key}"


def _claimed_key(pull: WaitingPull) -> str:
    return f"{pull.record.key}@{pull.claimed_by}" if pull.claimed_by else pull.record.key


def escape(text: str) -> str:
    """Slack's mrkdwn reserves &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER_TEXT)}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}}


def _call_to_action(view: TeamView, context: NoticeContext) -> str:
    was = context.previous.level.label.lower()
    lasted = format_duration(_lasted(view, context))
    match view.level:
        case Level.RED:
            return (
                "*Stop starting new work. Review these PRs first*, oldest first, "
                f"until the queue clears.\n{_held_line(view.held)}{_agents_line(view)}"
            )
        case Level.YELLOW if context.previous.level is Level.RED:
            return (
                f"Out of red after {lasted}. Before starting new work, review a teammate's PR."
                f"{_agents_line(view)}"
            )
        case Level.YELLOW:
            return (
                "The queue is filling. Before starting new work, review a teammate's PR."
                f"{_agents_line(view)}"
            )
        case _:
            return f"All clear: the review queue is flowing again after {lasted} at {was}."


def _lasted(view: TeamView, context: NoticeContext) -> timedelta:
    assert view.since is not None
    return max(view.since - context.previous.since, timedelta(0))


def _agents_line(view: TeamView) -> str:
    """One short line: how many of the waiting and held PRs are agents', and whose."""
    share = view.agents
    if not share.waiting and not share.held:
        return ""
    counted = [f"{share.waiting} of {view.measures.waiting} waiting"]
    if view.held:
        counted.append(f"{share.held} of {view.held} held")
    whose = ", ".join(f"{escape(name)} {count}" for name, count in share.whose)
    return f"\n{' and '.join(counted)} are agents' ({whose})"


def _held_line(held: int) -> str:
    if held == 0:
        return "No PR is held yet: new PRs wait in the held lane while the light is red."
    if held == 1:
        return "1 PR is held and enters review as the queue drains."
    return f"{held} PRs are held and enter review as the queue drains."


def _measures(view: TeamView) -> dict[str, Any]:
    yellow, red = view.limits(Level.YELLOW), view.limits(Level.RED)
    thousands = "{:,}".format
    rows = (
        (
            "Waiting",
            f"{view.measures.waiting} PRs",
            limit_text(yellow.waiting),
            limit_text(red.waiting),
        ),
        (
            "Oldest wait",
            format_duration(view.oldest),
            limit_text(yellow.oldest, format_duration),
            limit_text(red.oldest, format_duration),
        ),
        (
            "Lines waiting",
            thousands(view.measures.lines),
            limit_text(yellow.lines, thousands),
            limit_text(red.lines, thousands),
        ),
    )
    return {
        "type": "section",
        "fields": [
            {
                "type": "mrkdwn",
                "text": f"*{name}*\n{now} (yellow {y}, red {r})",
            }
            for name, now, y, r in rows
        ],
    }


def _pull_block(installation_id: int, pull: WaitingPull, context: NoticeContext) -> dict[str, Any]:
    block = _section(_pull_line(pull, context.users))
    if context.buttons:
        block["accessory"] = {
            "type": "button",
            "text": {"type": "plain_text", "text": CLAIM_BUTTON},
            "action_id": CLAIM_ACTION,
            "value": claim_value(installation_id, pull.record.key),
        }
    return block


def _pull_line(pull: WaitingPull, users: Mapping[str, str]) -> str:
    record = pull.record
    link = f"*<{record.url}|{record.repo}#{record.number}>*"
    title = escape(clip(printable(record.title), MAX_TITLE))
    size = f"{size_label(record.lines).name} ({record.lines:,} lines)"
    reviewers = ", ".join(_mention(login, users) for login in record.requested_reviewers)
    details = f"waiting {format_duration(pull.waited)} · {size} · reviewers: {reviewers or 'none'}"
    if record.agent_for:  # say whose work an agent's PR is, to the person who asked for it
        details = f"{escape(record.author)} for {_mention(record.agent_for, users)} · {details}"
    if pull.claimed_by:
        details += f" · claimed by {_mention(pull.claimed_by, users)}"
    return f"{link} {title}\n{details}"


def _stale_line(view: TeamView) -> str:
    """The stale PRs, apart: out of the measures, and a word to their authors may revive them."""
    assert view.policy.stale_after is not None
    links = ", ".join(
        f"<{p.record.url}|{p.record.repo}#{p.record.number}>"
        for p in view.stale_line[:STALE_LISTED]
    )
    more = view.stale - min(len(view.stale_line), STALE_LISTED)
    rest = f" and {more} more" if more > 0 else ""
    after = format_duration(view.policy.stale_after)
    return (
        f"*Stale, out of the queue* (waiting over {after}): {links}{rest}. "
        "Close them, or push or ask for a review again to bring them back."
    )


def _mention(login: str, users: Mapping[str, str]) -> str:
    member = users.get(login)
    return f"<@{member}>" if member else escape(login)


def _footer(view: TeamView, listed: int, team_url: str | None) -> str:
    parts = []
    more = view.measures.waiting - listed
    if listed and more > 0:
        parts.append(f"and {more} more waiting")
    if team_url:
        parts.append(f"<{team_url}|the team's queue>")
    return " · ".join(parts)


def _fallback(view: TeamView, listed: tuple[WaitingPull, ...], context: NoticeContext) -> str:
    assert view.level is not None
    headline = f"{ICONS[view.level]} {escape(HEADLINES[view.level].format(name=view.name))}."
    if view.level is Level.GREEN:
        lasted = format_duration(_lasted(view, context))
        return clip(f"{headline} All clear after {lasted}.", MAX_SECTION_TEXT)
    waiting = f"{view.measures.waiting} PRs waiting, oldest {format_duration(view.oldest)}."
    pulls = ", ".join(f"<{p.record.url}|{p.record.repo}#{p.record.number}>" for p in listed)
    advice = "Stop starting new work; review first" if view.level is Level.RED else "Review"
    return clip(
        f"{headline} {waiting} {advice}: {pulls}" if pulls else f"{headline} {waiting}",
        MAX_SECTION_TEXT,
    )
