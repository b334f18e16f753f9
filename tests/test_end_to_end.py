"""The real `stoplight serve` process, signed deliveries over HTTP, a local fake GitHub."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from redis import Redis

from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS
from stoplight.pipeline.merge_groups import MERGE_GROUP_DESCRIPTION
from tests.conftest import WEBHOOK_SECRET
from tests.fakes import FakeClock, Pull, Repo, body_of, sign
from tests.github_server import FakeGitHubState, serve_fake_github
from tests.test_hostile_config import alias_bomb
from tests.test_merge_queue import GROUP_SHA, merge_group

pytestmark = pytest.mark.slow

GREEN, YELLOW = DESCRIPTIONS[Level.GREEN], DESCRIPTIONS[Level.YELLOW]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


def start_serve(
    env: dict[str, str], cwd: Path, *, own_session: bool = False
) -> subprocess.Popen[bytes]:
    """`stoplight serve`; `own_session` puts it in a process group of its own, as a terminal
    does, so a test can send the whole group Ctrl-C."""
    clean = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    return subprocess.Popen(
        [sys.executable, "-m", "stoplight", "serve"],
        env={**clean, **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=open(cwd / "serve.log", "wb"),  # closed with the process
        start_new_session=own_session,
    )


_SETTINGS = {
    "APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "WEBHOOK_PATH", "HOST", "PORT",
    "GHE_HOST", "GHE_PROTOCOL", "REDIS_URL", "SLACK_BOT_TOKEN", "SLACK_API_URL",
    "SLACK_WEBHOOK_URL", "DATA_DIR", "BASE_URL", "LOG_LEVEL", "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET", "SESSION_SECRET", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN",
}  # fmt: skip


def serve_env(
    private_key: str, github_host: str, port: int, tmp_path: Path, **more: str
) -> dict[str, str]:
    """The settings of a `stoplight serve` against a local fake GitHub, and `more`."""
    return {
        "APP_ID": "1234",
        "PRIVATE_KEY": private_key,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GHE_HOST": github_host,
        "GHE_PROTOCOL": "http",
        "PORT": str(port),
        "DATA_DIR": str(tmp_path / "data"),
        **more,
    }


def stop(process: subprocess.Popen[bytes], how: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(how)
        process.wait(timeout=20)


def redis_servers_under(directory: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", "redis-server"], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if str(directory) in line]


@pytest.fixture
def github_server() -> Iterator[tuple[str, FakeGitHubState]]:
    with serve_fake_github() as server:
        yield server


@pytest.fixture
def app_url(served: tuple[str, subprocess.Popen[bytes]]) -> str:
    return served[0]


@pytest.fixture
def served(
    tmp_path, github_server, private_key_pem
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The `stoplight serve` process and its address."""
    port = free_port()
    # The key on one line with literal \n, as hosting dashboards store it.
    one_line_key = private_key_pem.replace("\n", "\\n")
    process = start_serve(serve_env(one_line_key, github_server[0], port, tmp_path), tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/healthz"))
        yield url, process
    finally:
        stop(process)
        log = (tmp_path / "serve.log").read_text()
        assert "Traceback" not in log, log
    assert redis_servers_under(tmp_path) == []


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def post_delivery(url: str, event: tuple[str, dict], delivery: str, secret: str = WEBHOOK_SECRET):
    name, payload = event
    body = body_of(payload)
    headers = {
        "X-GitHub-Event": name,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
    }
    return requests.post(f"{url}/api/github/webhooks", data=body, headers=headers, timeout=5)


def test_deliveries_become_statuses_and_labels(app_url, github_server):
    github = github_server[1]
    clock = FakeClock(datetime.now(UTC))  # the app process runs on the real clock
    first = Pull(number=1, head_sha="1" * 40, additions=40, deletions=10)
    assert post_delivery(app_url, first.event("opened", clock.now()), "e2e-1").status_code == 202

    wait_for(lambda: github.status_writes() and github.label_writes())
    wait_for(lambda: len(github.label_writes()) >= 2)
    assert github.status_writes() == [(first.head_sha, "success", GREEN)]
    assert github.label_writes() == [
        ("POST", "/repos/octo/shop/labels",
         {"name": "size/M", "color": "eebb00", "description": "Changes 30-99 lines"}),
        ("POST", "/repos/octo/shop/issues/1/labels", ["size/M"]),
    ]  # fmt: skip

    wrongly_signed = post_delivery(app_url, first.event("closed", clock.now()), "e2e-x", "nope")
    assert wrongly_signed.status_code == 401

    others = [Pull(number=n, head_sha=f"{n}" * 40) for n in (2, 3, 4)]
    for n, pull in enumerate(others, start=2):
        clock.advance(minutes=1)
        assert (
            post_delivery(app_url, pull.event("opened", clock.now()), f"e2e-{n}").status_code == 202
        )

    def all_yellow() -> bool:
        latest = {sha: text for sha, _, text in github.status_writes()}
        return len(latest) == 4 and set(latest.values()) == {YELLOW}

    wait_for(all_yellow)
    statuses = github.status_writes()
    assert len(statuses) == len(set(statuses))  # nothing posted twice
    assert github.tokens_issued == 1  # one token, reused across jobs


def test_serve_outlives_its_redis_losing_every_key(served, github_server, tmp_path):
    """FLUSHALL on the embedded Redis, as a restart without its append-only file would leave
    it: the process stays up, answers, and a delivery after the loss becomes a status."""
    url, process = served
    github = github_server[1]
    clock = FakeClock(datetime.now(UTC))
    first, second = (Pull(number=n, head_sha=f"{n}" * 40) for n in (1, 2))
    assert post_delivery(url, first.event("opened", clock.now()), "loss-1").status_code == 202
    wait_for(lambda: first.head_sha in github.statuses)
    wait_for(lambda: requests.get(f"{url}/readyz", timeout=5).status_code == 200)

    with Redis(unix_socket_path=str(tmp_path / "data" / "redis" / "redis.sock")) as redis:
        redis.flushall()
    assert post_delivery(url, second.event("opened", clock.now()), "loss-2").status_code == 202
    wait_for(lambda: second.head_sha in github.statuses)
    wait_for(lambda: requests.get(f"{url}/readyz", timeout=5).status_code == 200)
    assert process.poll() is None


def test_hostile_files_get_error_statuses_while_other_teams_are_served(served, github_server):
    """Files from members with push access to one repository each: a YAML alias bomb, a path
    smuggled into `_extends`, a cooldown past any date, another owner's file."""
    url, process = served
    github = github_server[1]
    hostile = {
        "octo/web": alias_bomb(),
        "octo/api": "_extends: 'octo/secret/contents/deploy/production.yml?'\n",
        "octo/lib": "teams: [{name: lib, cooldown: 99999999999d}]\n",
        "octo/app": "_extends: attacker/secret\n",
    }
    for repo, text in hostile.items():
        github.files[(repo, ".github/stoplight.yml")] = text
    clock = FakeClock(datetime.now(UTC))
    pulls = [
        Pull(repo=Repo(id=3000 + n, full_name=repo), head_sha=f"{n}" * 40)
        for n, repo in enumerate([*hostile, "octo/shop"], start=1)
    ]
    for n, pull in enumerate(pulls):
        assert post_delivery(url, pull.event("opened", clock.now()), f"h-{n}").status_code == 202

    wait_for(lambda: len({sha for sha, _, _ in github.status_writes()}) == len(pulls))
    latest = {sha: (state, text) for sha, state, text in github.status_writes()}
    for pull in pulls[:-1]:
        state, text = latest[pull.head_sha]
        assert state == "error" and text.startswith("Invalid .github/stoplight.yml: "), text
    assert latest[pulls[-1].head_sha] == ("success", GREEN)
    assert [path for path in github.paths if "secret" in path] == []
    assert "/api/v3/repos/octo/shop/contents/.github/stoplight.yml" in github.paths
    peak = _peak_memory_kib(process.pid)
    print(f"stoplight serve: peak resident memory {peak / 1024:.0f} MiB")
    assert peak < 1024 * 1024  # an expanded alias bomb alone takes gigabytes


def _peak_memory_kib(pid: int) -> int:
    """The highest resident memory (VmHWM) of the process and its children, in KiB."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    peaks = []
    for each in [pid, *map(int, children)]:
        status = Path(f"/proc/{each}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status)[1]))
    return max(peaks)


def test_serve_without_configuration_answers_on_port_3000(tmp_path):
    if not _port_free(3000):
        pytest.skip("port 3000 is taken on this machine")
    process = start_serve({"DATA_DIR": str(tmp_path / "data")}, tmp_path)
    try:
        wait_for(lambda: _answers("http://127.0.0.1:3000/healthz"))
        page = requests.get("http://127.0.0.1:3000/", timeout=5)
        assert "not configured" in page.text
        log = (tmp_path / "serve.log").read_text()
        link = re.search(r"open (http://127.0.0.1:3000/setup\?token=[\w-]+)", log)
        assert link is not None, log
        assert "Register the GitHub App" in requests.get(link[1], timeout=5).text
        assert requests.get("http://127.0.0.1:3000/setup", timeout=5).status_code == 404
        assert redis_servers_under(tmp_path)  # the embedded Redis runs
    finally:
        stop(process, signal.SIGINT)
    assert process.returncode == 0
    wait_for(lambda: not redis_servers_under(tmp_path), timeout=10)


STOPS = {"ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM}


@pytest.mark.parametrize("how", STOPS.values(), ids=STOPS.keys())
def test_stopping_serve_ends_every_process_it_started_without_a_traceback(tmp_path, how):
    port = free_port()
    env = {"DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}
    process = start_serve(env, tmp_path, own_session=True)
    log = tmp_path / "serve.log"
    try:
        wait_for(lambda: "Scheduler for" in log.read_text())  # RQ's scheduler process runs
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"))
        started = descendants(process.pid)
        commands = [command_line(pid) for pid in started]
        assert sum("stoplight.ops.web_server" in c for c in commands) == 2, commands  # granian
        assert sum("redis-server" in c for c in commands) == 1, commands  # and one worker
    finally:
        if how == signal.SIGINT:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        else:
            process.send_signal(signal.SIGTERM)  # what a service manager sends
        asked = time.monotonic()
        process.wait(timeout=20)
    assert time.monotonic() - asked < 10
    assert process.returncode == 0
    assert "Traceback" not in log.read_text(), log.read_text()
    assert [pid for pid in started if running(pid)] == []
    assert _port_free(port)
    assert redis_servers_under(tmp_path) == []


def test_serve_on_a_port_in_use_says_so_and_leaves_nothing_running(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        process = start_serve({"DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}, tmp_path)
        process.wait(timeout=30)
    log = (tmp_path / "serve.log").read_text()
    assert process.returncode == 1
    assert f"Error: 127.0.0.1:{port} is in use; set HOST or PORT" in log, log
    assert "Traceback" not in log, log
    assert redis_servers_under(tmp_path) == []


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):  # gone meanwhile
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], list(children.get(pid, []))
    while pending:
        found.append(pending.pop())
        pending.extend(children.get(found[-1], []))
    return found


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def running(pid: int) -> bool:
    """Alive, not a zombie left for init to reap."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_merge_group_gets_success_within_seconds(app_url, github_server):
    github = github_server[1]
    started = time.monotonic()
    assert post_delivery(app_url, merge_group(), "e2e-group").status_code == 202
    wait_for(lambda: github.status_writes(), timeout=10)
    print(f"merge group status after {time.monotonic() - started:.2f}s")
    assert github.status_writes() == [(GROUP_SHA, "success", MERGE_GROUP_DESCRIPTION)]


def test_gate_reads_the_served_signal_with_a_token(served, github_server, tmp_path):
    """An agent's step in CI: `stoplight gate --agent` against the running app, with a token
    made by `stoplight token create`: held at yellow, while a person's PR would enter."""
    url, _ = served
    clock = FakeClock(datetime.now(UTC))
    for number in range(1, 5):  # four waiting: yellow
        pull = Pull(number=number, head_sha=f"{number}" * 40)
        delivered = post_delivery(url, pull.event("opened", clock.now()), f"gate-{number}")
        assert delivered.status_code == 202
    github = github_server[1]
    wait_for(lambda: {text for _, _, text in github.status_writes()[-4:]} == {YELLOW})
    socket_path = tmp_path / "data" / "redis" / "redis.sock"
    env = {**os.environ, "REDIS_URL": f"unix://{socket_path}", "DATA_DIR": str(tmp_path / "cli")}

    def stoplight(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "stoplight", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    token = stoplight("token", "create", "--team", "octo/shop").stdout.strip()
    remote = ("--team", "octo/shop", "--url", url, "--token", token, "--installation", "42")
    agent, person = stoplight("gate", "--agent", *remote), stoplight("gate", *remote)
    wrong = stoplight("gate", *remote[:4], "--token", "slt_wrong", "--installation", "42")

    assert (agent.returncode, agent.stdout) == (1, "held: agents wait while the queue is yellow\n")
    assert (person.returncode, person.stdout) == (0, "go: the queue is yellow\n")
    assert wrong.returncode == 2 and "404" in wrong.stderr


def test_serve_whose_web_server_died_stops_saying_so_and_leaves_nothing_running(tmp_path):
    port = free_port()
    process = start_serve({"DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}, tmp_path)
    log = tmp_path / "serve.log"
    try:
        wait_for(lambda: "Scheduler for" in log.read_text())
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"))
        started = descendants(process.pid)
        web_main = next(
            pid
            for pid in started
            if "stoplight.ops.web_server" in command_line(pid) and _parent_of(pid) == process.pid
        )
        os.kill(web_main, signal.SIGKILL)  # as the out-of-memory killer would
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert process.returncode == 1
    assert "the web server exited (-9): stopping" in output, output
    assert "Error: the web server stopped unexpectedly" in output, output
    assert "Traceback" not in output, output
    assert [pid for pid in started if running(pid)] == []
    assert redis_servers_under(tmp_path) == []


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
