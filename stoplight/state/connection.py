"""Connections to Redis that ride out its restarts, network trouble and failovers.

Every process connects through `connect`. A command that meets a dropped connection or a
timeout is retried with jittered exponential backoff (redis-py's `Retry`) before it fails,
so a Redis restart or a failover of a few seconds costs a pause, not an error. With
Sentinel (a `redis+sentinel://` URL, or `REDIS_SENTINELS`), each new connection asks the
Sentinels where the primary is now, so the retry after a failover reaches the new primary.
A `redis+cluster://` URL gives redis-py's cluster client, which follows the slots' moves
itself; only the state lives there (see docs/scaling.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel

from stoplight.settings import CLUSTER_SCHEME, is_cluster_url

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
# Errors worth a retry: the connection dropped or timed out, or a primary was demoted under
# us (a failover in progress: the next connection asks the Sentinels again).
RETRIED = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)


@dataclass(frozen=True)
class Patience:
    """How long a process waits for Redis before a command fails."""

    connect_timeout: float
    socket_timeout: float
    retries: int
    backoff_cap: float

    def retry(self) -> Retry:
        return Retry(
            ExponentialWithJitterBackoff(cap=self.backoff_cap, base=0.05),
            self.retries,
            supported_errors=RETRIED,
        )


# GitHub waits 10 s for a delivery's answer, and a 503 makes it redeliver: the web tier
# gives up within a few seconds rather than hold the request.
WEB = Patience(connect_timeout=1, socket_timeout=3, retries=1, backoff_cap=0.2)
# Workers and the scheduler have nobody waiting: about 20 s of retries covers a restart or
# a failover; longer outages are the worker loop's to wait out.
WORKER = Patience(connect_timeout=3, socket_timeout=30, retries=8, backoff_cap=5)


@dataclass(frozen=True)
class SentinelTarget:
    """Where the Sentinels are and which primary they watch."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse_sentinel_url(url: str) -> SentinelTarget:
    """`redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]`, with
    `?sentinel_password=` when the Sentinels themselves ask for one."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    path = [unquote(part) for part in parts.path.split("/") if part]
    if not hosts or not path or len(path) > 2:
        raise ValueError(f"{SENTINEL_SCHEME} URLs read {SENTINEL_SCHEME}://host:port/service")
    query = parse_qs(parts.query)
    return SentinelTarget(
        sentinels=tuple(_host_port(each) for each in hosts.split(",")),
        service=path[0],
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=query.get("sentinel_password", [None])[0],
    )


def _host_port(text: str, default_port: int = DEFAULT_SENTINEL_PORT) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    return host.strip("[]"), int(port) if port else default_port


def _cluster(url: str, options: dict[str, Any]) -> Redis:
    """`redis+cluster://[[user]:password@]host[:port][,host[:port]...]`."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    if not hosts:
        raise ValueError(f"{CLUSTER_SCHEME} URLs read {CLUSTER_SCHEME}://host:port[,host:port]")
    nodes = [ClusterNode(*_host_port(each, 6379)) for each in hosts.split(",")]
    # Typed as the plain client: the state calls only commands both clients have.
    return RedisCluster(  # type: ignore[return-value]
        startup_nodes=nodes,
        username=unquote(username) or None,
        password=unquote(password) or None,
        **options,
    )


def connect(url: str, patience: Patience = WORKER) -> Redis:
    """A client for `url` (redis://, rediss://, unix://, redis+sentinel:// or
    redis+cluster://)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": patience.connect_timeout,
        "socket_timeout": patience.socket_timeout,
        "health_check_interval": 15,  # a connection idle this long is checked before use
        "retry": patience.retry(),
    }
    # TCP keepalive notices a peer gone without a word; a unix socket (the embedded server)
    # has no such option.
    if not url.startswith("unix://"):
        options["socket_keepalive"] = True
    if is_cluster_url(url):
        return _cluster(url, options)
    if not url.startswith(f"{SENTINEL_SCHEME}://"):
        return Redis.from_url(url, **options)
    target = parse_sentinel_url(url)
    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs={
            "password": target.sentinel_password,
            "socket_connect_timeout": patience.connect_timeout,
            "socket_timeout": patience.connect_timeout,
        },
    )
    return sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )
