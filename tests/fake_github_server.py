"""A local stand-in for GitHub's REST API, served over real HTTP on 127.0.0.1.

End-to-end tests point the real app process at it with GHE_HOST/GHE_PROTOCOL and read back
every write it received.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Write:
    method: str
    path: str
    body: Any


@dataclass
class FakeGitHubServer:
    writes: list[Write] = field(default_factory=list)
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FakeGitHubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()

    def statuses(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return [
                (w.path.rsplit("/", 1)[1], w.body["state"], w.body["description"])
                for w in self.writes
                if "/statuses/" in w.path
            ]

    def label_writes(self) -> list[Write]:
        with self._lock:
            return [w for w in self.writes if "/labels" in w.path]

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path.removeprefix("/api/v3")
        if request.method == "POST" and path.endswith("/access_tokens"):
            with self._lock:
                self.tokens_issued += 1
            expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = {"token": "ghs_e2e", "expires_at": expires}
            return Response(json.dumps(body), 201, content_type="application/json")(
                environ, start_response
            )
        if request.method in ("POST", "DELETE", "PATCH", "PUT"):
            data = request.get_data()
            with self._lock:
                self.writes.append(Write(request.method, path, json.loads(data) if data else None))
            return Response("{}", 201 if request.method == "POST" else 200)(environ, start_response)
        return Response('{"message": "Not Found"}', 404, content_type="application/json")(
            environ, start_response
        )
