"""WEBHOOK_PROXY_URL: deliveries through a smee.io-style channel, for development behind NAT.

As with Probot, GitHub posts to the channel and the channel streams each delivery as a
server-sent event: GitHub's headers and the JSON body. Each is posted to this app's own
webhook as GitHub would have posted it, so the signature check and everything after it
apply unchanged.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import requests
from sseclient import SSEClient

log = logging.getLogger(__name__)

# The headers the webhook reads; the channel adds its own, which are not passed on.
FORWARDED_HEADERS = ("x-github-event", "x-github-delivery", "x-hub-signature-256")
# After the channel drops or cannot be reached, connect again this much later.
RECONNECT_SECONDS = 5.0


def forward(event_data: str, target: str, session: requests.Session) -> int:
    """Post one channel event to the webhook at `target`; return its HTTP status."""
    data = json.loads(event_data)
    # GitHub signs compact JSON; serialised the same way, the bytes match what it signed.
    body = json.dumps(data["body"], separators=(",", ":"), ensure_ascii=False).encode()
    headers = {name: str(data[name]) for name in FORWARDED_HEADERS if name in data}
    headers["content-type"] = "application/json"
    return session.post(target, data=body, headers=headers, timeout=10).status_code


class WebhookProxy:
    def __init__(self, source: str, target: str) -> None:
        self.source = source
        self.target = target
        self.session = requests.Session()

    def relay(self) -> int:
        """Follow the channel until it ends, forwarding each delivery; return how many."""
        forwarded = 0
        with self.session.get(
            self.source, stream=True, headers={"Accept": "text/event-stream"}, timeout=(10, None)
        ) as stream:
            stream.raise_for_status()
            log.info("receiving deliveries through %s", self.source)
            for event in SSEClient(iter(stream)).events():
                if event.event != "message" or not event.data:
                    continue  # "ready" and keep-alive "ping" events carry no delivery
                status = forward(event.data, self.target, self.session)
                log.info("delivery from the proxy channel answered %s", status)
                forwarded += 1
        return forwarded

    def run_forever(self) -> None:
        while True:
            try:
                self.relay()
            except (requests.RequestException, ValueError, KeyError) as error:
                log.warning("webhook proxy channel: %s; connecting again", error)
            time.sleep(RECONNECT_SECONDS)

    def start(self) -> None:
        """Relay in a background thread for as long as the process runs."""
        threading.Thread(target=self.run_forever, name="webhook-proxy", daemon=True).start()
