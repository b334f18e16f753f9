"""/metrics: Prometheus text that moves with deliveries, work and lights, in any process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from base64 import b64encode
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr

from stoplight.clients.pacing import WriteBudget
from stoplight.pipeline.runtime import Runtime, installed
from stoplight.web import create_app
from tests.conftest import WEBHOOK_SECRET, deliver, mark_as_seen
from tests.fakes import Pull, body_of, sign
from tests.test_end_to_end import free_port, wait_for

PATH = "/api/github/webhooks"


PASSWORD = "s3cret"
SCRAPER = {"Authorization": "Basic " + b64encode(f"metrics:{PASSWORD}".encode()).decode()}


@pytest.fixture
def settings(settings):
    """Metrics name teams: they are served only behind a password."""
    return settings.model_copy(update={"metrics_password": SecretStr(PASSWORD)})


def scrape(client, **headers: str) -> list[Sample]:
    response = client.get("/metrics", headers=headers or SCRAPER)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return sum(found)


def post_delivery(client, payload: dict, delivery: str) -> int:
    body = body_of(payload)
    headers = {
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
    }
    return client.post(PATH, data=body, headers=headers).status_code


def test_a_delivery_moves_the_intake_counters(settings, redis, clock):
    client = create_app(settings, redis).test_client()
    before = scrape(client)
    queued = {"event": "pull_request", "outcome": "queued"}

    assert post_delivery(client, Pull().event("opened", clock.now())[1], "d-metrics") == 202
    assert post_delivery(client, Pull().event("opened", clock.now())[1], "d-metrics") == 200

    after = scrape(client)
    assert value(after, "stoplight_deliveries_total", **queued) == (
        value(before, "stoplight_deliveries_total", **queued) + 1
    )
    duplicate = {"event": "pull_request", "outcome": "duplicate"}
    assert value(after, "stoplight_deliveries_total", **duplicate) == (
        value(before, "stoplight_deliveries_total", **duplicate) + 1
    )
    assert value(after, "stoplight_intake_seconds_count") == (
        value(before, "stoplight_intake_seconds_count") + 2
    )
    # The duplicate queues no job: the first delivery's job processes it.
    assert value(after, "stoplight_lane_depth", lane="stoplight") == 1


def test_unknown_event_names_do_not_become_labels(settings, redis):
    client = create_app(settings, redis).test_client()
    body = b"{}"
    headers = {
        "X-GitHub-Event": "made-up-by-a-sender",
        "X-GitHub-Delivery": "d-odd",
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
    }
    assert client.post(PATH, data=body, headers=headers).status_code == 200
    events = {s.labels.get("event") for s in scrape(client) if s.name.startswith("stoplight_del")}
    assert "made-up-by-a-sender" not in events
    assert "other" in events


def test_each_teams_light_and_the_workers_counts(rt, github, clock, settings):
    pulls = [Pull(number=n, head_sha=f"{n:040x}", additions=100) for n in range(1, 5)]
    for pull in pulls:
        deliver(rt, pull.event("opened", clock.now()))
    clock.advance(hours=2)

    samples = scrape(create_app(settings, rt.redis, clock).test_client())

    team = {"installation": "42", "team": "octo/shop"}
    assert value(samples, "stoplight_team_light", **team) == 1  # yellow at four waiting
    assert value(samples, "stoplight_team_waiting", **team) == 4
    assert value(samples, "stoplight_team_waiting_lines", **team) == 4 * 110
    assert value(samples, "stoplight_team_oldest_wait_seconds", **team) == 2 * 3600
    token = {"kind": "token", "outcome": "ok"}
    assert value(samples, "stoplight_github_requests_total", **token) == github.tokens_issued
    assert value(samples, "stoplight_github_requests_total", kind="write", outcome="ok") == len(
        github.writes()
    )
    assert value(samples, "stoplight_job_latency_seconds_count", lane="stoplight") >= 4


def test_writes_the_budget_puts_off_are_counted(settings, redis, clock, github):
    budget = WriteBudget(min_gap=timedelta(seconds=1), per_minute=2, per_hour=500)
    rt = Runtime.create(
        settings, redis, clock, budget=budget, sleep=lambda s: clock.advance(seconds=s)
    )
    mark_as_seen(redis, clock)
    with installed(rt):
        deliver(rt, Pull().event("opened", clock.now()))  # a status and two label writes

    samples = scrape(create_app(settings, redis, clock).test_client())
    assert value(samples, "stoplight_github_writes_deferred_total", reason="pacing") == 1
    assert value(samples, "stoplight_github_writes_deferred_total", reason="throttled") == 0


def test_without_a_password_metrics_are_not_served(settings, redis):
    """Team names and sizes are no one's business on a public address."""
    open_settings = settings.model_copy(update={"metrics_password": None})
    assert create_app(open_settings, redis).test_client().get("/metrics").status_code == 404


def test_a_password_closes_metrics_to_others(settings, redis):
    client = create_app(settings, redis).test_client()
    assert client.get("/metrics").status_code == 401
    wrong = b64encode(b"metrics:guess").decode()
    assert client.get("/metrics", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    assert scrape(client, **SCRAPER)


# Each run is one web process: it answers one delivery, then exits, as a granian worker might.
ONE_WEB_PROCESS = """
import json, sys
from tests.test_metrics import post_delivery
from stoplight.web import create_app
payload, delivery = json.loads(sys.argv[1]), sys.argv[2]
print(post_delivery(create_app().test_client(), payload, delivery))
"""
SCRAPE = """
from stoplight.web import create_app
import sys
print(create_app().test_client().get("/metrics", headers={"Authorization": sys.argv[1]}).text)
"""


@pytest.fixture
def web_process_env(settings, tmp_path) -> dict[str, str]:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    return {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "REDIS_URL": str(settings.redis_url),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "APP_ID": "1234",
        "PRIVATE_KEY": settings.private_key.get_secret_value(),
        "METRICS_PASSWORD": PASSWORD,
    }


@pytest.mark.slow
def test_metrics_add_up_across_web_processes(web_process_env, redis, clock, tmp_path):
    payload = json.dumps(Pull().event("opened", clock.now())[1])
    for delivery in ("d-first-process", "d-second-process"):
        answered = subprocess.run(
            [sys.executable, "-c", ONE_WEB_PROCESS, payload, delivery],
            env=web_process_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert answered.stdout.strip() == "202"
    text = subprocess.run(
        [sys.executable, "-c", SCRAPE, SCRAPER["Authorization"]],
        env=web_process_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    queued = {"event": "pull_request", "outcome": "queued"}
    assert value(samples, "stoplight_deliveries_total", **queued) == 2
    assert value(samples, "stoplight_intake_seconds_count") == 2


@pytest.mark.slow
def test_web_server_processes_report_each_others_deliveries(web_process_env, redis, tmp_path):
    port = free_port()
    env = {**web_process_env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "2"}
    del env["PROMETHEUS_MULTIPROC_DIR"]  # the server's settings make their own
    server = subprocess.Popen(
        [sys.executable, "-m", "stoplight.ops.web_server"],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/healthz"))
        body = b"{}"
        for number in range(8):
            headers = {
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": f"d-ping-{number}",
                "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
            }
            assert requests.post(f"{base}{PATH}", data=body, headers=headers).status_code == 200
        # New connections each time: either process may answer; each must report all eight.
        for _ in range(4):
            headers = {"Connection": "close", **SCRAPER}
            text = requests.get(f"{base}/metrics", headers=headers).text
            samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
            assert value(samples, "stoplight_deliveries_total", event="ping", outcome="pong") == 8
    finally:
        server.terminate()
        server.wait()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:  # not listening yet, or its processes still starting
        return False
