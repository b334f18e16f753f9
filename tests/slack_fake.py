"""Slack's Web API and an incoming webhook, served on 127.0.0.1 and recorded.

slack_sdk speaks through urllib, so the fake is a real local HTTP server (pytest-httpserver)
rather than a patched transport. Tests queue failures with `fail_next`.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

WEBHOOK_PATH = "/services/T000/B000/secret"
RESPONSE_PATH = "/actions/T000/response"  # a button click's response_url
CHANNEL_ID = "C0REVIEWS"


@dataclass(frozen=True)
class Call:
    method: str  # chat.postMessage | chat.update | webhook | response
    body: dict[str, Any]
    authorization: str | None


class FakeSlack:
    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.calls: list[Call] = []  # every request that Slack accepted
        self.attempts: list[str] = []  # every request, accepted or not
        self._failures: list[tuple[int, dict[str, str], Any]] = []
        self._timestamps = itertools.count(1)
        self._lock = threading.Lock()
        for method in ("chat.postMessage", "chat.update"):
            server.expect_request(f"/api/{method}", method="POST").respond_with_handler(
                lambda request, method=method: self._api(method, request)
            )
        server.expect_request(WEBHOOK_PATH, method="POST").respond_with_handler(self._webhook)
        server.expect_request(RESPONSE_PATH, method="POST").respond_with_handler(self._response)

    @property
    def api_url(self) -> str:
        return self.server.url_for("/api/")

    @property
    def webhook_url(self) -> str:
        return self.server.url_for(WEBHOOK_PATH)

    def fail_next(self, status: int, body: Any = "", headers: dict[str, str] | None = None) -> None:
        self._failures.append((status, headers or {}, body))

    @property
    def response_url(self) -> str:
        return self.server.url_for(RESPONSE_PATH)

    def posts(self) -> list[dict[str, Any]]:
        return [call.body for call in self.calls if call.method in ("chat.postMessage", "webhook")]

    def private_replies(self) -> list[dict[str, Any]]:
        """What was said through a click's response_url, to the clicker alone."""
        return [call.body for call in self.calls if call.method == "response"]

    def updates(self) -> list[dict[str, Any]]:
        return [call.body for call in self.calls if call.method == "chat.update"]

    def _api(self, method: str, request: Request) -> Response:
        body = request.get_json()
        with self._lock:
            self.attempts.append(method)
            if self._failures:
                return self._failure()
            self.calls.append(Call(method, body, request.headers.get("Authorization")))
            ts = body.get("ts") or f"1700000000.{next(self._timestamps):06d}"
        answer = {"ok": True, "channel": CHANNEL_ID, "ts": ts}
        return Response(json.dumps(answer), content_type="application/json")

    def _webhook(self, request: Request) -> Response:
        with self._lock:
            self.attempts.append("webhook")
            if self._failures:
                return self._failure()
            self.calls.append(Call("webhook", request.get_json(), None))
        return Response("ok", content_type="text/plain")

    def _response(self, request: Request) -> Response:
        with self._lock:
            self.attempts.append("response")
            self.calls.append(Call("response", request.get_json(), None))
        return Response("ok", content_type="text/plain")

    def _failure(self) -> Response:
        status, headers, body = self._failures.pop(0)
        text = body if isinstance(body, str) else json.dumps(body)
        return Response(text, status=status, headers=headers, content_type="application/json")
