"""A repository's `.github/stoplight.yml` as a hostile member with push access writes it.

Each test is one attack: it must neither take the app down, nor read what the file's
repository may not, nor move a team the file does not define.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stoplight import cli
from stoplight.config import schema
from stoplight.config.repos import RepoConfigs
from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS
from stoplight.state.review_queue import QueueStore
from tests.conftest import deliver
from tests.fakes import Pull, Repo
from tests.test_teams import last_status, push

GREEN = DESCRIPTIONS[Level.GREEN]
WEB, API, SECRET = (
    Repo(id=2001, full_name="octo/web"),
    Repo(id=2002, full_name="octo/api"),
    Repo(id=2003, full_name="octo/secret"),
)
STRICT = """
teams:
  - name: core
    thresholds:
      yellow: {waiting: 1}
      red: {waiting: 2}
    cooldown: 0s
"""


def alias_bomb(levels: int = 8, width: int = 10) -> str:
    """Nested YAML aliases: a few hundred bytes that expand to `width ** levels` nodes."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels + 1):
        refs = ", ".join(f"k{i}: *l{level - 1}" for i in range(width))
        lines.append(f"l{level}: &l{level} {{{refs}}}")
    return "\n".join(lines) + "\n_extends: web\n"


def open_pull(rt, clock, repo: Repo, number: int = 1) -> Pull:
    pull = Pull(repo=repo, number=number, head_sha=f"{repo.id:020x}{number:020x}")
    deliver(rt, pull.event("opened", clock.now()))
    clock.advance(seconds=30)
    return pull


def test_an_alias_bomb_is_an_error_status_in_bounded_memory_and_other_teams_go_on(
    rt, github, clock
):
    bomb = alias_bomb()
    assert len(bomb.encode()) < 1000
    github.put_config("octo/web", bomb)
    github.put_config("octo/api", "teams: [{name: core}]")

    tracemalloc.start()
    started = time.perf_counter()
    try:
        attacked = open_pull(rt, clock, WEB)
        took = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(
        f"alias bomb ({len(bomb)} bytes): error status after {took:.3f} s, peak {peak / 1e6:.1f} MB"
    )

    state, description = last_status(github, attacked)
    assert state == "error"
    assert description == (
        "Invalid .github/stoplight.yml: YAML does not parse: line 2, column 14: "
        "aliases (*name) are not allowed"
    )
    assert peak < 50e6  # the expanded file would take gigabytes
    bystander = open_pull(rt, clock, API)
    assert last_status(github, bystander) == ("success", GREEN)


@pytest.mark.parametrize(
    "target",
    [
        "octo/secret/contents/deploy/production.yml?",
        "secret/contents/deploy/production.yml?",
        "secret:deploy/production.yml?ref=main",
        "secret:deploy/%2e%2e/production.yml",
        "secret:../../other/contents/x.yml",
        "secret#main",
        "../secret",
        "octo/secret/x:.github/stoplight.yml",
    ],
)
def test_extends_cannot_leave_its_place_in_the_contents_url(rt, github, clock, target):
    github.put_config("octo/web", f"_extends: {target!r}\n")
    github.files[("octo/secret", "deploy/production.yml")] = "timezone: Hunter2\n"

    attacked = open_pull(rt, clock, WEB)

    state, description = last_status(github, attacked)
    assert state == "error"
    assert description.startswith("Invalid .github/stoplight.yml: _extends: ")
    assert "Hunter2" not in description
    assert not [path for path in github.gets() if "secret" in path]


def test_an_unusable_base_is_named_never_shown(rt, github, clock):
    """Probot's `repo:path` form may name any file of the owner; what it holds stays unsaid."""
    github.put_config("octo/web", "_extends: secret:deploy/production.yml\n")
    github.files[("octo/secret", "deploy/production.yml")] = (
        "database_password: hunter2\nworking_hours: {timezone: Mars/Olympus}\n"
    )

    attacked = open_pull(rt, clock, WEB)

    assert last_status(github, attacked) == (
        "error",
        "Invalid .github/stoplight.yml: _extends: "
        "the extended file octo/secret:deploy/production.yml is invalid",
    )
    assert "/repos/octo/secret/contents/deploy/production.yml" in github.gets()


@pytest.mark.parametrize("target", ["attacker/secret", "Attacker/secret:.github/stoplight.yml"])
def test_extends_names_no_repository_of_another_owner(rt, github, clock, target):
    github.put_config("octo/secret", STRICT)
    github.put_config("attacker/secret", STRICT.replace("waiting: 2", "waiting: 200"))
    github.put_config("octo/web", f"_extends: {target}\n")
    open_pull(rt, clock, SECRET)

    attacked = open_pull(rt, clock, WEB)

    owner = target.partition("/")[0]
    assert last_status(github, attacked) == (
        "error",
        f"Invalid .github/stoplight.yml: _extends: must name a repository of octo (not {owner})",
    )
    assert not [path for path in github.gets() if "attacker" in path.lower()]
    assert RepoConfigs(rt.redis, 42).team("core@octo/secret").policy.red.waiting == 2


def test_extending_a_team_file_joins_no_team_and_moves_none(rt, github, clock):
    """`_extends: secret` alone is no consent: the attacker's PRs stay in a queue of their own."""
    github.put_config("octo/secret", STRICT)
    github.put_config("octo/web", "_extends: secret\n")
    victim = open_pull(rt, clock, SECRET)

    for number in range(1, 6):
        open_pull(rt, clock, WEB, number)

    store = QueueStore(rt.redis, 42)
    assert store.teams() == {"core@octo/secret": "core", "octo/web": "octo/web"}
    assert store.measures("core@octo/secret").waiting == 1
    assert store.light("core@octo/secret").level is Level.YELLOW  # its own one PR, not red
    assert last_status(github, victim)[0] == "success"
    assert store.measures("octo/web").waiting == 5


def test_a_member_file_cannot_set_its_teams_settings(rt, github, clock):
    """A team's settings come from its defining file: a member that extends it and declares a
    team of the same name defines another team, of its own file."""
    lib = Repo(id=2004, full_name="octo/lib")
    github.put_config(
        "octo/lib", STRICT.replace("- name: core", "- name: core\n    repos: [lib, web]")
    )
    github.put_config(
        "octo/web",
        "_extends: lib\nteams: [{name: core, public_badge: true, "
        "slack_channel: '#attacker', thresholds: {red: {waiting: 100}}}]\n",
    )
    open_pull(rt, clock, lib)
    open_pull(rt, clock, WEB)  # the latest event is the member's

    store = QueueStore(rt.redis, 42)
    assert store.teams() == {"core@octo/lib": "core", "core@octo/web": "core"}
    victim = RepoConfigs(rt.redis, 42).team("core@octo/lib")
    assert victim.policy.red.waiting == 2
    assert victim.slack_channel is None and victim.public_badge is False


def test_a_repository_extending_the_org_file_with_an_override_stays_in_its_org_team(
    rt, github, clock
):
    github.put_config(
        "octo/.github",
        "teams: [{name: app, repos: [web, api]}]\nworking_hours: {timezone: UTC}\n",
    )
    github.put_config(
        "octo/web",
        "_extends: .github\nrequired_approvals: 2\nworking_hours: {timezone: Asia/Tokyo}\n",
    )
    web_pull = open_pull(rt, clock, WEB)
    api_pull = open_pull(rt, clock, API)
    store = QueueStore(rt.redis, 42)
    assert store.teams() == {"app": "app"}
    assert store.measures("app").waiting == 2

    deliver(rt, web_pull.review("bob", "approved", clock.now()))
    deliver(rt, api_pull.review("bob", "approved", clock.now()))
    assert store.measures("app").waiting == 1  # web's PR needs its second approval
    deliver(rt, web_pull.review("carol", "approved", clock.now()))
    assert store.measures("app").waiting == 0
    org_hours = schema.load("working_hours: {timezone: UTC}").working_hours
    assert RepoConfigs(rt.redis, 42).team("app").policy.calendar == org_hours.calendar()


OVERFLOWING = [
    ("cooldown: 99999999999d", "teams[0].cooldown: '99999999999d' is longer than a year"),
    ("thresholds: {red: {waiting: " + "9" * 5000 + "}}", "teams[0].thresholds.red.waiting"),
    ("thresholds: {red: {oldest: " + "9" * 5000 + "s}}", "teams[0].thresholds.red.oldest"),
    ("thresholds: {red: {lines: 1e999}}", "teams[0].thresholds.red.lines"),
]


@pytest.mark.parametrize(("team_line", "error"), OVERFLOWING)
def test_overflowing_values_are_errors_and_never_stop_other_reloads(
    rt, github, clock, team_line, error
):
    github.put_config("octo/web", f"teams:\n  - name: web\n    {team_line}\n")
    github.put_config("octo/api", STRICT)
    attacked = open_pull(rt, clock, WEB)
    open_pull(rt, clock, API)
    state, description = last_status(github, attacked)
    assert state == "error" and description.startswith(f"Invalid .github/stoplight.yml: {error}")

    github.put_config("octo/api", STRICT.replace("waiting: 2", "waiting: 3"))
    deliver(rt, push(API, [".github/stoplight.yml"]))

    assert RepoConfigs(rt.redis, 42).team("core@octo/api").policy.red.waiting == 3


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("# padding\n" * 7000, "the file is 70,000 bytes; at most 65,536 are read"),
        (b"teams: [{name: caf\xe9}]\n", "the file is not UTF-8 text"),
    ],
)
def test_an_oversized_or_undecodable_file_is_an_error(rt, github, clock, content, error):
    """GitHub's contents API sends the file's bytes; they are checked before they are parsed."""
    github.put_config("octo/web", content)
    attacked = open_pull(rt, clock, WEB)
    state, description = last_status(github, attacked)
    assert state == "error" and error in description


HOSTILE_FILES: dict[str, bytes] = {
    "alias bomb": alias_bomb().encode(),
    "oversized": b"# padding\n" * 7000,
    "not UTF-8": b"teams: [{name: caf\xe9}]\n",
    "long cooldown": b"teams: [{name: web, cooldown: 99999999999d}]\n",
    "5000 digits": b"swarm_labels: " + b"9" * 5000 + b"\n",
    "deep nesting": b"size: " + b"[" * 100 + b"]" * 100 + b"\n",
    "path in _extends": b"_extends: 'octo/secret/contents/deploy/production.yml?'\n",
    "markup team name": b"teams: [{name: '[link=https://evil.example]x[/link]', repos: [a/b/c]}]\n",
    "mention in slack_users": b"teams: [{name: web, slack_users: {alice: '<!channel>'}}]\n",
    "bad timezone": b"working_hours: {timezone: ../../etc/passwd}\n",
    "date out of range": b"working_hours: {holidays: [0000-01-01]}\n",
}


@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_check_config_prints_one_error_line_and_exits_1(tmp_path, name):
    path = tmp_path / "stoplight.yml"
    path.write_bytes(HOSTILE_FILES[name])

    result = CliRunner().invoke(cli.main, ["check-config", str(path)])

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Invalid .github/stoplight.yml: "), lines
    assert len(lines[0]) < 400


# Keys of the format, so that random files reach past the top level's "unknown key".
KEYS = st.sampled_from(
    ["teams", "name", "repos", "thresholds", "yellow", "red", "waiting", "oldest", "lines",
     "cooldown", "slack_users", "slack_channel", "working_hours", "timezone", "days",
     "holidays", "start", "end", "size", "exclude", "_extends", "required_approvals",
     "swarm_labels", "ignore_authors", "expedite_label", "public_badge", "hold_when_red"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["10m", "99999999999d", "0s", "25:00", "9" * 5000, ".github", "a:b",
                     "[/x]", "<!channel>", "U123ABC", "Europe/Paris", "2026-02-30", "&a"]),
)  # fmt: skip
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(KEYS | st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=40,
)


# Lines a hand-written hostile file would hold, which a dump of random data never does.
HOSTILE_LINES = st.sampled_from(
    ["swarm_labels: " + "9" * 5000, "required_approvals: -" + "9" * 200, "l: &a [1, 2]",
     "m: *a", "<<: *a", "cooldown: 1e999", "working_hours: {holidays: [0000-01-01]}",
     "working_hours: {start: 99:99, holidays: [2026-13-45]}", "x: !!binary '%%%'",
     "y: !!python/object/apply:os.system [ls]", "z: !!timestamp 0000-00-00", "\t- a",
     "teams: [{name: [/x], repos: ['*']}]", "_extends: ''", "_extends: ../../x",
     "? [a, b]\n: c", "teams: {name: a}", "[" * 40, "%YAML 9.9", "--- a\n--- b"]
)  # fmt: skip


@settings(max_examples=300, deadline=100)
@given(lines=st.lists(HOSTILE_LINES, min_size=1, max_size=6))
def test_any_hand_written_hostile_file_is_a_validation_error_at_worst(lines):
    loaded = schema.load("\n".join(lines) + "\n")
    assert isinstance(loaded, schema.Config | schema.Invalid)


def _yaml_of(structure: Any, aliased: bool) -> str:
    text = yaml.safe_dump({"teams": structure} if not isinstance(structure, dict) else structure)
    return "base: &a {x: 1}\nuse: *a\n" + text if aliased else text


@settings(max_examples=300, deadline=100, suppress_health_check=[HealthCheck.too_slow])
@given(structure=STRUCTURES, aliased=st.booleans(), garbage=st.text(max_size=40))
def test_any_file_is_a_config_or_a_validation_error(structure, aliased, garbage):
    for text in (_yaml_of(structure, aliased), garbage, _yaml_of(structure, False) + garbage):
        for org_wide in (False, True):
            loaded = schema.load(text, org_wide=org_wide)
            assert isinstance(loaded, schema.Config | schema.Invalid)
            if isinstance(loaded, schema.Invalid):
                assert loaded.message.startswith("Invalid .github/stoplight.yml: ")
