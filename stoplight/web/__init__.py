"""The web app's factory: webhook intake, setup, sign-in, pages, health and metrics."""

from __future__ import annotations

import logging

from flask import Flask
from redis import Redis

from stoplight.core.clock import Clock, SystemClock
from stoplight.settings import Settings
from stoplight.state.connection import WEB, connect
from stoplight.transport.lanes import Lanes
from stoplight.web.limits import MAX_BODY_BYTES
from stoplight.web.outage import StorageOutage

__all__ = ["MAX_BODY_BYTES", "WebContext", "create_app", "web_redis"]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    redis: Redis | None = None,
    clock: Clock | None = None,
    queue: Redis | None = None,
) -> Flask:
    """The app on the state's Redis (`redis`) and the lanes' (`queue`, which is `redis`
    unless REDIS_QUEUE_URL names another); both from the settings when not given."""
    from stoplight.web import (
        auth,
        headers,
        health,
        pages,
        pull_signal,
        setup,
        slack_link,
        slack_requests,
        webhooks,
    )

    settings = settings or Settings()
    if redis is None and settings.redis_url:
        redis = web_redis(settings.redis_url)
    if queue is None:
        queue = web_redis(settings.redis_queue_url) if settings.redis_queue_url else redis
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    context = WebContext(settings, redis, clock or SystemClock(), queue)
    app.extensions["stoplight"] = context
    webhooks.install(app, context, settings.webhook_path)
    headers.install(app, settings)
    app.register_blueprint(setup.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(pull_signal.bp)
    slack_requests.install(app, settings.slack_signing_secret)
    if settings.configured:
        auth.init_app(app, settings, redis)
        slack_link.install(app)
        if settings.metrics_password is None:
            log.info("/metrics is off: set METRICS_PASSWORD to serve it behind basic auth")
    elif redis is not None:
        link = setup.setup_link(settings, redis)
        log.warning("Stoplight is not configured: open %s to register the GitHub App", link)
    return app


def web_redis(url: str) -> Redis:
    """A connection that gives up fast: GitHub waits 10 s, and a 503 lets it redeliver."""
    return connect(url, WEB)


class WebContext:
    """What every request of the web app shares: settings, the state's Redis, the clock, the
    job lanes (on the lanes' Redis)."""

    def __init__(
        self, settings: Settings, redis: Redis | None, clock: Clock, queue: Redis | None
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.clock = clock
        self.lanes = Lanes.on(queue) if queue is not None else None
        self.outage = StorageOutage(clock, self.lanes)
