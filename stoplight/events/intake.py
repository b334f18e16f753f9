"""Taking in a delivery: record its id and queue its body in a lane, together or not at all.

The web endpoint and `stoplight replay` both come through here. A delivery id seen before is
acknowledged and not processed again; a delivery that could not be recorded was never seen,
so GitHub's redelivery of it is processed.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime
from enum import Enum
from typing import Any

import orjson
import simdjson

from stoplight.events.routing import installation_id_of
from stoplight.transport import records
from stoplight.transport.lanes import Lanes

log = logging.getLogger(__name__)


class Outcome(Enum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


DELIVERY_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def valid_delivery_id(delivery_id: str) -> bool:
    """GitHub's delivery ids are GUIDs; anything else is refused before it reaches Redis."""
    return DELIVERY_ID.fullmatch(delivery_id) is not None


def parse_body(body: bytes) -> Any:
    """The JSON value of a delivery body; ValueError for a body that is not JSON, or one
    nested deeper than the parser goes."""
    return orjson.loads(body)


def installation_of(payload: dict[str, Any]) -> int:
    """The installation a parsed delivery names, or 0; only its lane depends on this."""
    return installation_id_of(payload) or 0


class NotAJSONObject(ValueError):
    pass


_parsers = threading.local()


def installation_in(body: bytes) -> int:
    """The installation a delivery body names (0 for none), checking on the way that the
    body is a JSON object: NotAJSONObject says why not.

    simdjson validates the whole document at several GB/s and reads one field without
    building Python objects for the rest; the worker parses the body fully.
    """
    parser: simdjson.Parser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    try:
        document = parser.parse(body)
    except (ValueError, RuntimeError) as error:  # RuntimeError: nested deeper than 1,024
        raise NotAJSONObject("body is not JSON (is the webhook content type JSON?)") from error
    if not isinstance(document, simdjson.Object):
        raise NotAJSONObject("body is not a JSON object")
    try:
        found = document.at_pointer("/installation/id")
    except (KeyError, ValueError, TypeError, IndexError):
        found = 0
    return found if isinstance(found, int) and not isinstance(found, bool) else 0


def accept(
    lanes: Lanes,
    delivery_id: str,
    event: str,
    body: bytes,
    *,
    installation_id: int,
    now: datetime,
) -> Outcome:
    """Record the delivery and queue it in its lane's stream in one atomic script (one round
    trip). A delivery id seen before is acknowledged and queues nothing.

    A full Redis refuses the script before it writes anything: redis-py raises the error.
    """
    if not valid_delivery_id(delivery_id):
        raise ValueError(f"delivery id {delivery_id[:100]!r} is not a GitHub delivery id")
    recorded = records.record_and_queue(
        lanes, delivery_id, event, body, installation_id=installation_id, now=now
    )
    return Outcome.QUEUED if recorded else Outcome.DUPLICATE


def storage_full(error: Exception) -> bool:
    """Whether Redis refused a write because it reached `maxmemory`."""
    return "OOM command not allowed" in str(error)
