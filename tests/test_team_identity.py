"""A team is its defining file and its name: one name in two repositories' files is two teams."""

from __future__ import annotations

import json

import yaml

from stoplight.config.repos import RepoConfigs
from stoplight.core.changes import PullChange
from stoplight.core.light import Level
from stoplight.core.pulls import Rules
from stoplight.effects.plan import team_url
from stoplight.events.payloads import PullRequestEvent
from stoplight.pipeline import sync
from stoplight.state import keys
from stoplight.state.review_queue import QueueStore, Team
from tests.conftest import deliver, run_jobs
from tests.fakes import Pull, Repo
from tests.test_sync import GitHubReads

WEB, API, LIB = (
    Repo(id=2001, full_name="octo/web"),
    Repo(id=2002, full_name="octo/api"),
    Repo(id=2003, full_name="octo/lib"),
)
STRICT = """
teams:
  - name: app
    thresholds:
      yellow: {waiting: 1}
      red: {waiting: 2}
    cooldown: 0s
"""
LENIENT = """
teams:
  - name: app
    thresholds:
      red: {waiting: 20}
    cooldown: 0s
working_hours:
  timezone: Asia/Tokyo
"""
ORG_WIDE = """
teams:
  - name: app
    repos: [web, api]
    thresholds:
      yellow: {waiting: 1}
      red: {waiting: 2}
"""


def open_in(rt, clock, repo: Repo, numbers: range) -> None:
    for number in numbers:
        pull = Pull(repo=repo, number=number, head_sha=f"{repo.id:020x}{number:020x}")
        deliver(rt, pull.event("opened", clock.now()))
        clock.advance(seconds=30)


def test_one_team_name_in_two_repository_files_is_two_teams_with_their_own_settings(
    rt, github, clock
):
    github.put_config("octo/web", STRICT)
    github.put_config("octo/api", LENIENT)
    store = QueueStore(rt.redis, 42)

    open_in(rt, clock, WEB, range(1, 3))
    open_in(rt, clock, API, range(1, 4))  # api's PRs came last

    assert store.teams() == {"app@octo/web": "app", "app@octo/api": "app"}
    assert store.measures("app@octo/web").waiting == 2
    assert store.measures("app@octo/api").waiting == 3
    assert store.light("app@octo/web").level is Level.RED
    assert store.light("app@octo/api").level is Level.GREEN  # its yellow is the default 4
    web, api = (
        RepoConfigs(rt.redis, 42).team("app@octo/web"),
        RepoConfigs(rt.redis, 42).team("app@octo/api"),
    )
    assert web.policy.red.waiting == 2 and api.policy.red.waiting == 20
    assert web.policy.calendar != api.policy.calendar  # Tokyo hours only for api
    assert team_url("https://x", 42, "app@octo/web") == "https://x/teams/42/app%40octo%2Fweb"


def test_the_org_wide_file_defines_one_shared_team_under_its_plain_name(rt, github, clock):
    github.put_config("octo/.github", ORG_WIDE)
    store = QueueStore(rt.redis, 42)

    open_in(rt, clock, WEB, range(1, 2))
    open_in(rt, clock, API, range(1, 2))

    assert store.teams() == {"app": "app"}
    assert store.light("app").level is Level.RED


def test_extending_a_file_inherits_its_settings_but_not_its_teams(rt, github, clock):
    """`_extends` alone is no consent: lib's team without `repos` covers lib only, so web
    stays a team of its own, with lib's file-wide settings (its hours) inherited."""
    github.put_config("octo/lib", STRICT + "working_hours: {timezone: Asia/Tokyo}\n")
    github.put_config("octo/web", "_extends: lib\n")

    open_in(rt, clock, LIB, range(1, 2))
    open_in(rt, clock, WEB, range(1, 3))

    store = QueueStore(rt.redis, 42)
    assert store.teams() == {"app@octo/lib": "app", "octo/web": "octo/web"}
    assert store.measures("app@octo/lib").waiting == 1
    assert store.measures("octo/web").waiting == 2
    web = RepoConfigs(rt.redis, 42).team("octo/web")
    assert web.policy.red.waiting == 8  # the defaults: lib's thresholds are its team's
    assert web.policy.calendar == RepoConfigs(rt.redis, 42).team("app@octo/lib").policy.calendar


def test_repositories_a_file_lists_share_its_team_under_its_full_name(rt, github, clock):
    github.put_config(
        "octo/lib", STRICT.replace("- name: app", "- name: app\n    repos: [lib, web, api]")
    )
    github.put_config("octo/web", "_extends: lib\n")
    github.put_config("octo/api", "_extends: lib\n")

    open_in(rt, clock, WEB, range(1, 2))
    open_in(rt, clock, API, range(1, 2))

    store = QueueStore(rt.redis, 42)
    assert store.teams() == {"app@octo/lib": "app"}
    assert store.light("app@octo/lib").level is Level.RED


def test_a_queue_stored_under_a_plain_name_keeps_its_settings_until_a_sync_moves_it(
    rt, github, clock
):
    """Before teams were told apart by file, a repository file's team was stored by its name."""
    web = Repo(id=1001, full_name="octo/web")  # the id the sync's fake lists
    github.put_config("octo/web", STRICT)
    reads = GitHubReads(github, {42: ["octo/web"]})
    store = QueueStore(rt.redis, 42)
    installation = keys.InstallationKeys(42)
    rt.redis.set(
        installation.config("octo/web"),
        json.dumps({"raw": yaml.safe_load(STRICT), "org_wide": False, "error": None}),
    )
    rt.redis.hset(installation.team_homes, "app", "octo/web")
    for number in (1, 2):
        pull = Pull(repo=web, number=number, head_sha=f"{number:040x}")
        reads.add(pull, clock.now())
        event = PullRequestEvent.model_validate(pull.event("opened", clock.now())[1])
        change = PullChange(
            action="opened", pull=event.pull_request.snapshot(event.repository), at=clock.now()
        )
        store.apply(change, Team(key="app", name="app"), Rules(), clock.now())

    assert RepoConfigs(rt.redis, 42).team("app").policy.red.waiting == 2  # not the defaults

    sync.sync_all(rt)
    run_jobs(rt)
    assert store.measures("app@octo/web").waiting == 2
    assert store.measures("app").waiting == 0
    assert store.light("app@octo/web").level is Level.RED
