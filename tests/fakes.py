"""Test doubles that are not mocks of Redis: a clock that tests move, payload builders."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday morning


@dataclass
class FakeClock:
    moment: datetime = START

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Repo:
    id: int = 1001
    full_name: str = "octo/shop"
    installation_id: int = 42

    def base(self) -> dict[str, Any]:
        return {
            "repository": {"id": self.id, "full_name": self.full_name, "name": self.name},
            "installation": {"id": self.installation_id},
            "sender": {"login": "someone", "type": "User"},
        }

    @property
    def name(self) -> str:
        return self.full_name.split("/")[1]


@dataclass
class Pull:
    """A PR as GitHub would describe it; tests change its fields and ask for payloads."""

    repo: Repo = field(default_factory=Repo)
    number: int = 1
    head_sha: str = "a" * 40
    additions: int = 40
    deletions: int = 10
    draft: bool = False
    state: str = "open"
    author: str = "alice"
    author_type: str = "User"
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    assignees: list[dict[str, Any]] = field(default_factory=list)  # GitHub's user objects
    title: str = ""

    def as_json(self, updated_at: datetime) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title or f"Change number {self.number}",
            "html_url": f"https://github.com/{self.repo.full_name}/pull/{self.number}",
            "state": self.state,
            "draft": self.draft,
            "user": {"login": self.author, "type": self.author_type},
            "head": {"sha": self.head_sha, "ref": f"topic-{self.number}"},
            "base": {"ref": "main"},
            "updated_at": iso(updated_at),
            "created_at": iso(updated_at),
            "additions": self.additions,
            "deletions": self.deletions,
            "labels": [{"name": name} for name in self.labels],
            "requested_reviewers": [{"login": login, "type": "User"} for login in self.reviewers],
            "assignees": self.assignees,
        }

    def event(self, action: str, at: datetime, **extra: Any) -> tuple[str, dict[str, Any]]:
        payload = {"action": action, "number": self.number, **self.repo.base(), **extra}
        payload["pull_request"] = self.as_json(at)
        return "pull_request", payload

    def review(
        self, reviewer: str, state: str, at: datetime, *, commit_id: str | None = None,
        action: str = "submitted", reviewer_type: str = "User",
    ) -> tuple[str, dict[str, Any]]:  # fmt: skip
        payload = {"action": action, **self.repo.base(), "pull_request": self.as_json(at)}
        payload["review"] = {
            "user": {"login": reviewer, "type": reviewer_type},
            "state": state.upper(),
            "commit_id": commit_id or self.head_sha,
            "submitted_at": iso(at),
        }
        return "pull_request_review", payload


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def throwaway_private_key() -> str:
    """A fresh RSA key in PEM, for an app (or Probot) that needs one to start."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
