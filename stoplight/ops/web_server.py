"""The web process as deployed: `python -m stoplight.ops.web_server`, also the web server
that `stoplight serve` starts as its child (`WebServerProcess`).

granian (a Rust HTTP server) runs the app over WSGI, the webhook answered before Flask is
involved (benchmarks/intake.py measures it).
HOST, PORT, WEB_CONCURRENCY (processes) and WEB_THREADS (threads each) tune it. Its processes
count deliveries in a directory they share (prometheus-client's multiprocess mode), so
/metrics reports all of them from any one; the directory is set here, before any import of
`stoplight.web` loads prometheus-client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server import Server
from granian.server.common import AbstractServer

from stoplight import logs
from stoplight.ops import children
from stoplight.settings import Settings

APP_FACTORY = "stoplight.web:create_app"
MODULE = "stoplight.ops.web_server"
# Longer than granian's own wait for its workers (workers_kill_timeout), so it can finish.
STOP_TIMEOUT_SECONDS = 10


def shared_metrics_directory() -> str:
    """PROMETHEUS_MULTIPROC_DIR, emptied: an earlier run's counts would add to this one's."""
    directory = os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="stoplight-metrics-")
    )
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)
    return directory


def server() -> AbstractServer[Any]:
    return Server(
        APP_FACTORY,
        factory=True,
        interface=Interfaces.WSGI,
        address=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", "3000")),
        workers=int(os.environ.get("WEB_CONCURRENCY", "2")),
        blocking_threads=int(os.environ.get("WEB_THREADS", "4")),
        respawn_failed_workers=True,
        # A worker granian fails to stop on SIGTERM would hold up the restart for ever.
        workers_kill_timeout=5,
        log_level=LogLevels.warning,
    )


def main() -> None:
    shared_metrics_directory()
    web = server()
    logs.configure(Settings())
    web.serve()


class PortTaken(Exception):
    """Something else holds the address the web server is to listen on."""


class WebServerProcess:
    """This module's server as a child process, for `stoplight serve`.

    granian serves WSGI only from worker processes under a main process of its own (its
    embedded server takes ASGI and RSGI only, its threaded one needs a free-threaded Python),
    and that main process wants the main thread's signals, as `serve`'s worker does. So the
    web server is a child, in a session of its own like the embedded Redis: Ctrl-C reaches
    `serve`, which stops its worker, then the web server, then Redis.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def local_host(self) -> str:
        """Where this machine reaches the server, also when it listens on every address."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host

    @property
    def url(self) -> str:
        return f"http://{self.local_host}:{self.port}"

    def start(self, timeout: float = 30.0) -> WebServerProcess:
        # granian reports an address in use with a Rust panic's backtrace: say it plainly.
        if not self._address_free():
            raise PortTaken(f"{self.host}:{self.port} is in use; set HOST or PORT")
        environment = {**os.environ, "HOST": self.host, "PORT": str(self.port)}
        # One process for a first try: one app in memory, the setup link logged once.
        environment.setdefault("WEB_CONCURRENCY", "1")
        self._process = subprocess.Popen(
            [sys.executable, "-m", MODULE],
            env=environment,
            stdin=subprocess.DEVNULL,
            preexec_fn=children.die_with_parent,
            start_new_session=True,
        )
        self._wait_until_listening(timeout)
        return self

    def _address_free(self) -> bool:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError:
                return False
        return True

    def _wait_until_listening(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the web server exited at start-up ({self._process.returncode})"
                )
            try:
                socket.create_connection((self.local_host, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the web server did not listen within {timeout}s")

    def watch(self, on_exit: Callable[[int], object]) -> None:
        """Call `on_exit` with the exit code if the server ends before `stop` was asked for:
        a `serve` whose web server died would go on working and answer no one."""
        process = self._process
        assert process is not None, "watch a started server"

        def wait() -> None:
            code = process.wait()
            if self._process is process:  # not stopped on purpose
                _end_group(process)
                on_exit(code)

        threading.Thread(target=wait, name="web server watch", daemon=True).start()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            # granian lets requests being answered finish, then stops its workers.
            children.stop(process, timeout=STOP_TIMEOUT_SECONDS)
            _end_group(process)

    def __enter__(self) -> WebServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """granian's worker processes outlive a main process that was killed: they are in its
    session's process group, which ends with it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
