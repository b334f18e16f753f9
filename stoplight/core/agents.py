"""Accounts that are not people: bots, whose reviews a team may not trust, and AI coding agents,
whose PRs are credited to the person who set them to work. Pure."""

from __future__ import annotations

from collections.abc import Sequence

# The accounts of Copilot's coding agent: its PRs' author, and the app it assigns itself as.
COPILOT_AGENT = frozenset({"Copilot", "copilot-swe-agent[bot]"})
AGENT_AUTHORS = COPILOT_AGENT | {
    "devin-ai-integration[bot]",  # Devin's GitHub app
    "google-labs-jules[bot]",  # Google's Jules opens its PRs as its app
    "openhands-agent",  # the account OpenHands' resolver offers to commit and open PRs as
}
# What people call the agents whose logins say it less plainly.
AGENT_NAMES = {
    "copilot-swe-agent[bot]": "Copilot",
    "devin-ai-integration[bot]": "Devin",
    "google-labs-jules[bot]": "Jules",
    "openhands-agent": "OpenHands",
}
# Bots that GitHub names without the `[bot]` suffix apps carry (Copilot reviews as `Copilot`).
UNSUFFIXED_BOTS = frozenset({"Copilot"})


def is_bot(login: str, account_type: str = "User") -> bool:
    """Whether `login` is a bot's: GitHub says so, or the login does."""
    return account_type == "Bot" or login.endswith("[bot]") or login in UNSUFFIXED_BOTS


def credited_person(author: str, assignees: Sequence[str], requested: Sequence[str]) -> str:
    """Who a PR is credited to. Copilot's agent is assigned work by a person and asks that
    person for review, so its PRs go to its human assignee, else the first human asked to
    review; any other PR, or a Copilot PR where GitHub names no person, to its author.
    `assignees` and `requested` hold people only, bots left out."""
    if author not in COPILOT_AGENT:
        return author
    return next(iter((*assignees, *requested)), author)


def agent_name(login: str) -> str:
    """An agent's account as people call it: `Devin` for `devin-ai-integration[bot]`."""
    return AGENT_NAMES.get(login, login.removesuffix("[bot]"))
