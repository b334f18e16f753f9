"""Log lines: JSON when asked, each carrying what its job is about; secrets never shown."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from stoplight import logs
from stoplight.settings import Settings
from tests.conftest import WEBHOOK_SECRET, deliver
from tests.fakes import Pull


@pytest.fixture
def captured(capsys) -> Iterator[Callable[[Settings], None]]:
    """Attach the app's handler for a format to the root logger; return the lines written."""
    root = logging.getLogger()
    attached: list[logging.Handler] = []

    def attach(settings: Settings) -> None:
        handler = logs.handler(settings)  # writes to the stderr capsys holds now
        root.addHandler(handler)
        attached.append(handler)

    level = root.level
    root.setLevel(logging.INFO)
    yield attach
    for handler in attached:
        root.removeHandler(handler)
    root.setLevel(level)


def lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line]


def test_json_lines_parse_and_carry_the_delivery_installation_repo_and_pr(
    rt, github, clock, settings, captured, capsys
):
    captured(settings.model_copy(update={"log_format": "json"}))
    deliver(rt, Pull(number=7).event("opened", clock.now()), delivery_id="d-json")

    entries = [json.loads(line) for line in lines(capsys)]

    about_the_pr = [entry for entry in entries if entry.get("pr") == 7]
    assert about_the_pr, entries
    for entry in about_the_pr:
        assert entry["delivery"] == "d-json"
        assert entry["installation"] == 42
        assert entry["repo"] == "octo/shop"
        assert {"time", "level", "logger", "message"} <= entry.keys()


def test_text_is_the_default_and_shows_the_subject_at_the_end(settings, captured, capsys):
    captured(settings)
    with logs.bound(delivery="d-text", installation=42):
        logging.getLogger("stoplight.test").warning("something happened")
    (line,) = lines(capsys)
    assert "WARNING stoplight.test: something happened" in line
    assert line.endswith("[delivery=d-text installation=42]")


def test_a_line_may_name_its_subject_itself(settings, captured, capsys):
    captured(settings.model_copy(update={"log_format": "json"}))
    logging.getLogger("stoplight.web").error("not recorded", extra={"delivery": "d-web"})
    (line,) = lines(capsys)
    assert json.loads(line)["delivery"] == "d-web"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_are_masked_whatever_logs_them(
    settings, private_key_pem, captured, capsys, log_format
):
    app_token = "xapp-1-A0APP-1234-abcdef"
    signing_secret = "8f742231b10e8888abcd99yyyzzz85a5"
    update = {
        "log_format": log_format,
        "slack_app_token": SecretStr(app_token),
        "slack_signing_secret": SecretStr(signing_secret),
    }
    captured(settings.model_copy(update=update))
    log = logging.getLogger("careless.library")
    log.warning("signing with %s", WEBHOOK_SECRET)
    log.warning("opening Socket Mode with %s", app_token)
    log.warning("verifying Slack with %s", signing_secret)
    log.warning("key: %s", private_key_pem)
    log.warning("key on one line: %s", private_key_pem.replace("\n", "\\n"))

    written = "\n".join(lines(capsys))
    assert WEBHOOK_SECRET not in written and app_token not in written
    assert signing_secret not in written
    for pem_line in private_key_pem.splitlines()[1:-1]:
        assert pem_line not in written
    assert written.count(logs.MASK) >= 4
