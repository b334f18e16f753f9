"""Child processes of a `stoplight` command that end with it: the embedded Redis, the web server."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For `preexec_fn`. Linux only: the kernel sends SIGTERM to the child if its parent dies,
    even by SIGKILL, so a crashed `stoplight serve` leaves nothing behind."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, the child's chance to finish cleanly; SIGKILL if it has not within `timeout`."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
