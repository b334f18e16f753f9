"""gunicorn settings for the web process: `gunicorn -c python:stoplight.ops.gunicorn_config
'stoplight.web:create_app()'` (the container image's command).

Its worker processes count deliveries in a directory they share (prometheus-client's
multiprocess mode), so /metrics reports all of them from any one. HOST, PORT,
WEB_CONCURRENCY (processes) and WEB_THREADS (threads each) tune it. It lives outside
`stoplight.web`, whose import would load prometheus-client before the directory is set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from stoplight import logs
from stoplight.settings import Settings

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '3000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
# Set before any worker imports prometheus-client, which reads it once.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="stoplight-metrics-"))


def on_starting(server: Any) -> None:
    # Counts left by an earlier run of the same directory would be added to this one's.
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)
    logs.configure(Settings())


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
