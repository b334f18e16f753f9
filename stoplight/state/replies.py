"""Redis replies in the types the app uses.

redis-py types a string reply `bytes | str`, since a client made with `decode_responses`
gets str; the app's clients never decode, so every string reply arrives as bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar, cast

from redis import Redis
from redis.client import Pipeline

from stoplight.core.clock import from_timestamp

T = TypeVar("T")


def binary(reply: bytes | str) -> bytes:
    """A string reply as the bytes it arrives as."""
    if not isinstance(reply, bytes):
        raise TypeError("a Redis client decodes responses; the app's clients must not")
    return reply


def text(reply: bytes | str) -> str:
    """A string reply, decoded."""
    return binary(reply).decode()


def members(redis: Redis, key: str, start: int = 0, end: int = -1) -> list[str]:
    """ZRANGE: the members of a sorted set from `start` to `end`, in order, as text."""
    # redis-py types ZRANGE's reply as if it might carry scores; without WITHSCORES it never does.
    found = cast(list[bytes | str], redis.zrange(key, start, end))
    return [text(member) for member in found]


def members_scored_up_to(redis: Redis, key: str, highest: float) -> list[str]:
    """ZRANGE BYSCORE: the members of a sorted set scored `highest` or lower, in order."""
    found = cast(list[bytes | str], redis.zrange(key, "-inf", highest, byscore=True))
    return [text(member) for member in found]


def scores(redis: Redis, key: str, start: int = 0, end: int = -1) -> list[float]:
    """ZRANGE WITHSCORES: the scores of a sorted set's members from `start` to `end`."""
    # Each entry is a (member, score) pair, the score a float; redis-py's type does not say so.
    found = cast(list[tuple[bytes, float]], redis.zrange(key, start, end, withscores=True))
    return [score for _, score in found]


def transaction_value(redis: Redis, write: Callable[[Pipeline], T], *watches: str) -> T:
    """Run `write` as an optimistic transaction over `watches`; return what it returns."""
    # redis-py types the callable as returning None, though value_from_callable returns its value.
    run = cast(Callable[[Pipeline], None], write)
    return cast(T, redis.transaction(run, *watches, value_from_callable=True))


def scheduled_moment(reply: float | None) -> datetime | None:
    """The moment a timed job is due, from the reply to `Runtime.read_schedule`; None if it is
    not in the schedule."""
    return from_timestamp(reply) if reply is not None else None
