"""Slack's Socket Mode: Slack's interactions over a websocket this process opens, for installs
whose `/slack/*` Slack cannot reach.

With `SLACK_APP_TOKEN`, each `stoplight worker` (and `stoplight serve`) keeps one connection,
through slack_sdk's builtin client (no dependency beyond slack_sdk). Slack sends each envelope
to one of the open connections and sends it again, to any, until it is acknowledged. The
socket stands in for the signature of an HTTP request: only Slack, given the app's token,
hands out the connection's address. So an `interactive` envelope goes to the same
`accept_interaction` the `/slack/actions` route calls, under the envelope's id, which makes a
redelivered envelope queue nothing. A `slash_commands` envelope (`/stoplight`) goes to the
same `answer_command` the `/slack/commands` route calls; its answer rides on the
acknowledgement.

slack_sdk reconnects by itself when Slack asks it to (a `disconnect` envelope), closes the
socket, or stops answering pings; only the first connection is this module's to retry.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.exceptions import RedisError
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient

from stoplight.pipeline.claims import accept_interaction
from stoplight.pipeline.runtime import Runtime
from stoplight.pipeline.slack_commands import answer_command

log = logging.getLogger(__name__)

# slack_sdk pings this often, and takes a connection whose pongs stopped four times as long
# for dead, then opens another.
PING_SECONDS = 5.0
# Slack's Web API, for the connection's address (apps.connections.open).
TIMEOUT_SECONDS = 10
# The first connection is tried again after a pause, doubled up to a minute while it fails.
CONNECT_PAUSE_SECONDS = 1.0
CONNECT_PAUSE_LIMIT_SECONDS = 60.0

# An envelope's handler takes its id and payload and returns the payload of its
# acknowledgement (Slack shows a slash command's answer from it), or None.
EnvelopeHandler = Callable[[Runtime, str, dict[str, Any]], dict[str, Any] | None]


def _interactive(rt: Runtime, envelope_id: str, payload: dict[str, Any]) -> None:
    accept_interaction(rt.lanes, payload, envelope_id)


def _slash_command(rt: Runtime, envelope_id: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    # The payload holds the fields the HTTP route gets as its form.
    form = {name: str(value) for name, value in payload.items() if isinstance(value, str | int)}
    return answer_command(rt.redis, rt.lanes, rt.settings, rt.clock.now(), form)


HANDLERS: dict[str, EnvelopeHandler] = {
    "interactive": _interactive,
    "slash_commands": _slash_command,
}


class SocketMode:
    """This process's Socket Mode connection, from `start` to `close`."""

    def __init__(self, rt: Runtime, ping_seconds: float = PING_SECONDS) -> None:
        token = rt.settings.slack_app_token
        if token is None:
            raise ValueError("Socket Mode needs SLACK_APP_TOKEN")
        self.rt = rt
        web = WebClient(base_url=rt.settings.slack_api_url, timeout=TIMEOUT_SECONDS)
        self.client = SocketModeClient(
            token.get_secret_value(), web_client=web, ping_interval=ping_seconds
        )
        self.client.message_listeners.append(self._on_envelope)
        self._closed = threading.Event()
        # Held by a connection attempt, so `close` never races slack_sdk's start of one.
        self._connecting = threading.Lock()
        self._opener = threading.Thread(target=self._open, name="socket-mode-open", daemon=True)

    def start(self) -> None:
        """Connect in the background: a worker works whether Slack answers or not."""
        log.info("Socket Mode: connecting to Slack for the notices' buttons")
        self._opener.start()

    def close(self) -> None:
        """Close the socket and stop slack_sdk's threads; an envelope being handled is
        handled first."""
        self._closed.set()
        with self._connecting:
            self._end_reading()
            self.client.close()
        log.info("Socket Mode: connection closed")

    def _end_reading(self) -> None:
        """slack_sdk's reader waits on the socket for up to 3 s at a time, and closing waits
        for that read; shut down, the socket ends the read at once."""
        session = self.client.current_session
        reading = session.sock if session is not None else None
        if reading is not None:
            with contextlib.suppress(OSError):  # gone already
                reading.shutdown(socket.SHUT_RDWR)

    def _open(self) -> None:
        pause = CONNECT_PAUSE_SECONDS
        while True:
            with self._connecting:
                if self._closed.is_set():
                    return
                try:
                    self.client.connect()
                    return
                except (SlackClientError, OSError) as error:
                    log.warning(
                        "Socket Mode: Slack gave no connection (%s); trying again in %.0f s",
                        error,
                        pause,
                    )
            if self._closed.wait(pause):
                return
            pause = min(pause * 2, CONNECT_PAUSE_LIMIT_SECONDS)

    def _on_envelope(
        self, client: BaseSocketModeClient, envelope: dict[str, Any], raw: str | None
    ) -> None:
        """Handle an envelope, then acknowledge it, whatever came of it: Slack would only send
        it again. Its handlers do no more than queue a job, so Slack's 3 seconds are kept."""
        kind, envelope_id = str(envelope.get("type")), envelope.get("envelope_id")
        if not isinstance(envelope_id, str):
            log.debug("Socket Mode: %s message", kind)  # hello and the like: nothing to answer
            return
        answer = None
        try:
            answer = self._handle(kind, envelope_id, envelope.get("payload"))
        finally:
            self._acknowledge(client, envelope_id, answer)

    def _handle(self, kind: str, envelope_id: str, payload: object) -> dict[str, Any] | None:
        handler = HANDLERS.get(kind)
        if handler is None or not isinstance(payload, dict):
            log.debug("Socket Mode: %s envelope %s acknowledged and left alone", kind, envelope_id)
            return None
        try:
            return handler(self.rt, envelope_id, payload)
        except ValueError as error:
            log.warning("Socket Mode: %s envelope %s refused: %s", kind, envelope_id, error)
        except RedisError as error:
            log.error("Socket Mode: %s envelope not recorded, Redis unreachable: %s", kind, error)
        return None

    def _acknowledge(
        self, client: BaseSocketModeClient, envelope_id: str, answer: dict[str, Any] | None
    ) -> None:
        ack: dict[str, Any] = {"envelope_id": envelope_id}
        if answer is not None:
            ack["payload"] = answer
        try:
            client.send_socket_mode_response(ack)
        except SlackClientError as error:  # the socket went: Slack sends it again, to any
            log.warning("Socket Mode: envelope %s not acknowledged: %s", envelope_id, error)


@contextmanager
def opened(rt: Runtime) -> Iterator[SocketMode | None]:
    """Socket Mode for the block's duration, when SLACK_APP_TOKEN is set."""
    if rt.settings.slack_app_token is None:
        yield None
        return
    socket = SocketMode(rt)
    socket.start()
    try:
        yield socket
    finally:
        socket.close()
