"""Slack's Socket Mode on 127.0.0.1: a websocket server (the `websockets` package) and the fake
Web API's `apps.connections.open`, which hands out its ws:// address as Slack hands out a
wss:// one. Tests send envelopes down the latest connection and read the acknowledgements.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve
from werkzeug import Request, Response

from tests.slack_fake import FakeSlack
from tests.test_end_to_end import wait_for


class FakeSocketMode:
    def __init__(self, fake_slack: FakeSlack) -> None:
        self.tokens: list[str | None] = []  # the Authorization of each apps.connections.open
        self.acks: list[dict[str, Any]] = []
        self.sessions = 0  # connections ever opened
        self.closed_by_client = 0  # connections the client ended (not the server)
        self._live: list[ServerConnection] = []
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()
        # Without compression: slack_sdk's builtin client asks for none.
        self.server: Server = serve(self._session, "127.0.0.1", 0, compression=None,
                                    close_timeout=1)  # fmt: skip
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        fake_slack.server.expect_request(
            "/api/apps.connections.open", method="POST"
        ).respond_with_handler(self._open)

    @property
    def port(self) -> int:
        return self.server.socket.getsockname()[1]

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=5)

    def live(self) -> int:
        with self._lock:
            return len(self._live)

    def wait_connected(self, sessions: int = 1) -> None:
        wait_for(lambda: self.sessions >= sessions and self.live() == 1)

    def send(self, envelope: dict[str, Any]) -> None:
        """Down the newest connection, as Slack picks one of a client's."""
        with self._lock:
            connection = self._live[-1]
        connection.send(json.dumps(envelope))

    def acked(self, envelope_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [ack for ack in self.acks if ack.get("envelope_id") == envelope_id]

    def wait_acked(self, envelope_id: str, times: int = 1) -> None:
        wait_for(lambda: len(self.acked(envelope_id)) >= times)

    def drop(self) -> None:
        """Close the newest connection from Slack's side, with a close frame."""
        with self._lock:
            connection = self._live[-1]
        connection.close(code=1001, reason="going away")

    def lose(self) -> None:
        """End the newest connection's TCP stream without a word, as a broken network does."""
        with self._lock:
            connection = self._live[-1]
        connection.close_socket()

    def ask_to_reconnect(self) -> None:
        """Slack's notice that this connection ends soon: the client opens another."""
        self.send({"type": "disconnect", "reason": "refresh_requested"})

    def _open(self, request: Request) -> Response:
        with self._lock:
            self.tokens.append(request.headers.get("Authorization"))
        url = f"ws://127.0.0.1:{self.port}/link/?ticket={next(self._tickets)}"
        return Response(json.dumps({"ok": True, "url": url}), content_type="application/json")

    def _session(self, connection: ServerConnection) -> None:
        with self._lock:
            self.sessions += 1
            self._live.append(connection)
        connection.send(json.dumps({"type": "hello", "num_connections": 1}))
        try:
            for message in connection:
                with self._lock:
                    self.acks.append(json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._live.remove(connection)
                if connection.close_code not in (1001, None):
                    self.closed_by_client += 1
