"""deploy/kubernetes/: every document is valid Kubernetes 1.37 (unknown fields refused), and the
manifests keep what running Stoplight there needs: probes that fit each process, resources,
a locked-down pod, disruption budgets and grace periods that match how the processes stop."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from rq import Worker

from stoplight.ops import web_server
from stoplight.ops.healthcheck import ANSWER_SECONDS
from stoplight.pipeline.runtime import JOB_TIMEOUT_SECONDS
from tests.test_end_to_end import free_port

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.37"
KUSTOMIZATION = "kustomization.yaml"
EXAMPLE_SECRET = "secret.example.yaml"
# A worker's first heartbeat can wait for the renaming of an earlier version's keys.
WORKER_START_SECONDS = 5 * 60
MEBIBYTES = {"Mi": 1, "Gi": 1024}


def manifest_files() -> list[Path]:
    return sorted(path for path in KUBERNETES.glob("*.yaml") if path.name != KUSTOMIZATION)


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{document['kind']}/{document['metadata']['name']}", document)
        for path in manifest_files()
        for document in yaml.safe_load_all(path.read_text())
    ]


def applied() -> dict[tuple[str, str], dict[str, Any]]:
    """What `kubectl apply -k` applies: the documents of the files kustomization.yaml lists."""
    kustomization = yaml.safe_load((KUBERNETES / KUSTOMIZATION).read_text())
    return {
        (document["kind"], document["metadata"]["name"]): document
        for name in kustomization["resources"]
        for document in yaml.safe_load_all((KUBERNETES / name).read_text())
    }


def deployments() -> dict[str, dict[str, Any]]:
    return {name: doc for (kind, name), doc in applied().items() if kind == "Deployment"}


def pod(name: str) -> dict[str, Any]:
    return deployments()[name]["spec"]["template"]["spec"]


def container(name: str) -> dict[str, Any]:
    (only,) = pod(name)["containers"]
    return only


def image_health_check() -> list[str]:
    """The command of the Dockerfile's HEALTHCHECK, the one the image already runs."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    found = re.search(r"^HEALTHCHECK\b(?:.*\\\n)*.*?\bCMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert found is not None, "the Dockerfile has no HEALTHCHECK ... CMD [...]"
    return json.loads(found[1])


def image_uid() -> int:
    found = re.search(r"useradd .*--uid (\d+)", (DEPLOY / "Dockerfile").read_text())
    assert found is not None, "the Dockerfile creates no user with a uid"
    return int(found[1])


def mebibytes(quantity: str) -> int:
    found = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert found is not None, f"{quantity} is not in Mi or Gi"
    return int(found[1]) * MEBIBYTES[found[2]]


def window(probe: dict[str, Any]) -> int:
    """Seconds of failures before a probe gives up, with Kubernetes' defaults."""
    return probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)


@pytest.mark.parametrize(("where", "document"), documents(), ids=[w for w, _ in documents()])
def test_every_document_is_valid_kubernetes(where, document):
    assert kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True) == (
        KUBERNETES_VERSION
    ), f"{where} was checked against another version's schemas"


def test_an_unknown_field_is_refused():
    misspelt = applied()[("Deployment", "stoplight-web")]  # read afresh: this copy is ours
    misspelt["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)


def test_kustomize_applies_every_manifest_but_the_example_secret():
    kustomization = yaml.safe_load((KUBERNETES / KUSTOMIZATION).read_text())
    listed = set(kustomization["resources"])
    assert listed == {path.name for path in manifest_files()} - {EXAMPLE_SECRET}


def test_web_probes_ask_the_apps_health_pages():
    web = container("stoplight-web")
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    for probe in (web["livenessProbe"], web["readinessProbe"]):
        assert probe["timeoutSeconds"] >= 2


def test_worker_probes_run_the_images_health_check():
    worker = container("stoplight-worker")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert worker[kind]["exec"]["command"] == image_health_check(), kind
        # The check waits up to ANSWER_SECONDS for a web answer before it asks Redis.
        assert worker[kind]["timeoutSeconds"] > ANSWER_SECONDS, kind
    assert window(worker["startupProbe"]) >= WORKER_START_SECONDS


def test_the_health_check_passes_for_a_worker_that_heartbeats_on_this_host(
    redis, redis_server, tmp_path
):
    """The exec probe as a pod runs it: no web server on PORT, a worker of its host name."""
    environment = {
        "PATH": os.environ["PATH"],
        "REDIS_URL": redis_server.url,
        "PORT": str(free_port()),
    }
    program, *arguments = image_health_check()
    assert program == "python"

    def probe() -> int:
        run = subprocess.run(
            [sys.executable, *arguments], env=environment, cwd=tmp_path, timeout=30, check=False
        )
        return run.returncode

    assert probe() == 1
    worker = Worker(["stoplight"], connection=redis, name="probed")
    worker.register_birth()
    worker.heartbeat()
    assert worker.hostname == socket.gethostname()
    assert probe() == 0


@pytest.mark.parametrize("name", ["stoplight-web", "stoplight-worker"])
def test_every_container_requests_and_limits_resources(name):
    resources = container(name)["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert mebibytes(resources["limits"]["memory"]) >= mebibytes(resources["requests"]["memory"])


@pytest.mark.parametrize("name", ["stoplight-web", "stoplight-worker"])
def test_pods_run_as_the_images_user_on_a_read_only_root(name):
    spec = pod(name)
    effective = {**spec["securityContext"], **container(name)["securityContext"]}
    assert effective["runAsNonRoot"] is True
    assert effective["runAsUser"] == image_uid()
    assert effective["seccompProfile"] == {"type": "RuntimeDefault"}
    assert effective["allowPrivilegeEscalation"] is False
    assert effective["capabilities"]["drop"] == ["ALL"]
    assert effective["readOnlyRootFilesystem"] is True
    assert spec["automountServiceAccountToken"] is False
    assert "/tmp" in writable_paths(name)


def writable_paths(name: str) -> set[str]:
    empty_dirs = {volume["name"] for volume in pod(name)["volumes"] if "emptyDir" in volume}
    return {
        mount["mountPath"]
        for mount in container(name)["volumeMounts"]
        if mount["name"] in empty_dirs and not mount.get("readOnly", False)
    }


def test_the_web_writes_its_shared_metrics_on_a_writable_volume():
    environment = {each["name"]: each["value"] for each in container("stoplight-web")["env"]}
    directory = Path(environment["PROMETHEUS_MULTIPROC_DIR"])
    assert any(directory.is_relative_to(path) for path in writable_paths("stoplight-web"))


@pytest.mark.parametrize("name", ["stoplight-web", "stoplight-worker"])
def test_a_disruption_budget_keeps_a_pod_of_each_but_lets_drains_finish(name):
    deployment = deployments()[name]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (budget,) = [
        document["spec"]
        for (kind, _), document in applied().items()
        if kind == "PodDisruptionBudget"
        and document["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert 1 <= budget["minAvailable"] < deployment["spec"]["replicas"]
    assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_web_grace_covers_the_pause_before_stopping_and_granians_stop():
    spec, web = pod("stoplight-web"), container("stoplight-web")
    pause = web["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause > 0  # the endpoint leaves the Service before the server stops taking requests
    stop = web_server.server().workers_kill_timeout
    assert spec["terminationGracePeriodSeconds"] > pause + stop


def test_worker_grace_covers_a_job_to_its_end():
    assert pod("stoplight-worker")["terminationGracePeriodSeconds"] > JOB_TIMEOUT_SECONDS


def readme_overlay() -> str:
    readme = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL)
    (overlay,) = [block for block in blocks if "kind: Kustomization" in block]
    return overlay


def test_the_readmes_overlay_renders_valid_manifests(tmp_path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its kustomize) is not installed")
    shutil.copytree(KUBERNETES, tmp_path / "base")
    (tmp_path / "production").mkdir()
    (tmp_path / "production" / KUSTOMIZATION).write_text(readme_overlay())
    rendered = subprocess.run(
        [kubectl, "kustomize", str(tmp_path / "production")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    found = {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(rendered)}
    assert found.keys() == applied().keys()
    for document in found.values():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    overlay = yaml.safe_load(readme_overlay())
    worker = found[("Deployment", "stoplight-worker")]
    assert worker["spec"]["replicas"] == overlay["replicas"][0]["count"]
    assert worker["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        overlay["images"][0]["newName"]
    )
    name, value = overlay["configMapGenerator"][0]["literals"][0].split("=", 1)
    assert found[("ConfigMap", "stoplight")]["data"][name] == value
