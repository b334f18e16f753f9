"""The embedded Redis server: real, persistent, shared by commands on one data directory."""

from __future__ import annotations

from redis import Redis

from stoplight.ops.redis_server import EmbeddedRedis


def test_state_survives_a_restart_from_the_append_only_file(tmp_path):
    with EmbeddedRedis(tmp_path) as server:
        Redis.from_url(server.url).set("kept", "yes")
    with EmbeddedRedis(tmp_path) as server:
        assert Redis.from_url(server.url).get("kept") == b"yes"


def test_a_second_command_shares_the_running_server(tmp_path):
    with EmbeddedRedis(tmp_path) as first:
        Redis.from_url(first.url).set("shared", "1")
        with EmbeddedRedis(tmp_path) as second:
            assert second.pid is None  # it started nothing
            assert Redis.from_url(second.url).get("shared") == b"1"
        # Leaving the second context does not stop the first one's server.
        assert Redis.from_url(first.url).ping()
