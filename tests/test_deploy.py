"""deploy/: the image, the compose file and the Kubernetes manifests agree with each other and
with the app (no container engine needed: they are read, not run)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from stoplight.settings import Settings
from stoplight.web import create_app

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
VERSION = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"stoplight:{VERSION}"
PORT = 3000
WEB_COMMAND = ["python", "-m", "stoplight.ops.web_server"]
# Read by the web server and prometheus-client rather than by Settings.
SERVER_VARIABLES = {"PORT", "WEB_CONCURRENCY", "WEB_THREADS", "PROMETHEUS_MULTIPROC_DIR"}


def setting_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(alias.choices if hasattr(alias, "choices") else [alias])
    return {name for name in names if isinstance(name, str) and name.isupper()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in (DEPLOY / "kubernetes").glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def container(manifests: dict, name: str) -> dict[str, Any]:
    (only,) = manifests[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
    return only


def test_image_is_slim_runs_as_a_user_and_checks_health():
    text = dockerfile()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases and all(re.fullmatch(r"python:3\.\d+-slim", base) for base in bases)
    assert re.search(r"^USER stoplight$", text, re.MULTILINE)
    assert re.search(r"pip wheel .*--constraint constraints\.txt \.", text)
    assert re.search(r"pip install .*--no-index --find-links /wheels stoplight", text)
    assert f"EXPOSE {PORT}" in text
    # One check for both processes: the web one's /healthz, a worker's heartbeat.
    assert '["python", "-m", "stoplight.ops.healthcheck"]' in text.split("HEALTHCHECK", 1)[1]
    cmd = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert cmd is not None and yaml.safe_load(cmd[1]) == WEB_COMMAND


def test_the_build_context_holds_what_the_image_copies():
    kept = {
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile(), re.MULTILINE):
        copied |= set(sources.split())
    assert copied and copied <= kept


def test_procfile_and_systemd_run_the_images_web_command():
    procfile = dict(
        line.split(": ", 1) for line in (DEPLOY / "Procfile").read_text().splitlines() if line
    )
    assert shlex.split(procfile["web"]) == WEB_COMMAND
    unit = (DEPLOY / "systemd" / "stoplight-web.service").read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.MULTILINE)
    assert exec_start is not None
    program, *arguments = shlex.split(exec_start[1])
    assert [Path(program).name, *arguments] == WEB_COMMAND


def test_compose_runs_web_two_workers_and_redis_on_a_volume(compose):
    services = compose["services"]
    web, worker, redis = services["web"], services["worker"], services["redis"]
    assert web["image"] == worker["image"] == IMAGE
    assert web["command"] == WEB_COMMAND
    assert web["ports"] == [f"{PORT}:{PORT}"]
    assert web["environment"]["PORT"] == str(PORT)
    assert worker["command"] == ["stoplight", "worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "./redis.conf:/usr/local/etc/redis/redis.conf:ro" in redis["volumes"]
    data_volume = next(v for v in redis["volumes"] if v.endswith(":/data"))
    assert data_volume.split(":")[0] in compose["volumes"]
    assert redis["command"][:2] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    for service in (web, worker):
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_kubernetes_probes_ports_and_secrets(manifests):
    web, worker = container(manifests, "stoplight-web"), container(manifests, "stoplight-worker")
    assert web["image"] == worker["image"] == IMAGE
    assert web["command"] == WEB_COMMAND
    assert worker["command"] == ["stoplight", "worker"]
    assert web["ports"] == [{"name": "http", "containerPort": PORT}]
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = manifests[("Service", "stoplight-web")]["spec"]
    assert service["ports"][0]["targetPort"] == "http"
    pod_labels = manifests[("Deployment", "stoplight-web")]["spec"]["template"]["metadata"]
    assert service["selector"].items() <= pod_labels["labels"].items()
    for each in (web, worker):
        assert {"secretRef": {"name": "stoplight"}} in each["envFrom"]
        assert {"configMapRef": {"name": "stoplight"}} in each["envFrom"]
        assert {"cpu", "memory"} <= each["resources"]["requests"].keys()
    assert ("Secret", "stoplight") in manifests
    assert ("ConfigMap", "stoplight") in manifests


def test_every_environment_name_is_one_the_app_reads(compose, manifests):
    known = setting_names() | SERVER_VARIABLES
    named = set()
    for service in compose["services"].values():
        named |= set(service.get("environment", {}))
    for kind in ("Secret", "ConfigMap"):
        document = manifests[(kind, "stoplight")]
        named |= set(document.get("stringData", document.get("data", {})))
    for name in ("stoplight-web", "stoplight-worker"):
        named |= {variable["name"] for variable in container(manifests, name).get("env", [])}
    assert named - known == set()
    secret = set(manifests[("Secret", "stoplight")]["stringData"])
    assert {"REDIS_URL", "APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET"} <= secret


def test_probed_paths_are_the_apps(settings, redis):
    routes = {rule.rule for rule in create_app(settings, redis).url_map.iter_rules()}
    assert {"/healthz", "/readyz", "/metrics"} <= routes
