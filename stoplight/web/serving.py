"""Waitress on a thread of its own, beside the worker that `stoplight serve` runs."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server
from waitress.trigger import trigger

# How long a request still being answered may delay shutdown.
STOP_TIMEOUT_SECONDS = 5


class WebServer:
    """Stops without a socket closed under the event loop's feet.

    Waitress's own close() shuts sockets from the calling thread, which races the
    loop's select() (EBADF) and its trigger writes. Here only the loop's thread
    closes sockets, after the last write to its trigger.
    """

    def __init__(self, app: Flask, *, host: str, port: int, threads: int = 8) -> None:
        # Owning the socket map lets the loop close every socket waitress opened.
        self._sockets: dict[int, Any] = {}
        self._server = create_server(app, map=self._sockets, host=host, port=port, threads=threads)
        self._waker = next(d for d in self._sockets.values() if isinstance(d, trigger))
        self._stopping = False
        self._closing = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # Requests being answered finish first; their replies go out through the loop.
        self._server.task_dispatcher.shutdown(timeout=STOP_TIMEOUT_SECONDS)
        with self._closing:
            self._stopping = True
            self._waker.pull_trigger()
        self._thread.join(STOP_TIMEOUT_SECONDS)

    def _serve(self) -> None:
        adjustments = self._server.adj
        while not self._stopping:
            wasyncore.loop(
                timeout=adjustments.asyncore_loop_timeout,
                map=self._sockets,
                use_poll=adjustments.asyncore_use_poll,
                count=1,
            )
        with self._closing:
            wasyncore.close_all(self._sockets)
