"""npm packages whose files the tests read (example payloads, schemas), installed with npm at a
pinned version into the checkout's git-ignored `.cache`: each checkout tests against its own
copy, and nothing of them is copied into the repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / ".cache"


class NotInstalled(Exception):
    """The package is not installed and npm could not install it."""


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    directory: Path  # the install prefix; the package lands in its node_modules
    what: str  # what the tests take from it, for the error when npm is missing

    def installed_at(self, directory: Path) -> Path:
        return directory / "node_modules" / self.name

    def installed_version(self, directory: Path) -> str | None:
        try:
            manifest = json.loads((self.installed_at(directory) / "package.json").read_text())
            return str(manifest["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def install(self, directory: Path | None = None) -> Path:
        """The package installed under `directory` (its own by default), installed first
        unless this version already is."""
        directory = directory or self.directory
        if self.installed_version(directory) == self.version:
            return self.installed_at(directory)
        npm = shutil.which("npm")
        if npm is None:
            raise NotInstalled(
                f"npm is not on PATH: the tests need it to install {self.name}@{self.version}, "
                f"{self.what} (apt-get install npm, or see nodejs.org)"
            )
        # --ignore-scripts: the tests read the package's files and never run its code.
        command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts",
                   "--prefix", str(directory), f"{self.name}@{self.version}"]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or self.installed_version(directory) != self.version:
            raise NotInstalled(
                f"`{' '.join(command)}` failed (exit {done.returncode}):\n{done.stderr.strip()}"
            )
        return self.installed_at(directory)

    def main(self) -> None:
        """Install it from the command line, as `.ci/run` does before the tests."""
        try:
            print(f"{self.name}@{self.version} in {self.install()}")
        except NotInstalled as error:
            raise SystemExit(str(error)) from None
