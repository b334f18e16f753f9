"""The GitHub transport and the writers on it: tokens, Enterprise hosts, the never-twice ledger."""

from __future__ import annotations

import re

import pytest
import responses

from stoplight.clients.github import GitHubApp
from stoplight.core.marks import HELD_LABEL, Status, size_label
from stoplight.effects.labels import Labels, label_changes
from stoplight.effects.statuses import Statuses
from tests.conftest import UNPACED, FakeGitHub

STATUS = Status("success", "Green: review queue is flowing", "https://stoplight.example/t")


@pytest.fixture
def app(settings, redis, clock):
    return GitHubApp(settings, redis, clock, budget=UNPACED)


def test_installation_token_is_cached_until_shortly_before_expiry(app, github, clock):
    first = app.installation(42)
    Statuses(first).set("octo/shop", "a" * 40, STATUS)
    # Another job (or process) in the same hour reuses the token.
    Statuses(app.installation(42)).set("octo/shop", "b" * 40, STATUS)
    assert github.tokens_issued == 1

    authorizations = [c.request.headers["Authorization"] for c in github.mock.calls]
    assert all(a.startswith("Bearer ") for a in authorizations[:1])  # the JWT
    assert authorizations[1] == "token ghs_test1_for_42"


def test_cached_token_is_not_stored_in_the_clear(app, github, redis):
    Statuses(app.installation(7)).set("octo/shop", "a" * 40, STATUS)
    stored = redis.get("stoplight:i:{7}:token")
    assert stored is not None and b"ghs_test1" not in stored
    assert redis.pttl("stoplight:i:{7}:token") > 50 * 60 * 1000


def test_same_status_is_never_posted_twice_for_a_commit(app, github):
    statuses = Statuses(app.installation(42))
    assert statuses.set("octo/shop", "a" * 40, STATUS)
    assert not statuses.set("octo/shop", "a" * 40, STATUS)
    assert statuses.set("octo/shop", "b" * 40, STATUS)
    assert len(github.statuses()) == 2
    assert github.gets() == []


def test_enterprise_host_and_protocol_are_honoured(settings, redis, clock):
    ghe = settings.model_copy(update={"ghe_host": "ghe.example:8443", "ghe_protocol": "http"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeGitHub(mock, clock, api="http://ghe.example:8443/api/v3")
        Statuses(GitHubApp(ghe, redis, clock, budget=UNPACED).installation(42)).set(
            "octo/shop", "a" * 40, STATUS
        )
        urls = [call.request.url for call in mock.calls]
        assert len(fake.statuses()) == 1
    assert all(re.match(r"http://ghe\.example:8443/api/v3/", url) for url in urls)


def test_existing_label_is_not_an_error(app, github):
    github.mock.replace(
        responses.POST,
        github.new_label_route,
        status=422,
        json={"message": "Validation Failed", "errors": [{"code": "already_exists"}]},
    )
    labels = Labels(app.installation(42))
    assert labels.sync("octo/shop", 1, "1001#1", [size_label(50)], frozenset({"size/M"}), [])
    assert not labels.sync("octo/shop", 1, "1001#1", [size_label(50)], frozenset({"size/M"}), [])


def test_label_changes_add_what_is_missing_and_remove_what_is_not_wanted():
    medium = size_label(50)
    assert label_changes(set(), [medium, HELD_LABEL]) == ([medium, HELD_LABEL], [])
    assert label_changes({"size/M"}, [medium]) == ([], [])
    assert label_changes({"size/XS", "stoplight:swarm"}, [medium]) == (
        [medium],
        ["size/XS", "stoplight:swarm"],
    )
    assert label_changes({"size/M"}, []) == ([], ["size/M"])
