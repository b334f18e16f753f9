"""Every transaction and script the pipeline sends stays in one Redis Cluster slot.

Run on the ordinary Redis, with the client watched: each WATCH/MULTI/EXEC group and each
script outside one is recorded, and Redis itself says which arguments are keys (COMMAND
GETKEYS). The transport's are left out: RQ's own transactions, and the scripts that take a
delivery in and claim a batch of them (delivery records, lane streams); it does not run on a
cluster (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from redis.client import Pipeline
from redis.cluster import key_slot
from redis.exceptions import ResponseError

from stoplight.state import keys
from stoplight.transport.lanes import delivery_stream
from tests.conftest import deliver
from tests.fakes import Pull, Repo
from tests.test_teams import HEIJUNKA, push

Command = tuple[Any, ...]
TRANSPORT = ("rq:", keys.delivery(""), delivery_stream(""))


class Groups:
    """The commands of each transaction or script, as the client sent them."""

    def __init__(self) -> None:
        self.sent: list[list[Command]] = []
        self._open: dict[int, list[Command]] = {}

    def watch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        immediate, transaction = Pipeline.immediate_execute_command, Pipeline._execute_transaction
        reset, direct = Pipeline.reset, Redis.execute_command

        def immediate_(pipe: Pipeline, *args: Any, **options: Any) -> Any:
            self._open.setdefault(id(pipe), []).append(args)  # WATCH and the reads after it
            return immediate(pipe, *args, **options)

        def transaction_(
            pipe: Pipeline, connection: Any, commands: Any, raise_on_error: Any
        ) -> Any:
            self._open.setdefault(id(pipe), []).extend(args for args, _ in commands)
            return transaction(pipe, connection, commands, raise_on_error)

        def reset_(pipe: Pipeline) -> None:
            if group := self._open.pop(id(pipe), None):
                self.sent.append(group)
            reset(pipe)

        def direct_(client: Redis, *args: Any, **options: Any) -> Any:
            if str(args[0]).upper() in ("EVAL", "EVALSHA"):
                self.sent.append([args])
            return direct(client, *args, **options)

        monkeypatch.setattr(Pipeline, "immediate_execute_command", immediate_)
        monkeypatch.setattr(Pipeline, "_execute_transaction", transaction_)
        monkeypatch.setattr(Pipeline, "reset", reset_)
        monkeypatch.setattr(Redis, "execute_command", direct_)


def keys_of(redis: Redis, group: list[Command]) -> Iterator[str]:
    for command in group:
        try:
            found = redis.command_getkeys(*command)
        except ResponseError:  # a command without keys (MULTI, UNWATCH)
            continue
        yield from (name.decode() if isinstance(name, bytes) else name for name in found)


def test_every_transaction_and_script_of_the_pipeline_stays_in_one_slot(
    rt, github, clock, monkeypatch
):
    groups = Groups()
    groups.watch(monkeypatch)
    github.put_config("octo/shop", HEIJUNKA)
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(1, 8)]
    for pull in pulls:  # red at five: the last two are held
        deliver(rt, pull.event("opened", clock.now()))
        clock.advance(minutes=1)
    for pull in pulls[:3]:  # the held ones are admitted as the queue drains
        deliver(rt, pull.review("bob", "approved", clock.now()))
    github.put_config("octo/shop", "teams: [{name: web}]")  # the repository's PRs move
    deliver(rt, push(pulls[0].repo, [".github/stoplight.yml"]))
    other = Pull(repo=Repo(id=2002, full_name="acme/app", installation_id=7))
    deliver(rt, other.event("opened", clock.now()))
    deleted = {"action": "deleted", "installation": {"id": 7}, "repositories": []}
    deliver(rt, ("installation", deleted))
    monkeypatch.undo()

    spread = []
    for group in groups.sent:
        names = set(keys_of(rt.redis, group))
        if any(name.startswith(TRANSPORT) for name in names):
            continue
        if len({key_slot(name.encode()) for name in names}) > 1:
            spread.append(sorted(names))
    assert len(groups.sent) > 50  # the watch saw the pipeline's work
    assert spread == []
