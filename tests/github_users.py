"""GitHub's OAuth flow and user endpoints, for tests of sign-in and access rules.

Each person has a code GitHub would hand back after "Authorize", a token, the installations
GitHub lists for them, and the repositories they can access in each.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import responses

from tests.conftest import API, api_root

WEB = "https://github.com"


@dataclass
class Person:
    id: int
    login: str
    # installation id -> [(repository id, owner/name)]
    access: dict[int, list[tuple[int, str]]] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return f"code-{self.login}"

    @property
    def token(self) -> str:
        return f"ghu_{self.login}"


class FakeGitHubUsers:
    CLIENT = ("Iv1.stoplight", "client-secret")  # the OAuth client the tests' settings name

    def __init__(self, mock: responses.RequestsMock, api: str = API, web: str = WEB) -> None:
        self.people: dict[str, Person] = {}
        self.revoked: set[str] = set()
        self.revoking_fails = False  # GitHub answering 502 to a revocation
        self.token_requests = 0
        root = api_root(api)
        mock.add_callback(responses.POST, f"{web}/login/oauth/access_token", self._exchange)
        mock.add_callback(responses.GET, re.compile(rf"{root}/user$"), self._user)
        mock.add_callback(
            responses.GET, re.compile(rf"{root}/user/installations(\?.*)?$"), self._installations
        )
        mock.add_callback(
            responses.GET,
            re.compile(rf"{root}/user/installations/\d+/repositories(\?.*)?$"),
            self._repositories,
        )
        mock.add_callback(
            responses.DELETE, re.compile(rf"{root}/applications/[^/]+/token$"), self._revoke
        )

    def add(self, person: Person) -> Person:
        self.people[person.token] = person
        return person

    def _exchange(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.token_requests += 1
        form = parse_qs(request.body)
        code = form.get("code", [""])[0]
        for person in self.people.values():
            if person.code == code:
                answer = {"access_token": person.token, "token_type": "bearer", "scope": ""}
                return 200, {"Content-Type": "application/json"}, json.dumps(answer)
        return 200, {}, json.dumps({"error": "bad_verification_code"})

    def _who(self, request: Any) -> Person | None:
        token = request.headers.get("Authorization", "").split(" ")[-1]
        return None if token in self.revoked else self.people.get(token)

    def _user(self, request: Any) -> tuple[int, dict[str, str], str]:
        person = self._who(request)
        if person is None:
            return 401, {}, json.dumps({"message": "Bad credentials"})
        return 200, {}, json.dumps({"id": person.id, "login": person.login, "type": "User"})

    def _installations(self, request: Any) -> tuple[int, dict[str, str], str]:
        person = self._who(request)
        if person is None:
            return 401, {}, json.dumps({"message": "Bad credentials"})
        items = [{"id": i, "account": {"login": "octo"}} for i in person.access]
        return 200, {}, json.dumps({"total_count": len(items), "installations": items})

    def _repositories(self, request: Any) -> tuple[int, dict[str, str], str]:
        person = self._who(request)
        if person is None:
            return 401, {}, json.dumps({"message": "Bad credentials"})
        found = re.search(r"/user/installations/(\d+)/repositories", request.url)
        assert found is not None
        repos = person.access.get(int(found[1]))
        if repos is None:
            return 404, {}, json.dumps({"message": "Not Found"})
        items = [{"id": repo_id, "full_name": name, "name": name} for repo_id, name in repos]
        return 200, {}, json.dumps({"total_count": len(items), "repositories": items})

    def _revoke(self, request: Any) -> tuple[int, dict[str, str], str]:
        """`DELETE /applications/{client_id}/token`: the OAuth client's own credentials in
        basic auth, the token to revoke in the body."""
        if self.revoking_fails:
            return 502, {}, json.dumps({"message": "Server Error"})
        client_id, secret = self.CLIENT
        expected = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        if not request.url.endswith(f"/applications/{client_id}/token") or (
            request.headers.get("Authorization") != expected
        ):
            return 404, {}, json.dumps({"message": "Not Found"})
        token = json.loads(request.body)["access_token"]
        if token not in self.people or token in self.revoked:
            return 404, {}, json.dumps({"message": "Not Found"})
        self.revoked.add(token)
        return 204, {}, ""

    def calls_to(self, mock: responses.RequestsMock, path: str) -> int:
        return sum(1 for call in mock.calls if call.request.url.split("?")[0].endswith(path))
