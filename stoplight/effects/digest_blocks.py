"""What a team's daily Slack digest says: Block Kit blocks and a plain-text fallback. Pure.

Built from the team's view (light, measures, waiting PRs oldest first with their claims, held
line, stale PRs) and the PRs that entered and left review since the previous working day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from stoplight.clients.slack import Message
from stoplight.core.light import format_duration
from stoplight.core.marks import size_label
from stoplight.core.pulls import PullRecord
from stoplight.core.text import clip, printable
from stoplight.effects.notice_blocks import (
    ICONS,
    MAX_BLOCKS,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    MAX_TITLE,
    escape,
)
from stoplight.state.views import TeamView, WaitingPull

# How many PRs of each list a digest names; the rest are counted.
PULLS_LISTED = 15
OTHERS_LISTED = 10


@dataclass(frozen=True)
class Turnover:
    """The PRs that entered and left review from the start of the previous working day
    (`since_day`) to the start of the digest's day. Counts are of distinct PRs; the lists
    hold those whose records are still known, in the order they moved."""

    since_day: date
    yesterday: bool  # the previous working day was the calendar day before
    entered: int = 0
    left: int = 0
    entered_pulls: tuple[PullRecord, ...] = ()
    left_pulls: tuple[PullRecord, ...] = ()


@dataclass(frozen=True)
class DigestContext:
    """What a digest needs beyond the team's view."""

    turnover: Turnover
    users: Mapping[str, str] = field(default_factory=dict)  # GitHub login -> Slack member id
    team_url: str | None = None


def daily_digest(view: TeamView, context: DigestContext) -> Message:
    """The team's digest: its light, its queue oldest first, the held line, stale PRs apart,
    and the turnover since the previous working day."""
    blocks: list[dict[str, Any]] = [
        _header(f"{_icon(view)} {view.name}: daily review digest"),
        _section(_light_line(view)),
    ]
    listed = view.waiting[:PULLS_LISTED]
    blocks += [_section(_pull_line(pull, context.users)) for pull in listed]
    more = view.measures.waiting - len(listed)
    if more > 0:
        blocks.append(_context(f"and {more} more waiting"))
    if view.held:
        blocks.append(_section(_held_line(view)))
    if view.stale:
        blocks.append(_section(_stale_line(view)))
    blocks.append(_section(_turnover_line(context.turnover)))
    if context.team_url:
        blocks.append(_context(f"<{context.team_url}|the team's queue>"))
    assert len(blocks) <= MAX_BLOCKS
    return Message(text=_fallback(view, context.turnover), blocks=blocks)


def _icon(view: TeamView) -> str:
    return ICONS[view.level] if view.level is not None else "⚪"


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER_TEXT)}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _light_line(view: TeamView) -> str:
    light = view.level.label.lower() if view.level is not None else "not known yet"
    if view.measures.waiting == 0:
        return f"*Light: {light}*. No PR is waiting for review."
    waiting = "1 PR" if view.measures.waiting == 1 else f"{view.measures.waiting} PRs"
    return (
        f"*Light: {light}*. {waiting} waiting for review, oldest "
        f"{format_duration(view.oldest)}, {view.measures.lines:,} lines. Oldest first:"
    )


def _link(record: PullRecord) -> str:
    return f"<{record.url}|{record.repo}#{record.number}>"


def _pull_line(pull: WaitingPull, users: Mapping[str, str]) -> str:
    record = pull.record
    title = escape(clip(printable(record.title), MAX_TITLE))
    size = f"{size_label(record.lines).name} ({record.lines:,} lines)"
    reviewers = ", ".join(_mention(login, users) for login in record.requested_reviewers)
    details = f"waiting {format_duration(pull.waited)} · {size} · reviewers: {reviewers or 'none'}"
    if pull.claimed_by:  # someone said "I'll review" in Slack: the others can pick another
        details += f" · claimed by {_mention(pull.claimed_by, users)}"
    return f"*{_link(record)}* {title}\n{details}"


def _mention(login: str, users: Mapping[str, str]) -> str:
    member = users.get(login)
    return f"<@{member}>" if member else escape(login)


def _listed(records: tuple[PullRecord, ...], count: int) -> str:
    links = ", ".join(_link(record) for record in records[:OTHERS_LISTED])
    more = count - min(len(records), OTHERS_LISTED)
    if not links:
        return ""
    return f"{links} and {more} more" if more > 0 else links


def _held_line(view: TeamView) -> str:
    return f"*Held, entering review as the queue drains* ({view.held}): " + _listed(
        view.held_line, view.held
    )


def _stale_line(view: TeamView) -> str:
    """Stale PRs, apart: out of the measures, longest left first."""
    assert view.policy.stale_after is not None, "no PR is stale without stale_after"
    after = format_duration(view.policy.stale_after)
    records = tuple(pull.record for pull in view.stale_line)
    return f"*Stale, out of the queue* (waiting over {after}, {view.stale}): " + _listed(
        records, view.stale
    )


def _when(turnover: Turnover) -> str:
    return "Yesterday" if turnover.yesterday else f"Since {turnover.since_day:%a %-d %b}"


def _turnover_line(turnover: Turnover) -> str:
    lines = [f"*{_when(turnover)}:* {turnover.entered} in, {turnover.left} out of review."]
    if turnover.entered_pulls:
        lines.append(f"In: {_listed(turnover.entered_pulls, turnover.entered)}")
    if turnover.left_pulls:
        lines.append(f"Out: {_listed(turnover.left_pulls, turnover.left)}")
    return "\n".join(lines)


def _fallback(view: TeamView, turnover: Turnover) -> str:
    light = view.level.label.lower() if view.level is not None else "not known yet"
    return clip(
        f"{_icon(view)} {escape(view.name)} daily digest: {light}, "
        f"{view.measures.waiting} waiting, oldest {format_duration(view.oldest)}. "
        f"{_when(turnover)}: {turnover.entered} in, {turnover.left} out.",
        MAX_SECTION_TEXT,
    )
