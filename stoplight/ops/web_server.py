"""The web process as deployed: `python -m stoplight.ops.web_server`.

granian (a Rust HTTP server) runs the app over WSGI, the webhook answered before Flask is
involved: measured with benchmarks/intake.py, it takes in deliveries faster than gunicorn's
sync or threaded workers at less CPU each.
HOST, PORT, WEB_CONCURRENCY (processes) and WEB_THREADS (threads each) tune it. Its processes
count deliveries in a directory they share (prometheus-client's multiprocess mode), so
/metrics reports all of them from any one; the directory is set here, before any import of
`stoplight.web` loads prometheus-client.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server import Server
from granian.server.common import AbstractServer

from stoplight import logs
from stoplight.settings import Settings

APP_FACTORY = "stoplight.web:create_app"


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


if __name__ == "__main__":
    main()
