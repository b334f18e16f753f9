"""The web app: webhook intake, the setup page, team pages, health."""

from __future__ import annotations

from flask import Flask
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from rq import Queue

from stoplight.runtime import QUEUE_NAME
from stoplight.settings import Settings

# GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub.
MAX_BODY_BYTES = 25 * 1024 * 1024


def create_app(settings: Settings | None = None, redis: Redis | None = None) -> Flask:
    from stoplight.web import pages, setup, webhooks

    settings = settings or Settings()
    if redis is None and settings.redis_url:
        redis = web_redis(settings.redis_url)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["stoplight"] = WebContext(settings, redis)
    app.register_blueprint(webhooks.blueprint(settings.webhook_path))
    app.register_blueprint(setup.bp)
    app.register_blueprint(pages.bp)
    return app


def web_redis(url: str) -> Redis:
    """A connection that gives up fast: GitHub waits 10 s, and a 503 lets it redeliver."""
    return Redis.from_url(
        url,
        socket_connect_timeout=1,
        socket_timeout=3,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
    )


class WebContext:
    def __init__(self, settings: Settings, redis: Redis | None) -> None:
        self.settings = settings
        self.redis = redis
        self.queue = Queue(QUEUE_NAME, connection=redis) if redis is not None else None
