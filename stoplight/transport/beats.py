"""Work repeated from a thread while the calling thread does something else.

Liveness marks (a running job's registry entry, an effects pass's lock) are renewed this way,
so they can be short: the mark of a process that died lapses within seconds, while a live one
keeps it for as long as its work takes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def repeating(every_seconds: float, action: Callable[[], object], name: str) -> Iterator[None]:
    """Call `action` every `every_seconds` until the block ends; an action that raises is
    logged and tried again at the next beat (the mark may lapse meanwhile)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_seconds):
            try:
                action()
            except Exception as error:  # a failed beat must not end the ones after it
                log.warning("%s: beat failed: %s", name, error)

    thread = threading.Thread(target=beat, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
