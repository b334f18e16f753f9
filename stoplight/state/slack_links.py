"""Who a Slack person is on GitHub, once they linked: the one writer of the pairs and of the
one-time links that make them.

A link's token is random, handed to one Slack person in a private message, and stored only as
a hash: a copy of the database opens nothing. It works once, within `OFFER_LIFETIME`, and
binds the workspace and member id it was made for to whoever signs in with GitHub through it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from redis import Redis

from stoplight.state import keys
from stoplight.state.replies import text

OFFER_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True)
class SlackPerson:
    workspace: str  # Slack's team id (T…)
    member: str  # Slack's user id (U… or W…)

    def dump(self) -> str:
        return json.dumps({"workspace": self.workspace, "member": self.member})

    @classmethod
    def load(cls, raw: bytes | str) -> SlackPerson:
        value = json.loads(raw)
        return cls(str(value["workspace"]), str(value["member"]))


class SlackLinks:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def offer(self, person: SlackPerson) -> str:
        """A new one-time token that links `person` to the GitHub login that redeems it."""
        token = secrets.token_urlsafe(32)
        self.redis.set(keys.slack_link_offer(_digest(token)), person.dump(), ex=OFFER_LIFETIME)
        return token

    def offered(self, token: str) -> SlackPerson | None:
        """Whom the token would link, while it may still be used; it stays usable."""
        raw = self.redis.get(keys.slack_link_offer(_digest(token)))
        return SlackPerson.load(raw) if raw is not None else None

    def redeem(self, token: str, login: str) -> SlackPerson | None:
        """Use the token up and link its person to `login`; None when it was used or lapsed."""
        raw = self.redis.getdel(keys.slack_link_offer(_digest(token)))
        if raw is None:
            return None
        person = SlackPerson.load(raw)
        self.redis.set(keys.slack_person(person.workspace, person.member), login)
        return person

    def login(self, person: SlackPerson) -> str | None:
        raw = self.redis.get(keys.slack_person(person.workspace, person.member))
        return text(raw) if raw is not None else None

    def unlink(self, person: SlackPerson) -> bool:
        """Forget the person's login; False when none was linked."""
        return bool(self.redis.delete(keys.slack_person(person.workspace, person.member)))


def known_login(redis: Redis, slack_users: Mapping[str, str], person: SlackPerson) -> str | None:
    """The person's GitHub login: the team's `slack_users` (login -> member id) first, then the
    pair they linked; None when neither knows them."""
    listed = listed_login(slack_users, person.member)
    if listed is not None or not person.workspace:
        return listed
    return SlackLinks(redis).login(person)


def listed_login(slack_users: Mapping[str, str], member: str) -> str | None:
    """The login a team's `slack_users` (login -> member id) gives a Slack member."""
    return next((login for login, id_ in slack_users.items() if id_ == member), None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
