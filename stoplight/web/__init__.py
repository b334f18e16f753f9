"""The web app: webhook intake, the setup page, team pages, health."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from flask import Flask
from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from stoplight.core.clock import Clock, SystemClock
from stoplight.pipeline.lanes import Lanes
from stoplight.pipeline.runtime import JOB_RETRY, REDELIVER_TIMEOUT_SECONDS
from stoplight.settings import Settings

log = logging.getLogger(__name__)

# GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub.
MAX_BODY_BYTES = 25 * 1024 * 1024
# Deliveries GitHub sent shortly before the first 503 may have failed too.
OUTAGE_MARGIN = timedelta(minutes=1)


def create_app(
    settings: Settings | None = None, redis: Redis | None = None, clock: Clock | None = None
) -> Flask:
    from stoplight.web import auth, health, pages, setup, webhooks

    settings = settings or Settings()
    if redis is None and settings.redis_url:
        redis = web_redis(settings.redis_url)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["stoplight"] = WebContext(settings, redis, clock or SystemClock())
    app.register_blueprint(webhooks.blueprint(settings.webhook_path))
    app.register_blueprint(setup.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(pages.bp)
    if settings.configured:
        auth.init_app(app, settings, redis)
        if settings.metrics_password is None:
            log.info("/metrics is off: set METRICS_PASSWORD to serve it behind basic auth")
    elif redis is not None:
        link = setup.setup_link(settings, redis)
        log.warning("Stoplight is not configured: open %s to register the GitHub App", link)
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
    def __init__(self, settings: Settings, redis: Redis | None, clock: Clock) -> None:
        self.settings = settings
        self.redis = redis
        self.clock = clock
        self.lanes = Lanes.on(redis) if redis is not None else None
        # Kept in the process, not in Redis: Redis is what is down.
        self._outage_since: datetime | None = None
        self._outage_lock = threading.Lock()

    def storage_failed(self) -> None:
        """A delivery was answered 503: remember when the outage began."""
        with self._outage_lock:
            if self._outage_since is None:
                self._outage_since = self.clock.now()

    def storage_works(self) -> None:
        """Redis answers again: have the deliveries failed meanwhile sent again."""
        if self._outage_since is None:
            return
        with self._outage_lock:
            if self._outage_since is None or self.lanes is None:
                return
            start = self._outage_since - OUTAGE_MARGIN
            self.lanes.shared.enqueue_call(
                "stoplight.jobs.redeliver_since",
                args=(start.timestamp(),),
                job_id=f"redeliver-{int(start.timestamp())}",
                description=f"redeliver_since({start.isoformat()})",
                retry=JOB_RETRY,
                timeout=REDELIVER_TIMEOUT_SECONDS,
            )
            self._outage_since = None  # only once the run is queued
        log.warning("storage is back: failed deliveries since %s will be redelivered", start)
