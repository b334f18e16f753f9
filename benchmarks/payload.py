"""A realistic ~23 KB pull_request delivery, as GitHub sends one."""

from __future__ import annotations

import json
from typing import Any


def pull_request_payload(number: int = 1) -> dict[str, Any]:
    user = {
        "login": "alice",
        "id": 1,
        "type": "User",
        **{f"{name}_url": f"https://api.github.com/users/alice/{name}" for name in _USER_URLS},
    }
    repo = {
        "id": 1001,
        "name": "shop",
        "full_name": "octo/shop",
        "owner": user,
        "description": "The shop front " * 8,
        **{f"{name}_url": f"https://api.github.com/repos/octo/shop/{name}" for name in _REPO_URLS},
    }
    pull = {
        "number": number,
        "title": "Speed up checkout by caching the basket totals",
        "body": "This change caches basket totals between requests. " * 105,
        "html_url": f"https://github.com/octo/shop/pull/{number}",
        "state": "open",
        "draft": False,
        "user": user,
        "head": {"sha": "a" * 40, "ref": "topic", "repo": repo, "user": user},
        "base": {"sha": "b" * 40, "ref": "main", "repo": repo, "user": user},
        "updated_at": "2026-11-02T09:00:00Z",
        "created_at": "2026-11-02T09:00:00Z",
        "additions": 40,
        "deletions": 10,
        "labels": [],
        "requested_reviewers": [user, user],
        **{f"{name}_url": f"https://api.github.com/repos/octo/shop/pulls/{number}/{name}"
           for name in ("commits", "review_comments", "comments", "statuses", "issue")},
    }  # fmt: skip
    return {
        "action": "opened",
        "number": number,
        "pull_request": pull,
        "repository": repo,
        "installation": {"id": 42},
        "sender": user,
    }


_USER_URLS = (
    "html", "followers", "following", "gists", "starred", "subscriptions", "organizations",
    "repos", "events", "received_events",
)  # fmt: skip
_REPO_URLS = (
    "html", "forks", "keys", "collaborators", "teams", "hooks", "issue_events", "events",
    "assignees", "branches", "tags", "blobs", "git_tags", "git_refs", "trees", "statuses",
    "languages", "stargazers", "contributors", "subscribers", "subscription", "commits",
    "git_commits", "comments", "issue_comment", "contents", "compare", "merges", "archive",
    "downloads", "issues", "pulls", "milestones", "notifications", "labels", "releases",
    "deployments",
)  # fmt: skip


def pull_request_body() -> bytes:
    return json.dumps(pull_request_payload(), indent=2).encode()
