"""The `stoplight` command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from click.testing import CliRunner

from stoplight import cli
from stoplight.state.review_queue import QueueStore
from tests.conftest import mark_as_seen
from tests.fakes import FakeClock, Pull


def test_replay_feeds_recorded_deliveries_through_the_pipeline(
    tmp_path, redis, redis_server, github, monkeypatch, private_key_pem
):
    lines = []
    now = datetime.now(UTC)  # the command runs on the real clock
    for number in (1, 2):
        name, payload = Pull(number=number, head_sha=str(number) * 40).event("opened", now)
        lines.append(json.dumps({"event": name, "payload": payload, "delivery": f"r-{number}"}))
    recorded = tmp_path / "deliveries.jsonl"
    recorded.write_text("\n".join([*lines, lines[0]]) + "\n")
    for name, value in {
        "REDIS_URL": redis_server.url,
        "APP_ID": "1234",
        "PRIVATE_KEY": private_key_pem,
        "LOG_LEVEL": "warning",
    }.items():
        monkeypatch.setenv(name, value)

    mark_as_seen(redis, FakeClock(now))  # a Redis the app has seen: no rebuild to wait for
    result = CliRunner().invoke(cli.main, ["replay", str(recorded)])

    assert result.exit_code == 0, result.output
    assert "2 deliveries processed, 1 already seen" in result.output
    assert QueueStore(redis, 42).measures("octo/shop").waiting == 2
    assert len(github.statuses()) == 2


def test_replay_names_a_broken_line(tmp_path, redis_server, monkeypatch):
    recorded = tmp_path / "broken.jsonl"
    recorded.write_text('{"event": "pull_request"}\n')
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    result = CliRunner().invoke(cli.main, ["replay", str(recorded)])
    assert result.exit_code == 1
    assert "line 1: expected" in result.output


def test_worker_without_redis_url_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.main, ["worker"])
    assert result.exit_code == 1
    assert "needs REDIS_URL" in result.output


def test_invalid_environment_is_reported_by_name(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "not-a-port")
    result = CliRunner().invoke(cli.main, ["worker"])
    assert result.exit_code == 1
    assert "PORT" in result.output
