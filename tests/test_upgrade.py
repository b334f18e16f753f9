"""Upgrading from the key names of version 1 (`stoplight:i:42:…`) to hash-tagged ones."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner

from stoplight import cli, jobs
from stoplight.pipeline import fanout
from stoplight.pipeline.context import InstallationContext
from stoplight.state import keys
from stoplight.state.history import read_history
from stoplight.state.review_queue import QueueStore
from stoplight.state.upgrade import owed_effects, upgrade_keys, upgrade_keys_once
from tests.conftest import deliver, run_jobs
from tests.fakes import Pull

SHA = "a" * 40
# What version 1 held for installation 42 after one PR was opened, by its names then.
VERSION_1_KEYS = [
    "stoplight:i:42:config:octo/shop",
    "stoplight:i:42:posted:labels:1001#1",
    f"stoplight:i:42:posted:status:octo/shop:{SHA}",
    "stoplight:i:42:pr:1001#1",
    "stoplight:i:42:repo-labels:octo/shop",
    "stoplight:i:42:t:octo/shop:history:entries",
    "stoplight:i:42:t:octo/shop:history:lights",
    "stoplight:i:42:t:octo/shop:history:samples",
    "stoplight:i:42:t:octo/shop:light",
    "stoplight:i:42:t:octo/shop:lines",
    "stoplight:i:42:t:octo/shop:open",
    "stoplight:i:42:t:octo/shop:waiting",
    "stoplight:i:42:team-homes",
    "stoplight:i:42:teams",
    "stoplight:i:42:token",
    "stoplight:i:42:writes",
]


# Kept from version 4 on: version 1 had none of them.
LATER_KEYS = ["stoplight:i:{42}:t:octo/shop:waiting:people"]


def _as_version_1(redis) -> None:
    """Store every key of installation 42 under its version-1 name, as an old deployment has."""
    redis.delete(*LATER_KEYS)
    for old in VERSION_1_KEYS:
        redis.rename(old.replace("stoplight:i:42:", "stoplight:i:{42}:"), old)
    assert not list(redis.scan_iter(match="stoplight:i:{42}:*"))


def _opened(rt, github, clock) -> Pull:
    pull = Pull(head_sha=SHA)
    deliver(rt, pull.event("opened", clock.now()))
    assert github.statuses()
    _as_version_1(rt.redis)
    return pull


def test_the_queue_history_and_ledgers_of_version_1_are_read_after_the_upgrade(rt, github, clock):
    pull = _opened(rt, github, clock)
    store = QueueStore(rt.redis, 42)
    assert store.measures("octo/shop").waiting == 0  # unread under the old names

    upgrade = upgrade_keys(rt.redis)

    assert (upgrade.renamed, upgrade.left) == (len(VERSION_1_KEYS), 0)
    assert not list(rt.redis.scan_iter(match="stoplight:i:42:*"))
    assert store.measures("octo/shop").waiting == 1
    assert rt.redis.zscore(keys.InstallationKeys(42).team("octo/shop").waiting_people, "alice") == 1
    assert store.pull("1001#1") is not None
    history = read_history(rt.redis, 42, "octo/shop", clock.now(), clock.now())
    assert [entry.pull for entry in history.entries] == ["1001#1"]
    ledger = keys.InstallationKeys(42).status_posted("octo/shop", SHA)
    assert rt.redis.ttl(ledger) > 0  # the ledger keeps its time to live
    writes = len(github.writes())
    deliver(rt, pull.event("edited", clock.now()))
    assert len(github.writes()) == writes  # the status and labels are known as posted


def test_the_upgrade_runs_again_without_harm_and_never_overwrites(rt, github, clock):
    _opened(rt, github, clock)
    upgrade_keys(rt.redis)
    rt.redis.set("stoplight:i:42:t:octo/shop:light", "written by a version-1 process")

    again = upgrade_keys(rt.redis)

    assert (again.renamed, again.left) == (0, 1)
    assert QueueStore(rt.redis, 42).light("octo/shop") is not None  # the newer value stays
    assert rt.redis.exists("stoplight:i:42:t:octo/shop:light")


def test_start_up_upgrades_once_then_only_reads_the_version(rt, github, clock):
    _opened(rt, github, clock)
    assert upgrade_keys_once(rt.redis) is not None
    rt.redis.set("stoplight:i:42:late", 1)
    assert upgrade_keys_once(rt.redis) is None
    assert rt.redis.exists("stoplight:i:42:late")


def test_migrate_command_reports_what_it_renamed(rt, github, clock, redis_server, monkeypatch):
    _opened(rt, github, clock)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LOG_LEVEL", "warning")

    result = CliRunner().invoke(cli.main, ["migrate"])

    assert result.exit_code == 0, result.output
    assert f"{len(VERSION_1_KEYS)} keys renamed" in result.output
    assert QueueStore(rt.redis, 42).measures("octo/shop").waiting == 1


def _as_version_2_team(redis, new: str, old: str) -> None:
    """Store team `new`'s keys, hash entries and PR records under its version-2 key `old`."""
    installation = keys.InstallationKeys(42)
    for name in redis.scan_iter(match=f"{installation.team(new).root}:*"):
        redis.rename(name, name.decode().replace(new, old, 1))
    for index in (installation.teams, installation.team_homes):
        value = redis.hget(index, new)
        redis.hdel(index, new)
        redis.hset(index, old, "octo/shop" if index == installation.team_homes else value)
    record = redis.get(installation.pull("1001#1"))
    redis.set(installation.pull("1001#1"), record.replace(new.encode(), old.encode()))
    redis.set(keys.KEY_SCHEMA, 2)


def test_version_2_team_keys_are_qualified_by_their_files_owner(rt, github, clock):
    github.put_config("octo/shop", "teams: [{name: web, thresholds: {yellow: {waiting: 1}}}]")
    deliver(rt, Pull(head_sha=SHA).event("opened", clock.now()))
    store = QueueStore(rt.redis, 42)
    assert store.teams() == {"web@octo/shop": "web"}
    _as_version_2_team(rt.redis, "web@octo/shop", "web@shop")
    assert store.measures("web@octo/shop").waiting == 0  # unread under the old key

    upgrade = upgrade_keys_once(rt.redis)

    assert upgrade is not None and upgrade.renamed > 0 and upgrade.left == 0
    assert store.teams() == {"web@octo/shop": "web"}
    assert store.measures("web@octo/shop").waiting == 1
    assert store.pull("1001#1").team == "web@octo/shop"
    assert rt.redis.hget(keys.InstallationKeys(42).team_homes, "web@octo/shop") == b"octo/shop"
    week = timedelta(days=7)
    history = read_history(rt.redis, 42, "web@octo/shop", clock.now() - week, clock.now())
    assert history.samples
    assert upgrade_keys_once(rt.redis) is None
    statuses = len(github.statuses())
    deliver(rt, Pull(number=2, head_sha="b" * 40).event("opened", clock.now()))
    assert store.measures("web@octo/shop").waiting == 2  # the queue went on where it was
    assert len(github.statuses()) > statuses


def _migrate(redis_server, monkeypatch) -> str:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LOG_LEVEL", "warning")
    result = CliRunner().invoke(cli.main, ["migrate"])
    assert result.exit_code == 0, result.output
    return result.output


def _opened_with_the_pass_queued(rt, clock, monkeypatch) -> None:
    """A PR opened, its team's effects pass queued and not run yet."""
    queued_passes = []
    with monkeypatch.context() as held:
        held.setattr(jobs, "apply_effects", lambda *team: queued_passes.append(team))
        deliver(rt, Pull(head_sha=SHA).event("opened", clock.now()))
    assert queued_passes == [(42, "octo/shop")]


def test_effects_an_earlier_worker_owed_are_applied_once_migrate_renames_them(
    rt, github, clock, redis_server, monkeypatch
):
    # During a rollout an earlier worker applies a delivery under its names and queues the
    # team's effects pass; a new worker takes the job and, reading the new names, finds
    # nothing owed. Once migrate renames the team's keys, the pass must still be made.
    _opened_with_the_pass_queued(rt, clock, monkeypatch)
    team = keys.InstallationKeys(42).team("octo/shop")
    rt.redis.delete(*LATER_KEYS, team.effects_queued)  # version 1 had no queued-pass marker
    for name in rt.redis.scan_iter(match="stoplight:i:{42}:*"):
        rt.redis.rename(name, name.decode().replace("stoplight:i:{42}:", "stoplight:i:42:"))
    rt.redis.delete(keys.KEY_SCHEMA)
    fanout.apply_effects(
        InstallationContext.of(rt, 42), "octo/shop"
    )  # the new worker, on the earlier worker's job
    assert github.statuses() == []

    output = _migrate(redis_server, monkeypatch)
    run_jobs(rt)

    assert "1 teams' statuses and labels owed: their passes are queued" in output
    assert [(sha, state) for sha, state, _ in github.statuses()] == [(SHA, "success")]


def test_effects_a_new_worker_owed_are_applied_after_an_earlier_worker_took_its_job(
    rt, github, clock, redis_server, monkeypatch
):
    # The other way round: the new worker queues the pass, an earlier worker takes the job,
    # reads the old names and ends, leaving the marker that says a pass is queued.
    _opened_with_the_pass_queued(rt, clock, monkeypatch)
    assert rt.queue.exists(keys.InstallationKeys(42).team("octo/shop").effects_queued)

    _migrate(redis_server, monkeypatch)
    run_jobs(rt)

    assert [(sha, state) for sha, state, _ in github.statuses()] == [(SHA, "success")]


def test_owed_effects_are_the_teams_marked_stale_under_the_current_names(rt, github, clock):
    _opened(rt, github, clock)  # its effects applied: nothing owed
    assert owed_effects(rt.redis) == set()
    rt.redis.set(keys.InstallationKeys(7).team("web@octo/app").effects_dirty, 1)
    rt.redis.set("stoplight:i:7:t:api@octo/app:effects:dirty", 1)  # renamed before it counts
    rt.redis.set(keys.InstallationKeys(7).team("web@octo/app").effects_lock, "a pass")

    assert owed_effects(rt.redis) == {(7, "web@octo/app")}
