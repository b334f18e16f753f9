"""Every example payload GitHub publishes (npm's `@octokit/webhooks-examples`), for every event,
through the real webhook and the worker: each is answered 2xx, and everything accepted is
applied without a raise, a dead letter or an error logged.

The handlers' payload models are written from GitHub's documentation; these are the shapes
GitHub actually sends, with the fields and nulls the documentation leaves out.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import responses
from redis import Redis

from stoplight.events.handlers import router
from stoplight.events.intake import installation_of
from stoplight.events.routing import Delivery
from stoplight.pipeline import deliveries, runtime
from stoplight.settings import Settings
from stoplight.transport import dead_letters
from stoplight.web import create_app
from tests import github_examples
from tests.conftest import WEBHOOK_SECRET, FakeGitHub, api_root, run_jobs
from tests.fakes import body_of, sign

Example = tuple[str, dict[str, Any]]
# The events whose examples make change records (the push examples touch no configuration).
HANDLED_EVENTS = {
    "merge_group",
    "pull_request",
    "pull_request_review",
    "installation",
    "installation_repositories",
}


@pytest.fixture(scope="session")
def package() -> Path:
    try:
        return github_examples.install()
    except github_examples.NotInstalled as error:
        reason = str(error)
    pytest.fail(reason, pytrace=False)  # outside the except: the message, not a traceback


def test_the_package_has_the_example_sets_the_tests_take(package: Path) -> None:
    assert github_examples.hosts(package) == sorted(github_examples.HOSTS)


def test_without_npm_the_examples_are_not_installed_and_the_error_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(github_examples.NotInstalled, match="npm is not on PATH"):
        github_examples.install(tmp_path)


def serve_installation_reads(github: FakeGitHub, examples: list[Example]) -> None:
    """What a sync reads after an installation delivery: the repositories the examples gave
    each installation, none with an open PR."""
    granted: dict[int, dict[int, dict[str, Any]]] = {}
    for event, payload in examples:
        if event in ("installation", "installation_repositories"):
            listed = payload.get("repositories") or payload.get("repositories_added") or []
            granted.setdefault(installation_of(payload), {}).update({r["id"]: r for r in listed})

    def repositories(request: Any) -> tuple[int, dict[str, str], str]:
        installation = int(request.headers["Authorization"].rpartition("_for_")[2])
        repos = list(granted.get(installation, {}).values())
        return 200, {}, json.dumps({"total_count": len(repos), "repositories": repos})

    query = r"(\?.*)?$"
    root = api_root(github.api)
    github.mock.add_callback(
        responses.GET, re.compile(rf"{root}/installation/repositories{query}"), repositories
    )
    github.mock.add(responses.GET, re.compile(rf"{root}/repos/[^/]+/[^/]+/pulls{query}"), json=[])


def post(client: Any, delivery_id: str, event: str, payload: dict[str, Any]) -> Any:
    body = body_of(payload)
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
    }
    return client.post(
        "/api/github/webhooks", data=body, headers=headers, content_type="application/json"
    )


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many change records each delivery the worker gave its handlers became."""
    made: dict[str, int] = {}
    dispatch = router.dispatch

    def counting(delivery: Delivery) -> list[Any]:
        changes = dispatch(delivery)
        made[delivery.id] = len(changes)
        return changes

    monkeypatch.setattr(router, "dispatch", counting)
    return made


@pytest.fixture
def failures(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Each delivery the worker applied, with the exceptions its tries raised."""
    raised: dict[str, list[str]] = {}
    apply = deliveries.apply_delivery

    def recording(rt: runtime.Runtime, delivery_id: str, event: str, body: bytes) -> None:
        tries = raised.setdefault(delivery_id, [])
        try:
            apply(rt, delivery_id, event, body)
        except Exception as error:
            tries.append(repr(error))
            raise

    monkeypatch.setattr(deliveries, "apply_delivery", recording)
    return raised


@pytest.mark.parametrize("host", github_examples.HOSTS)
def test_every_example_payload_is_taken_and_applied(
    host: str,
    package: Path,
    rt: runtime.Runtime,
    github: FakeGitHub,
    settings: Settings,
    redis: Redis,
    dispatched: dict[str, int],
    failures: dict[str, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    examples = github_examples.examples(package, host)
    serve_installation_reads(github, examples)
    client = create_app(settings, redis).test_client()
    answers: Counter[str] = Counter()
    accepted: dict[str, Example] = {}
    with caplog.at_level(logging.WARNING):
        for number, (event, payload) in enumerate(examples):
            response = post(client, f"example-{number}", event, payload)
            assert 200 <= response.status_code < 300, (event, payload.get("action"), response.json)
            answers[response.json["status"]] += 1
            if response.status_code == 202:
                accepted[response.json["delivery"]] = (event, payload)
        run_jobs(rt)

    assert {delivery: tries for delivery, tries in failures.items() if tries} == {}
    assert failures.keys() == accepted.keys()  # each applied, none left waiting
    assert dead_letters.listed(redis) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # The worker drops, unread, a delivery without an installation: one from a repository's
    # own webhook (an app's deliveries name theirs). Its handlers must still read its shape.
    unreached = {d: example for d, example in accepted.items() if d not in dispatched}
    assert unreached.keys() == {d for d, (_, body) in accepted.items() if not installation_of(body)}
    for delivery_id, (event, payload) in unreached.items():
        dispatched[delivery_id] = len(router.dispatch(Delivery(delivery_id, event, payload)))
    handled = {delivery for delivery, changes in dispatched.items() if changes}
    events = {event for event, _ in examples}
    # Older GitHub Enterprise releases have no merge queues, so no merge_group examples.
    assert {accepted[delivery][0] for delivery in handled} == HANDLED_EVENTS & events

    print(
        f"\n{host}: {len(examples)} example payloads of {len(events)} events:"
        f" {answers['queued']} queued ({len(unreached)} without an installation),"
        f" {len(handled)} of them made changes, {answers['queued'] - len(handled)} made none;"
        f" {answers['ignored']} ignored at the webhook, {answers['pong']} pings"
    )
