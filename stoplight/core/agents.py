"""Accounts that are not people: bots, whose reviews a team may not trust. Pure."""

from __future__ import annotations

# Bots that GitHub names without the `[bot]` suffix apps carry (Copilot reviews as `Copilot`).
UNSUFFIXED_BOTS = frozenset({"Copilot"})


def is_bot(login: str, account_type: str = "User") -> bool:
    """Whether `login` is a bot's: GitHub says so, or the login does."""
    return account_type == "Bot" or login.endswith("[bot]") or login in UNSUFFIXED_BOTS
