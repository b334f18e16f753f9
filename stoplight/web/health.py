"""For operators: /healthz (the process answers), /readyz (it can work), /metrics (Prometheus).

/metrics names teams and their queues, so it is served only with METRICS_PASSWORD set, behind
HTTP basic auth; without one it is a 404 like any page an outsider may not see.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from stoplight.config.repos import RepoConfigs
from stoplight.metrics import LANE_METRICS, STATE_METRICS
from stoplight.ops.healthcheck import HEARTBEAT_WINDOW
from stoplight.settings import Settings
from stoplight.state.installations import installation_ids
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import load_team_view
from stoplight.transport.lanes import Lanes

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    return {"status": "ok"}, 200


@bp.get("/readyz")
def readyz() -> tuple[dict[str, str | int], int]:
    context = current_app.extensions["stoplight"]
    if context.redis is None or context.lanes is None:
        return {"status": "unavailable", "reason": "no Redis configured"}, 503
    try:
        context.redis.ping()  # the state's Redis; RQ's registry of workers is on the lanes'
        workers = Worker.all(connection=context.lanes.redis)
    except RedisError as error:
        # The error names Redis's host and port: for the log, not for whoever asks.
        log.info("readyz: Redis does not answer: %s", error)
        return {"status": "unavailable", "reason": "Redis does not answer"}, 503
    now = context.clock.now()
    alive = [
        worker
        for worker in workers
        if worker.last_heartbeat is not None and now - worker.last_heartbeat <= HEARTBEAT_WINDOW
    ]
    if not alive:
        reason = "no worker heartbeat in the last minute: is `stoplight worker` running?"
        return {"status": "unavailable", "reason": reason}, 503
    return {"status": "ready", "workers": len(alive)}, 200


@bp.get("/metrics")
def metrics() -> Response:
    context = current_app.extensions["stoplight"]
    if context.settings.metrics_password is None:
        abort(404)
    if not _may_scrape(context.settings):
        return Response(
            "metrics need a password\n",
            401,
            {"WWW-Authenticate": 'Basic realm="stoplight metrics"'},
            mimetype="text/plain",
        )
    try:
        text = generate_latest(registry_for_scrape(context.redis, context.lanes, context.clock.now))
    except RedisError:  # what this process counted is still worth reporting
        text = generate_latest(registry_for_scrape(None, None, context.clock.now))
    return Response(text, 200, {"Content-Type": CONTENT_TYPE_LATEST})


def _may_scrape(settings: Settings) -> bool:
    assert settings.metrics_password is not None
    given = request.authorization
    if given is None or given.type != "basic":
        return False
    wanted = f"{settings.metrics_username}\x1f{settings.metrics_password.get_secret_value()}"
    return hmac.compare_digest(f"{given.username}\x1f{given.password}".encode(), wanted.encode())


def registry_for_scrape(
    redis: Redis | None, lanes: Lanes | None, now: Callable[[], datetime]
) -> CollectorRegistry:
    """This process's counts (or, in multiprocess mode, every web process's), and Redis's."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROCESS_DIR):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    if redis is not None and lanes is not None:
        registry.register(StateCollector(redis, lanes, now))
    return registry


class _ThisProcess(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class StateCollector(Collector):
    """Each team's light and measures, each lane's depth and the workers' counts, from Redis."""

    def __init__(self, redis: Redis, lanes: Lanes, now: Callable[[], datetime]) -> None:
        self.redis = redis
        self.lanes = lanes
        self.now = now

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "stoplight_lane_depth", "Deliveries and jobs waiting in a lane", labels=["lane"]
        )
        lanes = self.lanes
        deliveries = lanes.waiting_deliveries()
        for lane in lanes.queues:
            depth.add_metric([lane.name], lane.count + deliveries[lane.name])
        # Read everything before yielding anything: Redis failing halfway fails the whole.
        found = [
            depth,
            *self._teams(),
            *(shared.collect(self.redis) for shared in STATE_METRICS),
            *(shared.collect(lanes.redis) for shared in LANE_METRICS),
        ]
        yield from found

    def _teams(self) -> list[Metric]:
        labels = ["installation", "team", "name"]
        light = GaugeMetricFamily(
            "stoplight_team_light", "The team's light: 0 green, 1 yellow, 2 red", labels=labels
        )
        waiting = GaugeMetricFamily(
            "stoplight_team_waiting", "PRs waiting for review", labels=labels
        )
        oldest = GaugeMetricFamily(
            "stoplight_team_oldest_wait_seconds",
            "How long the longest-waiting PR has waited, counting working time only",
            labels=labels,
        )
        lines = GaugeMetricFamily(
            "stoplight_team_waiting_lines", "Changed lines waiting for review", labels=labels
        )
        now = self.now()
        for installation_id in installation_ids(self.redis):
            for team in sorted(QueueStore(self.redis, installation_id).teams()):
                settings = RepoConfigs(self.redis, installation_id).team(team)
                view = load_team_view(self.redis, installation_id, team, now, settings)
                if view is None:
                    continue
                values = [str(installation_id), view.key, view.name]
                if view.level is not None:
                    light.add_metric(values, int(view.level))
                waiting.add_metric(values, view.measures.waiting)
                oldest.add_metric(values, view.oldest.total_seconds())
                lines.add_metric(values, view.measures.lines)
        return [light, waiting, oldest, lines]
