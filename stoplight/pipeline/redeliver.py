"""Asking GitHub to redeliver the webhook deliveries that failed.

GitHub does not retry a failed delivery on its own. After an outage (the web answered 503
because Redis was unreachable, or the app was down), the app lists its recent deliveries with
the app JWT and asks for each failed one to be sent again; intake then processes it as new,
since a delivery answered 503 was never recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from github.Requester import Requester

from stoplight.clients.github import app_integration, next_page_url
from stoplight.core.clock import parse_github_time
from stoplight.pipeline.runtime import Runtime
from stoplight.settings import Settings
from stoplight.state import keys

log = logging.getLogger(__name__)

# GitHub keeps deliveries for three days; older ones cannot be redelivered.
OLDEST_REDELIVERABLE = timedelta(days=3)
# Several runs may look at one failure (each web process queues one after an outage, and a
# heal another): the first to ask for a failed attempt again holds it this long.
ASKED_TTL_SECONDS = 3600


@dataclass(frozen=True)
class Redelivery:
    checked: int
    failed: list[str]  # guids asked for again


def failed_deliveries(requester: Requester, since: datetime) -> tuple[int, dict[str, int]]:
    """(deliveries looked at, guid -> delivery id of the newest failed attempt) since `since`.

    Deliveries come newest first; a guid with any successful attempt is done already.
    """
    succeeded: set[str] = set()
    failed: dict[str, int] = {}
    checked = 0
    url: str | None = "/app/hook/deliveries"
    params: dict[str, int] | None = {"per_page": 100}
    while url is not None:
        headers, page = requester.requestJsonAndCheck("GET", url, parameters=params)
        for delivery in page:
            delivered_at = parse_github_time(delivery.get("delivered_at"))
            if delivered_at is None or delivered_at < since:
                return checked, failed
            checked += 1
            guid = delivery["guid"]
            if 200 <= int(delivery.get("status_code") or 0) < 300:
                succeeded.add(guid)
                failed.pop(guid, None)
            elif guid not in succeeded:
                failed.setdefault(guid, int(delivery["id"]))
        links = {name.lower(): value for name, value in headers.items()}.get("link", "")
        url, params = next_page_url(links), None
    return checked, failed


def redeliver_failed(
    settings: Settings,
    since: datetime,
    now: datetime,
    first_to_ask: Callable[[int], bool] = lambda attempt: True,
) -> Redelivery:
    """Ask again for each delivery whose newest attempt since `since` failed, unless another
    run asked for that attempt already (`first_to_ask`)."""
    since = max(since, now - OLDEST_REDELIVERABLE)
    requester = app_integration(settings).requester
    checked, failed = failed_deliveries(requester, since)
    asked: list[str] = []
    for guid, attempt in failed.items():
        # Claimed one at a time, as each is asked for: a run that dies leaves the rest free.
        if first_to_ask(attempt):
            requester.requestJsonAndCheck("POST", f"/app/hook/deliveries/{attempt}/attempts")
            log.info("asked GitHub to redeliver %s", guid)
            asked.append(guid)
    log.info(
        "redelivery: %d deliveries since %s, %d failed, %d asked for again here",
        checked, since, len(failed), len(asked),
    )  # fmt: skip
    return Redelivery(checked=checked, failed=sorted(asked))


def redeliver_since(rt: Runtime, since: datetime) -> Redelivery | None:
    if rt.github is None:
        log.warning("no GitHub App credentials: failed deliveries cannot be redelivered")
        return None

    def first_to_ask(attempt: int) -> bool:
        return bool(rt.queue.set(keys.redelivery_asked(attempt), 1, nx=True, ex=ASKED_TTL_SECONDS))

    return redeliver_failed(rt.settings, since, rt.clock.now(), first_to_ask)
