"""Who may see what: GitHub decides, with the signed-in person's own token.

A person sees an installation where `GET /user/installations` lists it, and a team of it where
`GET /user/installations/{id}/repositories` lists at least one of the team's repositories.
GitHub's answers are cached in Redis for a few minutes, per person.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from github import Auth, Github, GithubException
from github.PaginatedList import PaginatedList
from github.Repository import Repository
from redis import Redis

from stoplight.state import keys
from stoplight.web.auth import User

CACHED_FOR = timedelta(minutes=5)
PAGE_SIZE = 100


class SignedOut(Exception):
    """GitHub no longer accepts the person's token."""


@dataclass(frozen=True)
class Repositories:
    """The repositories of one installation a person can access, by id and by name."""

    ids: frozenset[int]
    names: frozenset[str]  # owner/name, lower case

    def any_of(self, ids: set[int], names: set[str]) -> bool:
        return bool(self.ids & ids) or bool(self.names & {name.lower() for name in names})


class Access:
    def __init__(self, redis: Redis, api_url: str, user: User) -> None:
        self.redis = redis
        self.user = user
        self._github = Github(
            auth=Auth.Token(user.token), base_url=api_url, per_page=PAGE_SIZE, timeout=10
        )

    def installations(self) -> frozenset[int]:
        ids = self._cached(keys.user_installations(self.user.id), self._fetch_installations)
        return frozenset(ids)

    def repositories(self, installation_id: int) -> Repositories:
        if installation_id not in self.installations():
            return Repositories(frozenset(), frozenset())
        listed = self._cached(
            keys.user_repositories(self.user.id, installation_id),
            lambda: self._fetch_repositories(installation_id),
        )
        return Repositories(
            frozenset(repo["id"] for repo in listed),
            frozenset(repo["name"].lower() for repo in listed),
        )

    def _fetch_installations(self) -> list[int]:
        return sorted(item.id for item in self._github.get_user().get_installations())

    def _fetch_repositories(self, installation_id: int) -> list[dict[str, Any]]:
        listing = PaginatedList(
            Repository,
            self._github.requester,
            f"/user/installations/{installation_id}/repositories",
            None,
            list_item="repositories",
        )
        try:
            return [{"id": repo.id, "name": repo.full_name} for repo in listing]
        except GithubException as error:
            if error.status == 404:  # uninstalled since GitHub listed the installation
                return []
            raise

    def _cached(self, key: str, fetch: Callable[[], Any]) -> Any:
        cached = self.redis.get(key)
        if cached is not None:
            return json.loads(cached)
        try:
            answer = fetch()
        except GithubException as error:
            if error.status == 401:
                raise SignedOut from error
            raise
        self.redis.set(key, json.dumps(answer), ex=CACHED_FOR)
        return answer
