"""deploy/kubernetes/: every document is valid Kubernetes 1.37, unknown fields refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.37"


def manifest_files() -> list[Path]:
    return sorted(KUBERNETES.glob("*.yaml"))


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{document['kind']}/{document['metadata']['name']}", document)
        for path in manifest_files()
        for document in yaml.safe_load_all(path.read_text())
    ]


@pytest.mark.parametrize(("where", "document"), documents(), ids=[w for w, _ in documents()])
def test_every_document_is_valid_kubernetes(where, document):
    assert kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True) == (
        KUBERNETES_VERSION
    ), f"{where} was checked against another version's schemas"


def test_an_unknown_field_is_refused():
    (web,) = [doc for where, doc in documents() if where.endswith(":Deployment/stoplight-web")]
    misspelt = copy.deepcopy(web)
    misspelt["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)
