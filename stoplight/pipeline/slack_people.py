"""What Slack people are told when Stoplight does not know their GitHub login: how to link it.

Clicks ("I'll review") and `/stoplight` both answer an unknown person so, privately: a one-time
link to `BASE_URL/slack/link/<token>` that signs them in with GitHub and remembers the pair,
when sign-in is on; and, always, how to list themselves in a team's `slack_users`.
"""

from __future__ import annotations

from redis import Redis

from stoplight.core.light import format_duration
from stoplight.settings import Settings
from stoplight.state.slack_links import OFFER_LIFETIME, SlackLinks, SlackPerson


def link_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/slack/link/{token}"


def unknown_person(redis: Redis, settings: Settings, person: SlackPerson, team: str | None) -> str:
    """The private answer to someone neither `slack_users` nor a link maps to a GitHub login."""
    where = f"of team {team} " if team else ""
    listing = (
        f"add yourself to `slack_users` {where}in `.github/stoplight.yml`, "
        f"e.g. `slack_users: {{your-login: {person.member}}}`."
    )
    if not settings.sign_in_enabled or not person.workspace:
        return f"Stoplight does not know your GitHub login. To be known, {listing}"
    token = SlackLinks(redis).offer(person)
    lifetime = format_duration(OFFER_LIFETIME)
    return (
        "Stoplight does not know your GitHub login. "
        f"<{link_url(settings, token)}|Link your GitHub account> once: sign in with GitHub "
        f"there (the link works once, within {lifetime}). Or {listing}"
    )
