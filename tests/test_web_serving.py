"""`stoplight serve`'s web thread stops cleanly, even with requests arriving."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask

from stoplight.web.serving import WebServer
from tests.test_end_to_end import free_port

REQUEST = b"GET / HTTP/1.1\r\nHost: stoplight\r\n\r\n"


def ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
        connection.sendall(REQUEST)
        return connection.recv(100)


def keep_asking(port: int, until: threading.Event) -> None:
    while not until.is_set():
        # Refused or reset while the server stops: what the test is about.
        with contextlib.suppress(OSError):
            ask(port)


@pytest.fixture
def thread_errors(monkeypatch) -> Iterator[list[BaseException]]:
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda hook: errors.append(hook.exc_value))
    yield errors


def test_stops_without_errors_while_requests_arrive(thread_errors, caplog) -> None:
    app = Flask(__name__)
    app.get("/")(lambda: "ok")
    caplog.set_level(logging.ERROR, logger="waitress")
    # A socket closed under the loop's select() fails only now and then, so stop often.
    for round_number in range(40):
        port = free_port()
        web = WebServer(app, host="127.0.0.1", port=port, threads=2)
        web.start()
        assert ask(port).startswith(b"HTTP/1.1 200")
        done = threading.Event()
        clients = [threading.Thread(target=keep_asking, args=(port, done)) for _ in range(4)]
        for client in clients:
            client.start()
        time.sleep(0.005 * (round_number % 5))
        web.stop()
        done.set()
        for client in clients:
            client.join()
        with pytest.raises(ConnectionRefusedError):
            ask(port)
    assert thread_errors == []
    assert caplog.records == []
