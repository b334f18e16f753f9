"""GitHub's own example webhook payloads, from npm's `@octokit/webhooks-examples` (MIT).

They are installed, never copied into the repository: `.ci/run` runs this module
(`python3 -m tests.github_examples`) before the tests, and the tests' fixture installs them
the same way when they are absent, so the README's test command works without CI's script.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.npm_packages import CACHE, NotInstalled, NpmPackage

PACKAGE = NpmPackage(
    "@octokit/webhooks-examples",
    "7.6.1",
    CACHE / "webhooks-examples",
    what="GitHub's example payloads",
)
# The package's example sets: github.com's, then each GitHub Enterprise Server release's.
HOSTS = ("api.github.com", "ghes-31", "ghes-32", "ghes-33", "ghes-34", "ghes-35")
__all__ = ["HOSTS", "PACKAGE", "NotInstalled", "examples", "hosts", "install"]


def install(directory: Path = PACKAGE.directory) -> Path:
    """The package installed in `directory`, installed first unless this version already is."""
    return PACKAGE.install(directory)


def hosts(package: Path) -> list[str]:
    """The example sets the installed package has, each a directory with its index."""
    return sorted(index.parent.name for index in package.glob("*/index.json"))


def examples(package: Path, host: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, payload) of every example of one host's set, in the package's order.

    The set's index lists each event once, with its examples.
    """
    index = json.loads((package / host / "index.json").read_text())
    return [(event["name"], payload) for event in index for payload in event["examples"]]


if __name__ == "__main__":
    PACKAGE.main()
