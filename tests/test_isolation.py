"""Installations kept apart, request bodies capped, secrets kept out of logs and Redis."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import responses

from stoplight.state import keys
from stoplight.state.review_queue import QueueStore
from stoplight.web import MAX_BODY_BYTES, create_app
from tests.conftest import WEBHOOK_SECRET, deliver, run_due_jobs
from tests.fakes import Pull, Repo, sign


def _status_tokens(github) -> list[tuple[str, str]]:
    """(installation named by the token, path) of every status request."""
    return [
        (call.request.headers["Authorization"].rpartition("_for_")[2], call.request.url)
        for call in github.mock.calls
        if "/statuses/" in call.request.url
    ]


def test_identical_repository_names_in_two_installations_stay_apart(rt, github, clock):
    ours = Pull(repo=Repo(id=1001, full_name="octo/shop", installation_id=1), head_sha="e" * 40)
    theirs = Pull(repo=Repo(id=1001, full_name="octo/shop", installation_id=2), head_sha="e" * 40)
    deliver(rt, ours.event("opened", clock.now()))
    deliver(rt, theirs.event("opened", clock.now()))
    theirs.number, theirs.head_sha = 2, "f" * 40
    deliver(rt, theirs.event("opened", clock.now()))

    assert QueueStore(rt.redis, 1).measures("octo/shop").waiting == 1
    assert QueueStore(rt.redis, 2).measures("octo/shop").waiting == 2
    # Same repository name, same commit: each installation posts with its own token.
    assert sorted(installation for installation, _ in _status_tokens(github)) == ["1", "2", "2"]
    for installation, url in _status_tokens(github):
        if url.endswith("f" * 40):
            assert installation == "2"


def test_every_key_is_scoped_by_installation(rt, github, clock):
    for installation in (1, 2):
        deliver(rt, Pull(repo=Repo(installation_id=installation)).event("opened", clock.now()))
    # The lanes' streams hold every installation's deliveries, as RQ's queues hold its jobs.
    # The state marker says Redis still holds the app's data, all of it (see pipeline.heal).
    app_wide = {keys.INSTALLATIONS.encode(), keys.STATE_MARKER.encode()}
    app_wide |= {stream.encode() for stream in rt.lanes.streams}
    for name in rt.redis.scan_iter(match=f"{keys.PREFIX}:*"):
        scoped = re.match(rb"stoplight:i:{(\d+)}:", name)
        delivery = name.startswith(b"stoplight:delivery:")  # GitHub's ids are global
        # Operators' counts (requests, posts, job latency) add up over every installation.
        metric = name.startswith(keys.metric("").encode())
        assert scoped or delivery or metric or name in app_wide, name


def test_one_installations_throttling_does_not_hold_up_another(rt, github, clock):
    rt.github.pacer.pause(1, clock.now() + timedelta(hours=1))
    deliver(rt, Pull(repo=Repo(installation_id=1)).event("opened", clock.now()))
    deliver(rt, Pull(repo=Repo(installation_id=2)).event("opened", clock.now()))
    assert [installation for installation, _ in _status_tokens(github)] == ["2"]
    clock.advance(hours=1)
    run_due_jobs(rt, clock)
    assert sorted(installation for installation, _ in _status_tokens(github)) == ["1", "2"]


def test_a_body_over_25_mb_is_refused(settings, redis):
    client = create_app(settings, redis).test_client()
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    answer = client.post(
        "/api/github/webhooks",
        data=body,
        headers={
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "big-1",
            "X-Hub-Signature-256": sign(WEBHOOK_SECRET, body),
        },
    )
    assert answer.status_code == 413
    assert not redis.exists(keys.delivery("big-1"))


def test_secrets_stay_out_of_logs_errors_and_redis(rt, github, clock, settings, caplog):
    github.mock.remove(responses.POST, github.status_route)
    github.mock.add(
        responses.POST, github.status_route, status=500, json={"message": "Server Error"}
    )
    caplog.set_level(logging.DEBUG)
    pull = Pull()
    deliver(rt, pull.event("opened", clock.now()))  # the status fails: errors get logged
    token = next(
        call.request.headers["Authorization"].split()[1]
        for call in github.mock.calls
        if "/statuses/" in call.request.url
    )
    secrets = [
        token,
        WEBHOOK_SECRET,
        settings.private_key.get_secret_value().splitlines()[1],  # a line of the key itself
    ]
    assert "500" in caplog.text  # the failure was logged
    stored = b"".join(
        value
        for name in rt.redis.scan_iter()
        if rt.redis.type(name) in (b"string", b"hash")
        for value in (
            [rt.redis.get(name)]
            if rt.redis.type(name) == b"string"
            else rt.redis.hgetall(name).values()
        )
    )
    for secret in secrets:
        assert secret not in caplog.text
        assert secret.encode() not in stored
