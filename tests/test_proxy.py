"""WEBHOOK_PROXY_URL: deliveries streamed by a smee.io-style channel reach the webhook intact."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from stoplight.ops.proxy import WebhookProxy
from stoplight.state import keys
from stoplight.web import create_app
from tests.conftest import WEBHOOK_SECRET
from tests.fakes import Pull, sign
from tests.test_end_to_end import free_port


def channel_event(payload: dict, delivery: str, signature: str | None = None) -> str:
    """One delivery as the channel streams it: GitHub's headers and the parsed body."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    data = {
        "x-github-event": "pull_request",
        "x-github-delivery": delivery,
        "x-hub-signature-256": signature or sign(WEBHOOK_SECRET, body),
        "host": "smee.example",
        "body": payload,
        "query": {},
        "timestamp": 1764000000000,
    }
    return f"id: {delivery}\ndata: {json.dumps(data)}\n\n"


@pytest.fixture
def webhook(settings, redis) -> Iterator[str]:
    # The app in this process, on the test's Redis; werkzeug's server is enough for one relay.
    port = free_port()
    server = make_server("127.0.0.1", port, create_app(settings, redis), threaded=True)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{port}{settings.webhook_path}"
    server.shutdown()
    thread.join()


def test_channel_deliveries_reach_the_webhook_with_their_signature_intact(
    httpserver, webhook, redis, clock
):
    pull = Pull(title="Zoë's naïve café ☕")  # bytes that only survive exact serialisation
    payload = pull.event("opened", clock.now())[1]
    stream = (
        "event: ready\ndata: {}\n\n"
        + ": keep-alive comment\n\n"
        + channel_event(payload, "d-through-proxy")
        + "event: ping\ndata: {}\n\n"
        + channel_event(payload, "d-forged", signature="sha256=" + "0" * 64)
    )
    httpserver.expect_request("/channel").respond_with_data(
        stream, content_type="text/event-stream"
    )

    forwarded = WebhookProxy(httpserver.url_for("/channel"), webhook).relay()

    assert forwarded == 2
    assert redis.hget(keys.delivery("d-through-proxy"), "event") == b"pull_request"
    assert not redis.exists(keys.delivery("d-forged"))  # the webhook's own check still applies
