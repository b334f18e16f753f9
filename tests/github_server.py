"""A small GitHub REST API on 127.0.0.1, for tests that run real worker processes.

`responses` only fakes HTTP inside the test process; a `stoplight worker` subprocess talks to
this server instead (GHE_HOST/GHE_PROTOCOL point at it). It records every write, serves the
reads the client makes after a crash and the configuration and file lists workers read, and
can hold one status request open so a test can kill the worker while that write is in flight.
A benchmark on a simulated clock hands its clock in (`now`): tokens expire and requests are
logged on that clock. Fed the deliveries it stands for (`learn`), it also serves what a sync
reads: the installations, their repositories, open PRs, a PR, its reviews, a commit's date.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class FakeGitHubState:
    writes: list[tuple[str, str, Any]] = field(default_factory=list)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)
    repo_labels: set[tuple[str, str]] = field(default_factory=set)  # (owner/name, label)
    tokens_issued: int = 0
    hold_status_number: int | None = None  # the n-th status request (1-based) hangs
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The one person who signs in: GitHub login, and installation id -> [(repo id, owner/name)].
    person: str = "alice"
    access: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)  # tokens revoked at sign-out
    # Files on default branches, by (owner/name, path); a PR's files, by (owner/name, number).
    files: dict[tuple[str, str], str] = field(default_factory=dict)
    pull_files: dict[tuple[str, int], list[tuple[str, int, int]]] = field(default_factory=dict)
    now: Callable[[], datetime] = wall_clock
    # Every request answered: (moment on `now`, method, route name or "unknown").
    requests: list[tuple[datetime, str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # of every request, with its query
    # The app's webhook deliveries GitHub lists, newest first, and the ids asked for again.
    hook_deliveries: list[dict[str, Any]] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)
    # Called with a delivery's id when the app asks for it again (to send it again).
    on_redeliver: Callable[[int], None] | None = None
    # What the deliveries fed to `learn` say GitHub holds: installation id -> repository
    # full name -> repository; full name -> number -> PR; a PR's reviews; commits' dates.
    repositories: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    pulls: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    reviews: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    commit_dates: dict[str, str] = field(default_factory=dict)

    def learn(self, event: str, payload: dict[str, Any]) -> None:
        """Update what GitHub holds with one delivery's news, as GitHub had before sending it."""
        repo, installation = payload.get("repository"), payload.get("installation")
        if not repo or not installation:
            return
        name = repo["full_name"]
        with self.lock:
            self.repositories.setdefault(installation["id"], {})[name] = {
                "id": repo["id"], "full_name": name, "name": name.partition("/")[2]
            }  # fmt: skip
            pull = payload.get("pull_request")
            if pull is None:
                return
            known = self.pulls.setdefault(name, {}).get(pull["number"])
            # GitHub's created_at never moves; a payload's may be the moment it was sent.
            created = known["created_at"] if known else pull.get("created_at")
            self.pulls[name][pull["number"]] = {**pull, "created_at": created}
            self.commit_dates.setdefault(pull["head"]["sha"], pull["updated_at"])
            if event == "pull_request_review" and payload.get("action") == "submitted":
                self.reviews.setdefault((name, pull["number"]), []).append(payload["review"])

    def status_writes(self) -> list[tuple[str, str, str]]:
        return [
            (path.rsplit("/", 1)[1], body["state"], body["description"])
            for method, path, body in self.writes
            if "/statuses/" in path
        ]

    def label_writes(self) -> list[tuple[str, str, Any]]:
        with self.lock:
            return [write for write in self.writes if "/labels" in write[1]]


ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/app/installations/(\d+)/access_tokens"), "token"),
    ("GET", re.compile(r"/app/installations"), "app_installations"),
    ("GET", re.compile(r"/app/hook/deliveries"), "hook_deliveries"),
    ("POST", re.compile(r"/app/hook/deliveries/(\d+)/attempts"), "redeliver"),
    ("POST", re.compile(r"/repos/([^/]+/[^/]+)/statuses/(\w+)"), "create_status"),
    ("GET", re.compile(r"/repos/([^/]+/[^/]+)/commits/(\w+)/status"), "combined_status"),
    ("POST", re.compile(r"/repos/([^/]+/[^/]+)/labels"), "create_label"),
    ("POST", re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/labels"), "add_labels"),
    ("GET", re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/labels"), "issue_labels"),
    ("POST", re.compile(r"/repos/([^/]+/[^/]+)/pulls/(\d+)/requested_reviewers"), "request_review"),
    ("GET", re.compile(r"/repos/([^/]+/[^/]+)/contents/(.+)"), "contents"),
    ("GET", re.compile(r"/repos/([^/]+/[^/]+)/pulls/(\d+)/files"), "pull_files"),
    ("GET", re.compile(r"/installation/repositories"), "installation_repositories"),
    ("GET", re.compile(r"/repos/([^/]+/[^/]+)/pulls"), "open_pulls"),
    ("GET", re.compile(r"/repos/([^/]+/[^/]+)/pulls/(\d+)"), "one_pull"),
    ("GET", re.compile(r"/repos/([^/]+/[^/]+)/pulls/(\d+)/reviews"), "pull_reviews"),
    ("GET", re.compile(r"/repos/([^/]+/[^/]+)/commits/(\w+)"), "commit"),
    ("DELETE", re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/labels/(.+)"), "remove_label"),
    ("GET", re.compile(r"/login/oauth/authorize"), "authorize"),
    ("POST", re.compile(r"/login/oauth/access_token"), "access_token"),
    ("DELETE", re.compile(r"/applications/([^/]+)/token"), "revoke_token"),
    ("GET", re.compile(r"/user"), "user"),
    ("GET", re.compile(r"/user/installations"), "user_installations"),
    ("GET", re.compile(r"/user/installations/(\d+)/repositories"), "user_repositories"),
]


def _handler(state: FakeGitHubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

        def _route(self, method: str) -> None:
            with state.lock:
                state.paths.append(self.path)
            path, _, self.query = self.path.partition("?")
            path = path.removeprefix("/api/v3")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            form = "form-urlencoded" in self.headers.get("Content-Type", "")
            body = parse_qs(raw.decode()) if form else json.loads(raw) if raw else None
            for verb, pattern, name in ROUTES:
                match = pattern.fullmatch(path)
                if verb == method and match:
                    self._log(method, name)
                    status, answer = getattr(self, name)(body, *match.groups())
                    self._send(status, answer)
                    return
            self._log(method, "unknown")
            self._send(404, {"message": "Not Found"})

        def _log(self, method: str, name: str) -> None:
            with state.lock:
                state.requests.append((state.now(), method, name))

        def _send(self, status: int, answer: Any) -> None:
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", answer)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client died waiting: the write happened all the same

        def app_installations(self, body: Any) -> tuple[int, Any]:
            # Only those `learn` was told of: a worker's first look at an empty Redis syncs
            # every installation (see stoplight.pipeline.heal), and most tests feed deliveries
            # alone.
            with state.lock:
                return 200, [{"id": installation} for installation in state.repositories]

        def installation_repositories(self, body: Any) -> tuple[int, Any]:
            token = re.search(r"ghs_local(\d+)", self.headers.get("Authorization", ""))
            with state.lock:
                repos = list(state.repositories.get(int(token[1]) if token else 0, {}).values())
            return 200, {"total_count": len(repos), "repositories": repos}

        def open_pulls(self, body: Any, repo: str) -> tuple[int, Any]:
            with state.lock:
                listed = [
                    {**pull, "labels": self._labels(repo, pull)}
                    for pull in state.pulls.get(repo, {}).values()
                    if pull["state"] == "open"
                ]
            return 200, sorted(listed, key=lambda pull: pull["number"])

        def _labels(self, repo: str, pull: dict[str, Any]) -> list[dict[str, str]]:
            """The PR's own labels and those the app put on it (the caller holds the lock)."""
            own = {label["name"] for label in pull["labels"]}
            carried = set(state.labels.get(f"{repo}#{pull['number']}", []))
            return [{"name": name} for name in sorted(own | carried)]

        def one_pull(self, body: Any, repo: str, number: str) -> tuple[int, Any]:
            with state.lock:
                pull = state.pulls.get(repo, {}).get(int(number))
            return (200, pull) if pull else (404, {"message": "Not Found"})

        def pull_reviews(self, body: Any, repo: str, number: str) -> tuple[int, Any]:
            with state.lock:
                return 200, list(state.reviews.get((repo, int(number)), []))

        def commit(self, body: Any, repo: str, sha: str) -> tuple[int, Any]:
            with state.lock:
                date = state.commit_dates.get(sha)
            if date is None:
                return 404, {"message": "No commit found for SHA"}
            return 200, {"sha": sha, "commit": {"committer": {"name": "Ada", "date": date}}}

        def hook_deliveries(self, body: Any) -> tuple[int, Any]:
            with state.lock:
                return 200, list(state.hook_deliveries)

        def redeliver(self, body: Any, delivery_id: str) -> tuple[int, Any]:
            with state.lock:
                state.redelivered.append(int(delivery_id))
            if state.on_redeliver is not None:
                state.on_redeliver(int(delivery_id))
            return 202, {}

        def token(self, body: Any, installation: str) -> tuple[int, Any]:
            with state.lock:
                state.tokens_issued += 1
            expires = state.now() + timedelta(hours=1)
            return 201, {"token": f"ghs_local{installation}", "expires_at": expires.isoformat()}

        def create_status(self, body: Any, repo: str, sha: str) -> tuple[int, Any]:
            with state.lock:
                state.writes.append(("POST", f"/repos/{repo}/statuses/{sha}", body))
                state.statuses.setdefault(sha, []).insert(0, body)
                number = len(state.status_writes())
            if number == state.hold_status_number:
                state.held.set()
                state.release.wait(timeout=30)
            return 201, {**body, "id": number}

        def combined_status(self, body: Any, repo: str, sha: str) -> tuple[int, Any]:
            with state.lock:
                latest: dict[str, dict[str, Any]] = {}
                for status in state.statuses.get(sha, []):
                    latest.setdefault(status["context"], status)
            return 200, {
                "state": "success",
                "sha": sha,
                "total_count": len(latest),
                "statuses": list(latest.values()),
            }

        def create_label(self, body: Any, repo: str) -> tuple[int, Any]:
            with state.lock:
                if (repo, body["name"]) in state.repo_labels:  # changes nothing: no write
                    exists = {"resource": "Label", "code": "already_exists"}
                    return 422, {"message": "Validation Failed", "errors": [exists]}
                state.repo_labels.add((repo, body["name"]))
                state.writes.append(("POST", f"/repos/{repo}/labels", body))
            return 201, body

        def add_labels(self, body: Any, repo: str, number: str) -> tuple[int, Any]:
            key = f"{repo}#{number}"
            with state.lock:
                state.writes.append(("POST", f"/repos/{repo}/issues/{number}/labels", body))
                carried = state.labels.setdefault(key, [])
                carried.extend(name for name in body if name not in carried)
                return 200, [{"name": name} for name in carried]

        def issue_labels(self, body: Any, repo: str, number: str) -> tuple[int, Any]:
            with state.lock:
                return 200, [{"name": name} for name in state.labels.get(f"{repo}#{number}", [])]

        def remove_label(self, body: Any, repo: str, number: str, name: str) -> tuple[int, Any]:
            key, name = f"{repo}#{number}", unquote(name)
            with state.lock:
                state.writes.append(
                    ("DELETE", f"/repos/{repo}/issues/{number}/labels/{name}", None)
                )
                if name in state.labels.get(key, []):
                    state.labels[key].remove(name)
                    return 200, []
            return 404, {"message": "Label does not exist"}

        def request_review(self, body: Any, repo: str, number: str) -> tuple[int, Any]:
            with state.lock:
                state.writes.append(
                    ("POST", f"/repos/{repo}/pulls/{number}/requested_reviewers", body)
                )
            return 201, {"number": int(number)}

        def contents(self, body: Any, repo: str, path: str) -> tuple[int, Any]:
            text = state.files.get((repo, unquote(path)))
            if text is None:
                return 404, {"message": "Not Found"}
            content = base64.b64encode(text.encode()).decode()
            name = path.rsplit("/", 1)[-1]
            return 200, {"type": "file", "encoding": "base64", "path": path, "name": name,
                         "size": len(text.encode()), "content": content}  # fmt: skip

        def pull_files(self, body: Any, repo: str, number: str) -> tuple[int, Any]:
            files = state.pull_files.get((repo, int(number)), [])
            return 200, [
                {"filename": name, "additions": added, "deletions": deleted, "status": "modified"}
                for name, added, deleted in files
            ]

        def authorize(self, body: Any) -> tuple[int, Any]:
            """The person clicks "Authorize": back to the app with a code and its state."""
            asked = parse_qs(self.query)
            code = urlencode({"code": f"code-{state.person}", "state": asked["state"][0]})
            return 302, f"{asked['redirect_uri'][0]}?{code}"

        def access_token(self, body: Any) -> tuple[int, Any]:
            if body.get("code") != [f"code-{state.person}"]:
                return 200, {"error": "bad_verification_code"}
            return 200, {"access_token": f"ghu_{state.person}", "token_type": "bearer"}

        def revoke_token(self, body: Any, client_id: str) -> tuple[int, Any]:
            with state.lock:
                state.revoked.append(body["access_token"])
            return 204, None

        def _signed_in(self) -> bool:
            token = f"ghu_{state.person}"
            return self.headers.get("Authorization", "").endswith(token) and (
                token not in state.revoked
            )

        def user(self, body: Any) -> tuple[int, Any]:
            if not self._signed_in():
                return 401, {"message": "Bad credentials"}
            return 200, {"id": 7, "login": state.person, "type": "User"}

        def user_installations(self, body: Any) -> tuple[int, Any]:
            if not self._signed_in():
                return 401, {"message": "Bad credentials"}
            items = [{"id": installation} for installation in state.access]
            return 200, {"total_count": len(items), "installations": items}

        def user_repositories(self, body: Any, installation: str) -> tuple[int, Any]:
            if not self._signed_in() or int(installation) not in state.access:
                return 404, {"message": "Not Found"}
            items = [{"id": i, "full_name": name} for i, name in state.access[int(installation)]]
            return 200, {"total_count": len(items), "repositories": items}

    return Handler


@contextmanager
def serve_fake_github(
    now: Callable[[], datetime] = wall_clock, host: str = "127.0.0.1"
) -> Iterator[tuple[str, FakeGitHubState]]:
    """Yields (host:port, state) of a fake GitHub listening on `host` (containers reach it
    on their network's gateway)."""
    state = FakeGitHubState(now=now)
    server = ThreadingHTTPServer((host, 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{host}:{server.server_address[1]}", state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
