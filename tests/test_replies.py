"""The typed reading of Redis replies, against the real server."""

from __future__ import annotations

import pytest
from redis import Redis
from redis.client import Pipeline

from stoplight.state.replies import binary, members, scores, text, transaction_value


def test_string_replies_are_bytes_read_as_text(redis: Redis) -> None:
    redis.set("greeting", "héllo")
    reply = redis.get("greeting")
    assert reply is not None
    assert binary(reply) == "héllo".encode()
    assert text(reply) == "héllo"


def test_a_decoded_reply_is_refused() -> None:
    # Only a client made with decode_responses answers str; the app never makes one.
    with pytest.raises(TypeError):
        text("already decoded")


def test_members_and_scores_of_a_range(redis: Redis) -> None:
    redis.zadd("lane", {"b": 2.5, "a": 1.0, "c": 3.0})
    assert members(redis, "lane") == ["a", "b", "c"]
    assert members(redis, "lane", 1, 1) == ["b"]
    assert scores(redis, "lane") == [1.0, 2.5, 3.0]
    assert scores(redis, "lane", 0, 0) == [1.0]
    assert members(redis, "missing") == [] and scores(redis, "missing") == []


def test_transaction_value_is_what_the_callable_returns(redis: Redis) -> None:
    redis.set("count", 4)

    def double(pipe: Pipeline) -> int:
        found = pipe.get("count")
        doubled = int(found or 0) * 2
        pipe.multi()
        pipe.set("count", doubled)
        return doubled

    assert transaction_value(redis, double, "count") == 8
    assert redis.get("count") == b"8"
