"""deploy/docker-compose.yml's services run with `docker run`, as Compose would run them.

Compose v2 cannot be installed on the machines the tests run on (Debian ships v1, which
cannot read the file), so each service's settings are translated here: the image, the
command, the environment and env file, the volumes (named ones prefixed with the project, as
Compose does), the stop grace period, the restart policy and the health check, on a network
of the project's own where each service is reachable by its name.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1]
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
# Compose's default when a service names no stop_grace_period.
DEFAULT_GRACE_SECONDS = 10
# Set on a test that failed, so its fixtures show the containers' logs.
FAILED = pytest.StashKey[bool]()


def docker(*args: str, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {shlex.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def docker_succeeds(*args: str) -> bool:
    return subprocess.run(["docker", *args], capture_output=True, timeout=120).returncode == 0


def compose_file() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def seconds(duration: str) -> int:
    """A Compose duration (40s, 1m30s) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(number) * units[unit] for number, unit in parts)


@dataclass
class Project:
    """One compose project: its network, volumes and containers, removed with it."""

    name: str
    env_file: Path
    services: dict[str, Any] = field(default_factory=lambda: compose_file()["services"])
    containers: list[str] = field(default_factory=list)

    def create(self) -> None:
        docker("network", "create", self.name)

    def gateway(self) -> str:
        """The host's address on the project's network, where containers reach it."""
        return docker(
            "network", "inspect", self.name, "--format", "{{(index .IPAM.Config 0).Gateway}}"
        )

    def grace_seconds(self, service: str) -> int:
        grace = self.services[service].get("stop_grace_period")
        return seconds(grace) if grace else DEFAULT_GRACE_SECONDS

    def run(self, service: str, number: int = 1, image: str | None = None) -> str:
        """Starts one replica of `service` (`image` in place of the file's, for an upgrade)."""
        name = f"{self.name}-{service}-{number}"
        settings = self.services[service]
        args = ["run", "--detach", "--name", name, "--network", self.name]
        args += ["--network-alias", service, "--stop-timeout", str(self.grace_seconds(service))]
        if "restart" in settings:
            args += ["--restart", settings["restart"]]
        if "env_file" in settings:
            args += ["--env-file", str(self.env_file)]
        for variable, value in settings.get("environment", {}).items():
            args += ["--env", f"{variable}={value}"]
        for volume in settings.get("volumes", []):
            args += ["--volume", self._volume(volume)]
        for port in settings.get("ports", []):
            # The machine is shared: the container's port on a free one of the host's.
            args += ["--publish", f"127.0.0.1::{port.rsplit(':', 1)[1]}"]
        args += self._health_options(settings.get("healthcheck", {}))
        args += [image or settings["image"], *settings.get("command", [])]
        docker(*args)
        self.containers.append(name)
        return name

    def run_once(self, image: str, *command: str) -> str:
        """A one-off command on the project's network with the app's settings, as
        `docker compose run --rm worker ...` gives it; its output."""
        settings = self.services["worker"]
        environment = [f"--env={k}={v}" for k, v in settings.get("environment", {}).items()]
        return docker(
            "run", "--rm", "--network", self.name, "--env-file", str(self.env_file),
            *environment, image, *command,
        )  # fmt: skip

    def _volume(self, volume: str) -> str:
        source, _, target = volume.partition(":")
        if source.startswith("."):
            return f"{(DEPLOY / source).resolve()}:{target}"
        return f"{self.name}_{source}:{target}"

    @staticmethod
    def _health_options(check: dict[str, Any]) -> list[str]:
        if not check:
            return []  # the image's own
        test = check["test"]
        assert test[0] == "CMD", test
        options = ["--health-cmd", shlex.join(test[1:])]
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                options += [f"--health-{key.replace('_', '-')}", check[key]]
        if "retries" in check:
            options += ["--health-retries", str(check["retries"])]
        return options

    def remove(self) -> None:
        for name in self.containers:
            docker("rm", "--force", "--volumes", name, check=False)
        docker("network", "rm", self.name, check=False)
        volumes = docker("volume", "ls", "--quiet", "--filter", f"name=^{self.name}_")
        for volume in volumes.split():
            docker("volume", "rm", "--force", volume, check=False)


def published_url(container: str, port: int) -> str:
    address = docker("port", container, str(port)).splitlines()[0]
    return f"http://{address}"


def health(container: str) -> str:
    state = json.loads(docker("inspect", "--format", "{{json .State}}", container))
    return state["Health"]["Status"] if state.get("Health") else "none"


def wait_healthy(container: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while (status := health(container)) != "healthy":
        assert time.monotonic() < deadline, f"{container} is {status}: {logs(container)}"
        time.sleep(0.5)


def stop_seconds(container: str) -> float:
    started = time.monotonic()
    docker("stop", container)
    return time.monotonic() - started


def logs(container: str) -> str:
    done = subprocess.run(["docker", "logs", "--tail", "40", container], capture_output=True)
    return (done.stdout + done.stderr).decode(errors="replace")


@contextmanager
def step(what: str) -> Iterator[None]:
    """Prints how long `what` took: the test's minutes, accounted for."""
    started = time.monotonic()
    yield
    print(f"\n  {what}: {time.monotonic() - started:.1f} s", end="", flush=True)
