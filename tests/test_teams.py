"""Configured teams through the whole pipeline: lookup, held lane, swarm, errors, hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from rq.registry import ScheduledJobRegistry

from stoplight.config.repos import RepoConfigs
from stoplight.core.clock import from_timestamp
from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS
from stoplight.state.keys import job_id
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import team_view
from tests.conftest import deliver
from tests.fakes import Pull, Repo

GREEN, YELLOW, RED = (DESCRIPTIONS[level] for level in Level)
WEB = "web@octo/shop"  # the team `web` of octo/shop's own file
HEIJUNKA = """
teams:
  - name: web
    thresholds:
      yellow: {waiting: 3}
      red: {waiting: 5}
    cooldown: 0s
swarm_labels: 2
"""


def push(repo: Repo, files: list[str], ref: str = "refs/heads/main") -> tuple[str, dict[str, Any]]:
    payload = {**repo.base(), "ref": ref, "commits": [{"added": [], "modified": files}]}
    payload["repository"]["default_branch"] = "main"
    return "push", payload


def last_status(github, pull: Pull) -> tuple[str, str]:
    return next((s, d) for sha, s, d in reversed(github.statuses()) if sha == pull.head_sha)


def labels_of(github, pull: Pull) -> set[str]:
    """The stoplight labels a PR carries, replayed from the label writes."""
    carried: set[str] = set()
    for method, path, body in github.writes():
        prefix = f"/repos/{pull.repo.full_name}/issues/{pull.number}/labels"
        if method == "POST" and path == prefix:
            carried |= set(body)
        elif method == "DELETE" and path.startswith(prefix + "/"):
            carried.discard(unquote(path[len(prefix) + 1 :]))
    return {name for name in carried if name.startswith("stoplight:")}


def open_pulls(rt, clock, count: int, start: int = 1) -> list[Pull]:
    pulls = [Pull(number=n, head_sha=f"{n:040x}") for n in range(start, start + count)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
        clock.advance(minutes=1)
    return pulls


def test_sixth_pr_is_held_while_red_and_admitted_as_reviews_drain_the_queue(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    store = QueueStore(rt.redis, 42)
    pulls = open_pulls(rt, clock, 2)
    assert store.light(WEB).level is Level.GREEN
    pulls += open_pulls(rt, clock, 1, start=3)
    assert store.light(WEB).level is Level.YELLOW
    pulls += open_pulls(rt, clock, 2, start=4)
    assert store.light(WEB).level is Level.RED
    assert last_status(github, pulls[0]) == ("success", RED)

    held = open_pulls(rt, clock, 1, start=6)[0]
    assert last_status(github, held) == (
        "pending",
        "Held (1st in line): review queue is red. Enters review as it drains",
    )
    assert "stoplight:held" in labels_of(github, held)
    assert store.measures(WEB).waiting == 5  # the held PR is not counted

    deliver(rt, pulls[0].review("bob", "approved", clock.now()))
    assert store.light(WEB).level is Level.YELLOW  # 4 waiting: a 5th would be red again
    assert last_status(github, held)[0] == "pending"

    deliver(rt, pulls[1].review("bob", "approved", clock.now()))
    assert store.measures(WEB).waiting == 4  # 3 left, then the held PR joined
    assert last_status(github, held) == ("success", YELLOW)
    assert "stoplight:held" not in labels_of(github, held)
    assert store.pull(f"{held.repo.id}#{held.number}").wait_since == clock.now()

    for pull in pulls[2:4]:
        deliver(rt, pull.review("bob", "approved", clock.now()))
    assert store.light(WEB).level is Level.GREEN


def test_closing_a_held_pr_renumbers_the_line(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    open_pulls(rt, clock, 5)
    first, second, third = open_pulls(rt, clock, 3, start=6)
    assert last_status(github, third)[1].startswith("Held (3rd in line)")

    first.state = "closed"
    deliver(rt, first.event("closed", clock.now()))
    assert last_status(github, second)[1].startswith("Held (1st in line)")
    assert last_status(github, third)[1].startswith("Held (2nd in line)")
    assert QueueStore(rt.redis, 42).held_keys(WEB) == ["1001#7", "1001#8"]


def test_expedite_label_bypasses_the_hold(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    open_pulls(rt, clock, 5)
    urgent = Pull(number=6, head_sha="6" * 40, labels=["stoplight:expedite"])
    deliver(rt, urgent.event("opened", clock.now()))
    assert last_status(github, urgent) == ("success", RED)
    assert QueueStore(rt.redis, 42).measures(WEB).waiting == 6


def test_oldest_waiting_prs_carry_swarm_while_red(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    pulls = open_pulls(rt, clock, 5)
    assert [labels_of(github, p) for p in pulls] == [{"stoplight:swarm"}] * 2 + [set()] * 3

    deliver(rt, pulls[0].review("bob", "changes_requested", clock.now()))
    # Still red? 4 waiting calls for yellow, and with no cooldown the light falls at once.
    assert all(labels_of(github, p) == set() for p in pulls)

    deliver(rt, Pull(number=9, head_sha="9" * 40).event("opened", clock.now()))
    assert [labels_of(github, p) for p in pulls[1:3]] == [{"stoplight:swarm"}] * 2
    assert labels_of(github, pulls[3]) == set()


def test_swarm_moves_to_the_next_oldest_when_one_leaves_the_queue(rt, github, clock):
    no_hold = HEIJUNKA.replace("red: {waiting: 5}", "red: {waiting: 4}") + "hold_when_red: false"
    github.put_config("octo/shop", no_hold)
    pulls = open_pulls(rt, clock, 5)
    assert labels_of(github, pulls[0]) == {"stoplight:swarm"}
    deliver(rt, pulls[0].review("bob", "approved", clock.now()))
    assert QueueStore(rt.redis, 42).light(WEB).level is Level.RED
    assert labels_of(github, pulls[0]) == set()
    assert [labels_of(github, p) for p in pulls[1:]] == [{"stoplight:swarm"}] * 2 + [set()] * 2


def test_org_wide_file_and_extends_are_honoured(rt, github, clock):
    github.put_config("octo/.github", "teams: [{name: shop-team, repos: ['sh*']}]")
    github.put_config("octo/base", "required_approvals: 2\nteams: [{name: other, repos: [x]}]")
    github.put_config("octo/api", "_extends: base\nteams: [{name: api-team}]")
    shop = Pull()
    api = Pull(repo=Repo(id=2002, full_name="octo/api"))
    deliver(rt, shop.event("opened", clock.now()))
    deliver(rt, api.event("opened", clock.now()))
    store = QueueStore(rt.redis, 42)
    assert store.teams() == {"shop-team": "shop-team", "api-team@octo/api": "api-team"}

    deliver(rt, api.review("bob", "approved", clock.now()))
    assert store.measures("api-team@octo/api").waiting == 1  # required_approvals: 2 came from base


def test_configuration_is_cached_and_reloaded_on_a_push_that_touches_it(rt, github, clock):
    github.put_config("octo/shop", "teams: [{name: web}]")
    first = Pull()
    deliver(rt, first.event("opened", clock.now()))
    reads = len(github.gets())
    deliver(rt, Pull(number=2, head_sha="2" * 40).event("opened", clock.now()))
    assert len(github.gets()) == reads  # cached

    github.put_config("octo/shop", "teams: [{name: web, thresholds: {yellow: {waiting: 1}}}]")
    deliver(rt, push(first.repo, ["README.md"]))
    deliver(rt, push(first.repo, [".github/stoplight.yml"], ref="refs/heads/topic"))
    assert len(github.gets()) == reads
    deliver(rt, push(first.repo, [".github/stoplight.yml"]))
    assert len(github.gets()) > reads
    assert QueueStore(rt.redis, 42).light(WEB).level is Level.YELLOW
    assert last_status(github, first) == ("success", YELLOW)


def test_invalid_configuration_shows_an_error_and_keeps_the_last_good_one(rt, github, clock):
    github.put_config("octo/shop", HEIJUNKA)
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    github.put_config("octo/shop", "teams: [{name: web, thresholds: {red: {waiting: -1}}}]")
    deliver(rt, push(pull.repo, [".github/stoplight.yml"]))

    state, description = last_status(github, pull)
    assert state == "error"
    assert description == (
        "Invalid .github/stoplight.yml: teams[0].thresholds.red.waiting: must be 0 or more"
    )
    open_pulls(rt, clock, 4, start=2)  # the last good thresholds still apply: 5 is red
    assert QueueStore(rt.redis, 42).light(WEB).level is Level.RED


def test_invalid_configuration_of_a_new_repository_falls_back_to_defaults(rt, github, clock):
    github.put_config("octo/shop", "teams: [oops")
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))
    state, description = last_status(github, pull)
    assert state == "error" and description.startswith("Invalid .github/stoplight.yml: YAML")
    assert len(description) <= 140
    assert QueueStore(rt.redis, 42).measures("octo/shop").waiting == 1


def test_ignored_authors_never_join_the_queue_but_see_the_light(rt, github, clock):
    github.put_config("octo/shop", "ignore_authors: ['dependabot[bot]']")
    bot = Pull(author="dependabot[bot]", author_type="Bot")
    deliver(rt, bot.event("opened", clock.now()))
    assert QueueStore(rt.redis, 42).measures("octo/shop").waiting == 0
    assert last_status(github, bot) == ("success", GREEN)


def test_working_hours_schedule_the_light_at_the_working_time_crossing(rt, github, clock):
    github.put_config(
        "octo/shop",
        "working_hours: {timezone: Europe/Berlin, days: [mon, tue, wed, thu, fri],"
        " start: '09:00', end: '18:00'}",
    )
    berlin = ZoneInfo("Europe/Berlin")
    clock.moment = datetime(2026, 11, 6, 17, tzinfo=berlin)  # a Friday
    deliver(rt, Pull().event("opened", clock.now()))

    scheduled = ScheduledJobRegistry(queue=rt.lanes.shared)
    tick = job_id("tick", 42, "octo/shop")
    at = from_timestamp(scheduled.get_scheduled_time(tick).timestamp())
    assert at == datetime(2026, 11, 11, 14, tzinfo=berlin)  # 24 working hours later

    clock.moment = datetime(2026, 11, 9, 9, tzinfo=berlin)
    settings = RepoConfigs(rt.redis, 42).team("octo/shop")
    view = team_view(QueueStore(rt.redis, 42), "octo/shop", "octo/shop", settings, clock.now())
    assert view.oldest == timedelta(hours=1)


def test_excluded_files_do_not_count_and_files_are_listed_once_per_head(rt, github, clock):
    github.put_config("octo/shop", "size: {exclude: ['*.lock', 'vendor/**']}")
    github.pull_files[("octo/shop", 1)] = [
        ("yarn.lock", 500, 0),
        ("web/app/yarn.lock", 100, 0),
        ("vendor/lib/x.go", 200, 0),
        ("src/app.py", 40, 10),
    ]
    pull = Pull(additions=840, deletions=10)
    deliver(rt, pull.event("opened", clock.now()))
    store = QueueStore(rt.redis, 42)
    assert store.measures("octo/shop").lines == 50
    assert ("POST", "/repos/octo/shop/issues/1/labels", ["size/M"]) in github.writes()

    deliver(rt, pull.review("bob", "commented", clock.now()))
    deliver(rt, pull.event("edited", clock.now()))
    files_reads = [path for path in github.gets() if path.endswith("/pulls/1/files")]
    assert len(files_reads) == 1

    pull.head_sha = "e" * 40
    github.pull_files[("octo/shop", 1)] = [("yarn.lock", 10, 0), ("src/app.py", 830, 10)]
    deliver(rt, pull.event("synchronize", clock.now()))
    assert store.measures("octo/shop").lines == 840
    assert len([path for path in github.gets() if path.endswith("/pulls/1/files")]) == 2


def test_a_repository_that_joins_a_team_brings_its_open_prs_at_once(rt, github, clock):
    pulls = open_pulls(rt, clock, 2)
    store = QueueStore(rt.redis, 42)
    assert store.measures("octo/shop").waiting == 2

    github.put_config("octo/shop", "teams: [{name: web}]")
    deliver(rt, push(pulls[0].repo, [".github/stoplight.yml"]))

    assert store.measures("octo/shop").waiting == 0
    assert store.measures(WEB).waiting == 2
    assert {record.key for record in store.open_pulls(WEB)} == {"1001#1", "1001#2"}
    assert store.teams()[WEB] == "web"
