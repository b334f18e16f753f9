"""Connections that outlast a Redis restart and a Sentinel failover, on real servers."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from stoplight.settings import Settings
from stoplight.state.connection import WEB, WORKER, SentinelTarget, connect, parse_sentinel_url
from tests.redis_servers import HOST, SERVICE, SentinelServer, Server, free_port, servers, until


def test_sentinel_urls_name_the_sentinels_the_service_the_database_and_the_passwords():
    assert parse_sentinel_url(
        "redis+sentinel://:s3cret@a.example:26380,b.example/stoplight/2?sentinel_password=x"
    ) == SentinelTarget(
        sentinels=(("a.example", 26380), ("b.example", 26379)),
        service="stoplight",
        db=2,
        password="s3cret",
        sentinel_password="x",
    )
    with pytest.raises(ValueError, match="redis\\+sentinel://host:port/service"):
        parse_sentinel_url("redis+sentinel://a.example:26379")


def test_redis_sentinels_is_another_way_to_say_a_sentinel_url(monkeypatch):
    monkeypatch.setenv("REDIS_SENTINELS", "a.example:26379, b.example:26380")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "queues")
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.redis_url == "redis+sentinel://a.example:26379,b.example:26380/queues"


def test_a_cluster_for_the_state_needs_a_plain_redis_for_the_lanes():
    cluster = "redis+cluster://10.0.0.11:6379,10.0.0.12:6379"
    with pytest.raises(ValidationError, match="set REDIS_QUEUE_URL to a Redis"):
        Settings(_env_file=None, REDIS_URL=cluster)
    with pytest.raises(ValidationError, match="REDIS_QUEUE_URL cannot be a Redis Cluster"):
        Settings(_env_file=None, REDIS_URL=cluster, REDIS_QUEUE_URL=cluster)
    lanes = "redis://10.0.0.20:6379/0"
    settings = Settings(_env_file=None, REDIS_URL=cluster, REDIS_QUEUE_URL=lanes)
    assert (settings.redis_url, settings.redis_queue_url) == (cluster, lanes)


@pytest.mark.slow
def test_a_command_during_a_restart_waits_for_redis_and_finds_what_its_aof_held(tmp_path):
    server = Server(tmp_path / "redis", free_port())
    with servers(server):
        redis = connect(server.url, WORKER)
        redis.set("accepted", "1")
        server.kill()
        restarted = threading.Timer(1.5, server.start)
        restarted.start()
        started = time.monotonic()
        try:
            assert redis.get("accepted") == b"1"  # retried until the server was back
        finally:
            restarted.join()
        print(f"the command waited {time.monotonic() - started:.1f} s for the restart")


@pytest.mark.slow
def test_the_web_tier_gives_up_within_seconds(tmp_path):
    server = Server(tmp_path / "redis", free_port())
    with servers(server):
        redis = connect(server.url, WEB)
        redis.ping()
        server.kill()
        started = time.monotonic()
        with pytest.raises(RedisConnectionError):
            redis.get("anything")
        print(f"the web tier's command failed after {time.monotonic() - started:.2f} s")


@pytest.mark.slow
def test_after_a_sentinel_failover_commands_reach_the_new_primary_with_all_it_held(tmp_path):
    primary = Server(tmp_path / "primary", free_port())
    replica = Server(tmp_path / "replica", free_port(), ("--replicaof", HOST, str(primary.port)))
    sentinel = SentinelServer(tmp_path / "sentinel", free_port(), primary_port=primary.port)
    with servers(primary, replica, sentinel):
        redis = connect(f"redis+sentinel://{HOST}:{sentinel.port}/{SERVICE}", WORKER)
        for number in range(100):
            redis.rpush("accepted", number)
        assert redis.execute_command("WAIT", 1, 5000) == 1  # the replica holds them all
        with sentinel.client() as watcher:
            until(lambda: _sentinel_knows_replica(watcher), "the Sentinel to find the replica")

        primary.kill()
        started = time.monotonic()
        redis.rpush("accepted", 100)  # retried until the Sentinel promoted the replica
        took = time.monotonic() - started

        print(f"the first write after the primary died waited {took:.1f} s for the failover")
        with replica.client() as promoted:
            assert promoted.execute_command("ROLE")[0] == b"master"
            assert promoted.lrange("accepted", 0, -1) == [str(n).encode() for n in range(101)]


def _sentinel_knows_replica(watcher) -> bool:
    return bool(watcher.execute_command("SENTINEL", "REPLICAS", SERVICE))
