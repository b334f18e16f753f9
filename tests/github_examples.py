"""GitHub's own example webhook payloads, from npm's `@octokit/webhooks-examples` (MIT).

They are installed, never copied into the repository: `.ci/run` runs this module
(`python3 -m tests.github_examples`) before the tests, and the tests' fixture installs them
the same way when they are absent, so the README's test command works without CI's script.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

PACKAGE = "@octokit/webhooks-examples"
VERSION = "7.6.1"
# Inside the checkout, git-ignored: each checkout tests against its own pinned copy.
DIRECTORY = Path(__file__).resolve().parents[1] / ".cache" / "webhooks-examples"
INSTALLED_AT = Path("node_modules", PACKAGE)  # under the install directory
# The package's example sets: github.com's, then each GitHub Enterprise Server release's.
HOSTS = ("api.github.com", "ghes-31", "ghes-32", "ghes-33", "ghes-34", "ghes-35")


class NotInstalled(Exception):
    """The examples are not installed and npm could not install them."""


def installed_version(directory: Path) -> str | None:
    try:
        return str(json.loads((directory / INSTALLED_AT / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def install(directory: Path = DIRECTORY) -> Path:
    """The package installed in `directory`, installed first unless this version already is."""
    if installed_version(directory) == VERSION:
        return directory / INSTALLED_AT
    npm = shutil.which("npm")
    if npm is None:
        raise NotInstalled(
            f"npm is not on PATH: the tests need it to install {PACKAGE}@{VERSION}, "
            "GitHub's example payloads (apt-get install npm, or see nodejs.org)"
        )
    command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix",
               str(directory), f"{PACKAGE}@{VERSION}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or installed_version(directory) != VERSION:
        raise NotInstalled(
            f"`{' '.join(command)}` failed (exit {done.returncode}):\n{done.stderr.strip()}"
        )
    return directory / INSTALLED_AT


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
    try:
        print(f"{PACKAGE}@{VERSION} in {install()}")
    except NotInstalled as error:
        raise SystemExit(str(error)) from None
