"""Webhook intake, Stoplight beside Probot: the same signed ~23 KB `pull_request` body, the
same load generator (wrk), the same Redis, alternating rounds, medians.

    python -m benchmarks.intake [--rounds 3] [--seconds 8] [--connections 32] [--rate 500]
    python -m benchmarks.intake --flood 200000     # Redis memory with every worker stopped

For each server it prints deliveries/s at saturation (wrk, 32 connections), p99 latency at a
fixed offered rate (wrk paced by a Lua `delay()` that hands every request the next slot of an
open schedule; wrk2 is not packaged), and CPU ms per delivery of the server's processes and of
Redis (from /proc). Stoplight runs the web command of `deploy/Procfile`, as deployed; Probot
(latest 14.x) is installed from the npm registry into a cache directory at run time and answers
with a handler that stores nothing. Without node/npm, Stoplight is measured alone; without wrk
(Debian's `wrk` package), only the in-process cost of one delivery is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from benchmarks.payload import pull_request_body
from stoplight.core.clock import SystemClock
from stoplight.events import intake
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.settings import Settings
from stoplight.transport.lanes import Lanes
from stoplight.web import create_app
from stoplight.web.webhooks import signature, signature_matches
from tests.fakes import throwaway_private_key

SECRET = "benchmark-secret"
WEBHOOK_PATH = "/api/github/webhooks"
ROOT = Path(__file__).resolve().parents[1]
PROBOT_HOME = Path.home() / ".cache" / "stoplight-benchmarks" / "probot14"
PROBOT_SERVER = Path(__file__).with_name("probot_server.mjs")
TICKS = os.sysconf("SC_CLK_TCK")
STARTUP_SECONDS = 30
# The deployed command names its server bare, as the venv's bin directory provides it.
SEARCH_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def per_call(label: str, count: int, call: Callable[[], object]) -> None:
    started = time.perf_counter()
    for _ in range(count):
        call()
    elapsed = time.perf_counter() - started
    print(f"  {label:<44} {elapsed / count * 1e6:8.0f} µs   ({count / elapsed:,.0f}/s on one core)")


def in_process(server: EmbeddedRedis, body: bytes, count: int) -> None:
    redis = Redis.from_url(server.url)
    lanes = Lanes.on(redis)
    clock = SystemClock()
    header = signature(SECRET.encode(), body)
    print(f"in-process, {len(body):,}-byte pull_request delivery:")
    per_call("verify signature", count, lambda: signature_matches(SECRET.encode(), body, header))
    per_call("check JSON, read installation", count, lambda: intake.installation_in(body))
    per_call(
        "record, choose lane, queue in its stream",
        count,
        lambda: intake.accept(
            lanes, uuid.uuid4().hex, "pull_request", body, installation_id=42, now=clock.now()
        ),
    )
    settings = Settings(_env_file=None, WEBHOOK_SECRET=SECRET, REDIS_URL=server.url)
    client = create_app(settings).test_client()
    headers = {"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": header}
    per_call(
        "whole webhook endpoint (no HTTP server)",
        count,
        lambda: client.post(
            WEBHOOK_PATH,
            data=body,
            headers={**headers, "X-GitHub-Delivery": uuid.uuid4().hex},
            content_type="application/json",
        ),
    )
    redis.flushall()


def flood(server: EmbeddedRedis, body: bytes, count: int) -> None:
    """Redis memory held by `count` deliveries waiting while every worker is stopped."""
    redis = Redis.from_url(server.url)
    lanes, clock = Lanes.on(redis), SystemClock()
    redis.flushall()
    before = redis.info("memory")["used_memory"]
    started = time.perf_counter()
    for number in range(count):
        intake.accept(
            lanes,
            f"flood-{number}",
            "pull_request",
            body,
            installation_id=1 + number % 50,
            now=clock.now(),
        )
    elapsed = time.perf_counter() - started
    used = redis.info("memory")["used_memory"] - before
    print(
        f"flood of {count:,} deliveries, no worker running: {used / 2**20:,.0f} MiB of Redis"
        f" ({used / count / 1024:.1f} KB each), taken in at {count / elapsed:,.0f}/s in-process"
    )
    redis.flushall()


# Each request gets its own delivery id. With PACE_MS > 0, `delay()` gives each request the
# next slot of a fixed schedule (LuaJIT's ffi reads the monotonic clock), so the offered rate
# holds whatever the latency.
WRK_SCRIPT = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} timespec;
int clock_gettime(int clk_id, timespec *tp);
]]
local ts = ffi.new("timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
wrk.method = "POST"
local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "pull_request"
wrk.headers["X-Hub-Signature-256"] = "{signature}"
local pace = {pace_ms}
local n = 0
local next_slot = nil
request = function()
  n = n + 1
  local headers = {{}}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["X-GitHub-Delivery"] = "{run}-" .. n
  return wrk.format(nil, nil, headers)
end
if pace > 0 then
  delay = function()
    local now = now_ms()
    if next_slot == nil then next_slot = now end
    next_slot = next_slot + pace
    return math.max(0, next_slot - now)
  end
end
"""


@dataclass
class Load:
    requests: int
    seconds: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(port: int, body_file: Path, args: argparse.Namespace, pace_ms: float) -> Load:
    script = body_file.with_suffix(f".{uuid.uuid4().hex}.lua")
    script.write_text(
        WRK_SCRIPT.format(
            body=body_file,
            signature=signature(SECRET.encode(), body_file.read_bytes()),
            run=uuid.uuid4().hex,
            pace_ms=pace_ms,
        )
    )
    result = subprocess.run(
        ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
         "--timeout", "5s", "-s", str(script), f"http://127.0.0.1:{port}{WEBHOOK_PATH}"],
        capture_output=True, text=True, check=True, timeout=args.seconds + 30,
    )  # fmt: skip
    out = result.stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    assert done, out
    seconds = _milliseconds(done[2] + done[3]) / 1e3
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(non2xx[1]) if non2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    return Load(int(done[1]), seconds, _milliseconds(p99[1]) if p99 else float("nan"), errors)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {STARTUP_SECONDS}s")


@dataclass
class Figures:
    rate: float
    p99_ms: float
    offered: float
    server_cpu_ms: float
    redis_cpu_ms: float
    errors: int
    redis_bytes: float


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int

    @contextmanager
    def running(self) -> Iterator[subprocess.Popen[bytes]]:
        process = subprocess.Popen(
            self.command,
            env={**os.environ, **self.env, "PORT": str(self.port), "PATH": SEARCH_PATH},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, process)
            time.sleep(1)  # every worker process up, not only the first
            yield process
        finally:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(timeout=5)


def measure(
    server: Server, redis: EmbeddedRedis, body_file: Path, args: argparse.Namespace
) -> Figures:
    client = Redis.from_url(redis.url)
    with server.running() as process:
        run_wrk(server.port, body_file, argparse.Namespace(**{**vars(args), "seconds": 2}), 0)
        pids, redis_pids = process_tree(process.pid), [redis.pid]  # type: ignore[list-item]
        client.flushall()
        memory_before = client.info("memory")["used_memory"]
        server_before, redis_before = cpu_seconds(pids), cpu_seconds(redis_pids)
        saturated = run_wrk(server.port, body_file, args, 0)
        memory = client.info("memory")["used_memory"] - memory_before
        server_cpu = cpu_seconds(pids) - server_before
        redis_cpu = cpu_seconds(redis_pids) - redis_before
        paced = run_wrk(server.port, body_file, args, 1000 / args.rate)
    client.flushall()
    delivered = saturated.requests - saturated.errors
    return Figures(
        rate=delivered / saturated.seconds,
        p99_ms=paced.p99_ms,
        offered=paced.rate,
        server_cpu_ms=server_cpu / delivered * 1e3,
        redis_cpu_ms=redis_cpu / delivered * 1e3,
        errors=saturated.errors + paced.errors,
        redis_bytes=memory / delivered,
    )


def install_probot() -> str | None:
    """Probot's version, installed (once) into the cache directory; None without node/npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    PROBOT_HOME.mkdir(parents=True, exist_ok=True)
    (PROBOT_HOME / "package.json").write_text('{"private": true}\n')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "probot@14"],
        cwd=PROBOT_HOME, check=True, timeout=600,
    )  # fmt: skip
    installed = (PROBOT_HOME / "node_modules" / "probot" / "package.json").read_text()
    return re.search(r'"version":\s*"([^"]+)"', installed)[1]  # type: ignore[index]


def deployed_web_command() -> list[str]:
    procfile = (ROOT / "deploy" / "Procfile").read_text()
    line = re.search(r"^web:\s*(.+)$", procfile, re.MULTILINE)
    assert line, "deploy/Procfile has no web line"
    return shlex.split(line[1])


def report(name: str, rounds: list[Figures]) -> Figures:
    median = Figures(
        *(statistics.median(getattr(r, field) for r in rounds) for field in Figures.__annotations__)
    )
    spread = ", ".join(f"{r.rate:,.0f}" for r in rounds)
    print(
        f"  {name:<32} {median.rate:>9,.0f}/s ({spread})   p99 {median.p99_ms:5.1f} ms"
        f" at {median.offered:,.0f}/s   CPU {median.server_cpu_ms:.3f} + {median.redis_cpu_ms:.3f}"
        f" ms/delivery   Redis {median.redis_bytes / 1024:.1f} KB/delivery"
        f"   errors {sum(r.errors for r in rounds)}"
    )
    return median


def over_http(redis: EmbeddedRedis, body: bytes, args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): HTTP figures skipped")
        return
    body_file = Path(tempfile.mkdtemp()) / "body.json"
    body_file.write_bytes(body)
    command = shlex.split(args.web_command) if args.web_command else deployed_web_command()
    servers = [
        Server(
            "stoplight" if args.web_command else "stoplight (deploy/Procfile)",
            command,
            {
                "WEBHOOK_SECRET": SECRET,
                "REDIS_URL": redis.url,
                "HOST": "127.0.0.1",
                "LOG_LEVEL": "warning",
            },
            3997,
        )
    ]
    version = None if args.no_probot else install_probot()
    if args.no_probot:
        print("Probot not measured (--no-probot)")
    elif version is None:
        print("node/npm not found: Probot not measured, Stoplight alone")
    else:
        servers.append(
            Server(
                f"probot {version}",
                ["node", str(PROBOT_SERVER)],
                {
                    "PROBOT_HOME": str(PROBOT_HOME),
                    "WEBHOOK_SECRET": SECRET,
                    "PRIVATE_KEY": throwaway_private_key(),
                    "LOG_LEVEL": "warn",
                },
                3998,
            )
        )
    print(f"stoplight web command: {shlex.join(command)}")
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} alternating rounds;"
        f" p99 at {args.rate}/s offered (wrk paced by a Lua delay() schedule)"
    )
    results: dict[str, list[Figures]] = {server.name: [] for server in servers}
    for round_number in range(args.rounds):
        order = servers if round_number % 2 == 0 else servers[::-1]
        for server in order:
            results[server.name].append(measure(server, redis, body_file, args))
    print("medians (saturation rounds in brackets):")
    medians = {name: report(name, rounds) for name, rounds in results.items()}
    if len(medians) == 2:
        ours, theirs = medians.values()
        print(
            f"  stoplight / probot: {ours.rate / theirs.rate:.2f}x deliveries/s,"
            f" p99 {ours.p99_ms / theirs.p99_ms:.2f}x,"
            f" CPU {(ours.server_cpu_ms + ours.redis_cpu_ms) / theirs.server_cpu_ms:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument(
        "--web-command", help="measure this command instead of deploy/Procfile's web line"
    )
    parser.add_argument("--no-probot", action="store_true", help="measure Stoplight alone")
    parser.add_argument(
        "--flood", type=int, metavar="N", help="only measure Redis memory for N waiting deliveries"
    )
    args = parser.parse_args()
    body = pull_request_body()
    with EmbeddedRedis(Path(tempfile.mkdtemp()) / "redis") as server:
        if args.flood:
            flood(server, body, args.flood)
            return
        in_process(server, body, args.count)
        over_http(server, body, args)


if __name__ == "__main__":
    main()
