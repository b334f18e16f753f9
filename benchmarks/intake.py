"""Webhook intake throughput: how many signed ~23 KB deliveries a second are verified,
recorded and enqueued.

    python -m benchmarks.intake [--seconds 10] [--connections 32] [--workers 2]

Prints the in-process cost of one delivery, then HTTP figures from wrk (Debian's `wrk`
package) against gunicorn serving the web app, as production runs it, on an embedded Redis.
Without wrk installed, only the in-process figures are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from redis import Redis

from benchmarks.payload import pull_request_body
from stoplight.core.clock import SystemClock
from stoplight.events import intake
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.pipeline.lanes import BACKLOG, SHARED, Lanes
from stoplight.settings import Settings
from stoplight.web import create_app
from stoplight.web.webhooks import signature, signature_matches

SECRET = "benchmark-secret"


def per_call(label: str, count: int, call: object) -> None:
    started = time.perf_counter()
    for _ in range(count):
        call()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    print(f"  {label:<44} {elapsed / count * 1e6:8.0f} µs   ({count / elapsed:,.0f}/s on one core)")


def in_process(server: EmbeddedRedis, body: bytes, count: int) -> None:
    redis = Redis.from_url(server.url)
    lanes = Lanes.on(redis)
    clock = SystemClock()
    header = signature(SECRET.encode(), body)
    print(f"in-process, {len(body):,}-byte pull_request delivery:")
    per_call("verify signature", count, lambda: signature_matches(SECRET.encode(), body, header))
    per_call(
        "choose lane, record + enqueue",
        count,
        lambda: intake.accept(
            lanes, uuid.uuid4().hex, "pull_request", body, installation_id=42, now=clock.now()
        ),
    )
    settings = Settings(_env_file=None, WEBHOOK_SECRET=SECRET, REDIS_URL=server.url)
    client = create_app(settings).test_client()
    headers = {"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": header}
    per_call(
        "whole Flask view (no HTTP server)",
        count,
        lambda: client.post(
            "/api/github/webhooks",
            data=body,
            headers={**headers, "X-GitHub-Delivery": uuid.uuid4().hex},
            content_type="application/json",
        ),
    )
    redis.flushall()


WRK_SCRIPT = """
wrk.method = "POST"
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "pull_request"
wrk.headers["X-Hub-Signature-256"] = "{signature}"
local n = 0
request = function()
  n = n + 1
  local headers = {{}}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["X-GitHub-Delivery"] = "{run}-" .. n
  return wrk.format(nil, nil, headers)
end
"""


def over_http(server: EmbeddedRedis, body: bytes, args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): HTTP figures skipped")
        return
    workdir = Path(tempfile.mkdtemp())
    (workdir / "body.json").write_bytes(body)
    script = workdir / "deliveries.lua"
    script.write_text(
        WRK_SCRIPT.format(
            body=workdir / "body.json",
            signature=signature(SECRET.encode(), body),
            run=uuid.uuid4().hex,
        )
    )
    env = {**os.environ, "WEBHOOK_SECRET": SECRET, "REDIS_URL": server.url, "LOG_LEVEL": "warning"}
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b", "127.0.0.1:3999",
         "--log-level", "warning", "stoplight.web:create_app()"],
        env=env,
    )  # fmt: skip
    try:
        time.sleep(2)
        result = subprocess.run(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
             "-s", str(script), "http://127.0.0.1:3999/api/github/webhooks"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait()
    queued = sum(Redis.from_url(server.url).llen(f"rq:queue:{lane}") for lane in (SHARED, BACKLOG))
    print(f"HTTP: gunicorn -w {args.workers} (sync), wrk -c{args.connections} {args.seconds}s:")
    for line in result.stdout.splitlines():
        if any(word in line for word in ("Requests/sec", "50%", "99%", "Non-2xx", "requests in")):
            print("  " + line.strip())
    print(f"  jobs queued: {queued:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    body = pull_request_body()
    with EmbeddedRedis(Path(tempfile.mkdtemp()) / "redis") as server:
        in_process(server, body, args.count)
        over_http(server, body, args)


if __name__ == "__main__":
    main()
