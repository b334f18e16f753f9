"""deploy/docker-compose.yml is a Compose file by the Compose specification's own schema, and
the container test (deploy/test, which runs its services with `docker run`) takes every
service's settings from it, not from settings of its own."""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from tests import compose_schema
from tests.npm_packages import NotInstalled

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
# The service settings `docker run` is given by deploy/test/compose.py.
RUN_SETTINGS = {
    "image",
    "command",
    "environment",
    "env_file",
    "volumes",
    "ports",
    "stop_grace_period",
    "restart",
    "healthcheck",
}
# The others, and what stands for each in the container test.
SETTINGS_OF_THE_TEST_ITSELF = {
    "build": ".ci/containers builds the image from the same Dockerfile",
    "depends_on": "the tests start Redis first and wait for its health check",
    "deploy": "the tests start two workers, as many as deploy.replicas says",
}
HEALTHCHECK_SETTINGS = {"test", "interval", "timeout", "start_period", "retries"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    try:
        package = compose_schema.PACKAGE.install()
    except NotInstalled as error:
        reason = str(error)
    else:
        return compose_schema.schema(package)
    pytest.fail(reason, pytrace=False)  # outside the except: the message, not a traceback


@pytest.fixture(scope="module")
def compose_file() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def schema_errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{error.json_path}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: e.json_path)
    ]


def test_the_compose_file_follows_the_compose_specification(schema, compose_file):
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema_errors(schema, compose_file) == []


def test_the_schema_refuses_a_setting_compose_does_not_know(schema, compose_file):
    worker = compose_file["services"]["worker"]
    misspelled = {**worker, "stop_grace_periode": worker["stop_grace_period"]}
    broken = {**compose_file, "services": {**compose_file["services"], "worker": misspelled}}

    assert any("stop_grace_periode" in error for error in schema_errors(schema, broken))


def load_container_test_compose() -> ModuleType:
    """deploy/test/compose.py (not a package: pytest imports it there by its path)."""
    name = "deploy_test_compose"
    spec = importlib.util.spec_from_file_location(name, DEPLOY / "test" / "compose.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_service_setting_is_one_the_container_test_runs_with_or_stands_for(compose_file):
    for name, service in compose_file["services"].items():
        unknown = set(service) - RUN_SETTINGS - set(SETTINGS_OF_THE_TEST_ITSELF)
        assert not unknown, f"{name}: deploy/test/compose.py does not run with {unknown}"
        assert set(service.get("healthcheck", {})) <= HEALTHCHECK_SETTINGS, name


@pytest.mark.parametrize("service", ["web", "worker", "redis"])
def test_the_container_test_runs_each_service_with_the_compose_files_settings(
    service, compose_file, tmp_path, monkeypatch
):
    compose = load_container_test_compose()
    runs: list[list[str]] = []
    monkeypatch.setattr(compose, "docker", lambda *args, **_: runs.append(list(args)) or "")
    project = compose.Project("p", tmp_path / ".env")
    settings = compose_file["services"][service]

    project.run(service)

    (args,) = runs
    image_at = args.index(settings["image"])
    options = _options(args[:image_at])
    assert args[image_at + 1 :] == settings.get("command", [])
    assert options["--env"] == [f"{k}={v}" for k, v in settings.get("environment", {}).items()]
    assert len(options["--volume"]) == len(settings.get("volumes", []))
    for volume, given in zip(settings.get("volumes", []), options["--volume"], strict=True):
        source, _, target = volume.partition(":")
        assert given.endswith(f":{target}")
        assert given.startswith(str(DEPLOY) if source.startswith(".") else f"p_{source}:")
    assert options["--env-file"] == ([str(tmp_path / ".env")] if "env_file" in settings else [])
    assert options["--restart"] == [settings["restart"]]
    grace = settings.get("stop_grace_period")
    expected_grace = compose.seconds(grace) if grace else compose.DEFAULT_GRACE_SECONDS
    assert options["--stop-timeout"] == [str(expected_grace)]
    check = settings.get("healthcheck")
    if check is None:
        assert not [option for option in options if option.startswith("--health")], "the image's"
    else:
        assert options["--health-cmd"] == [" ".join(check["test"][1:])]
        assert options["--health-interval"] == [check["interval"]]
        assert options["--health-timeout"] == [check["timeout"]]
        assert options["--health-retries"] == [str(check["retries"])]
    ports = [port.rsplit(":", 1)[1] for port in settings.get("ports", [])]
    assert options["--publish"] == [f"127.0.0.1::{port}" for port in ports]


def _options(args: list[str]) -> defaultdict[str, list[str]]:
    """`docker run`'s options (the arguments before the image) with every value each was given."""
    found: defaultdict[str, list[str]] = defaultdict(list)
    words = iter(args[1:])  # after `run`
    for word in words:
        if word != "--detach":  # the one option without a value
            found[word].append(next(words))
    return found
