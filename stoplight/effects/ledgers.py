"""Ledgers of what each commit and PR shows on GitHub, kept in Redis by the writers.

A writer notes an intent just before a request goes out (the client's `write`) and records the
ledger entry, dropping the intent, once GitHub has answered. A worker killed in between leaves
the intent, which tells the retry to read GitHub before writing again.
"""

from __future__ import annotations

from datetime import timedelta

from redis import Redis

# Statuses are per commit; a commit's ledger entry outlives any review it could matter to.
LEDGER_TTL = timedelta(days=90)


def record(redis: Redis, ledger: str, intent: str, value: str) -> None:
    # MULTI asked for outright: redis-py's cluster client pipelines without it by default.
    with redis.pipeline(transaction=True) as pipe:
        pipe.set(ledger, value, ex=LEDGER_TTL)
        pipe.delete(intent)
        pipe.execute()
