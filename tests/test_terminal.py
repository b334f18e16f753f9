"""`stoplight status`: a red team and its PRs on an 80-column terminal, and JSON for scripts."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner
from redis import Redis
from rich.console import Console

from stoplight.cli import main
from stoplight.ops import terminal
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.state import keys
from tests.conftest import deliver
from tests.fakes import Pull, Repo


def drive_red(rt, clock) -> None:
    for number in range(1, 9):
        title = f"Change number {number}" if number > 1 else "A rather long title " * 8
        pull = Pull(number=number, head_sha=f"{number:040x}", reviewers=["bob"], title=title)
        deliver(rt, pull.event("opened", clock.now()))
        clock.advance(hours=1)
    for number in (9, 10):  # opened while red: held
        deliver(rt, Pull(number=number, head_sha=f"{number:040x}").event("opened", clock.now()))
    deliver(rt, Pull(repo=Repo(id=2002, full_name="octo/docs")).event("opened", clock.now()))


def test_red_team_and_its_prs_fit_80_columns(rt, github, clock):
    drive_red(rt, clock)
    console = Console(width=80, record=True, file=io.StringIO())
    views = terminal.team_views(rt.redis, clock.now())
    terminal.render(console, views)
    lines = console.export_text().splitlines()

    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    shop, docs = text.index(" octo/shop "), text.index(" octo/docs ")
    assert docs < shop  # teams in order
    assert "● RED  since 2026-11-02 16:00 UTC  ·  2 held" in text
    assert "● GREEN" in text
    rows = [line for line in lines if "octo/shop#" in line]
    assert [row.split("octo/shop#")[1].split()[0] for row in rows] == ["1", "2", "3", "4", "5"]
    assert "8h" in rows[0] and "M (50)" in rows[0] and "bob" in rows[0] and "A rather" in rows[0]
    waiting = next(line for line in text[shop:].splitlines() if " waiting " in line)
    assert waiting.split()[1:5] == ["waiting", "8", "4", "8"]


def test_status_json_for_scripts(rt, github, clock, redis_server, tmp_path, monkeypatch):
    drive_red(rt, clock)
    env = {"REDIS_URL": redis_server.url, "DATA_DIR": str(tmp_path), "LOG_LEVEL": "warning"}
    monkeypatch.chdir(tmp_path)  # no .env file read
    result = CliRunner().invoke(main, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output

    report = json.loads(result.stdout)
    (installation,) = report["installations"]
    assert installation["id"] == 42
    docs, shop = installation["teams"]
    assert (docs["key"], docs["light"], shop["key"], shop["light"]) == (
        "octo/docs",
        "green",
        "octo/shop",
        "red",
    )
    assert shop["held"] == 2
    assert shop["measures"]["waiting"] == {"now": 8, "yellow": 4, "red": 8}
    assert shop["measures"]["oldest_seconds"]["red"] == 48 * 3600
    first = shop["waiting_pulls"][0]
    assert sorted(first) == [
        "author",
        "claimed_by",
        "lines",
        "number",
        "repo",
        "requested_reviewers",
        "size",
        "swarm",
        "title",
        "url",
        "waited_seconds",
    ]
    assert (first["number"], first["size"], first["requested_reviewers"]) == (1, "size/M", ["bob"])
    assert len(shop["waiting_pulls"]) == 5
    assert [pull["swarm"] for pull in shop["waiting_pulls"]] == [True] * 3 + [False] * 2
    assert shop["called_for"] == "red"
    assert shop["reasons"][0] == "8 PRs waiting (≥ 8 is red)"
    assert len(shop["held_pulls"]) == 2


def test_status_prints_the_panels(rt, github, clock, redis_server, tmp_path, monkeypatch):
    drive_red(rt, clock)
    env = {"REDIS_URL": redis_server.url, "DATA_DIR": str(tmp_path), "COLUMNS": "80"}
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["status"], env=env)
    assert result.exit_code == 0, result.output
    assert "RED" in result.stdout and "octo/shop#5" in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


def test_status_reads_the_embedded_redis_a_running_serve_keeps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with EmbeddedRedis(tmp_path / "redis", appendonly=False) as server:
        serving = Redis.from_url(server.url)
        serving.sadd(keys.INSTALLATIONS, 7)
        serving.hset(keys.InstallationKeys(7).teams, "t", "Team T")
        result = CliRunner().invoke(main, ["status", "--json"], env={"DATA_DIR": str(tmp_path)})
        assert result.exit_code == 0, result.output
        assert serving.ping()  # the running server was left alone
    (installation,) = json.loads(result.stdout)["installations"]
    assert [team["name"] for team in installation["teams"]] == ["Team T"]
