"""Prometheus metrics, right with any number of web and worker processes.

Three sources make up one scrape of `/metrics` (see `stoplight.web.health`):

- Intake, counted in the web process that answers (prometheus-client, in memory). Several web
  processes on one host (granian workers) share PROMETHEUS_MULTIPROC_DIR, prometheus-client's
  multiprocess mode, and any of them reports the sum. The webhook does no I/O for this.
- Work done by workers (GitHub requests, deferred writes, Slack posts, job latency), added up
  in Redis: workers do I/O anyway, and so any web process reports every worker, wherever
  they run.
- State (each team's light and measures, the lanes' depth), read from Redis at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from github import GithubException
from prometheus_client import Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from redis import Redis
from redis.client import Pipeline

from stoplight.state import keys
from stoplight.state.replies import text

DELIVERIES = Counter(
    "stoplight_deliveries",
    "Webhook deliveries answered, by event and outcome",
    ["event", "outcome"],
)
INTAKE_SECONDS = Histogram(
    "stoplight_intake_seconds",
    "Time to verify, record and enqueue a delivery, until the answer",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)


def count_delivery(event: str, known: bool, outcome: str, seconds: float) -> None:
    """Count a webhook answer and time it: no I/O, two updates in memory."""
    INTAKE_SECONDS.observe(seconds)
    # The header is the sender's to choose: only events the app knows become labels.
    DELIVERIES.labels(event if known or event == "ping" else "other", outcome).inc()


class SharedCounter:
    """A counter every worker process adds to in Redis, and any web process reports."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.key = keys.metric(name)

    def inc(self, redis: Redis, *labels: str, amount: float = 1) -> None:
        redis.hincrbyfloat(self.key, _field(labels), amount)

    def collect(self, redis: Redis) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in _read(redis, self.key):
            family.add_metric(labels, value)
        return family


class SharedGauge(SharedCounter):
    """The last value any worker process saw, kept in Redis."""

    def set(self, redis: Redis, value: float, *labels: str) -> None:
        redis.hset(self.key, _field(labels), value)

    def collect(self, redis: Redis) -> Metric:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in _read(redis, self.key):
            family.add_metric(labels, value)
        return family


class SharedHistogram(SharedCounter):
    """A histogram kept in Redis: a count per bucket, the sum and the count, per label set."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.buckets = [*buckets, float("inf")]

    def observe(self, redis: Redis, value: float, *labels: str) -> None:
        with redis.pipeline(transaction=False) as pipe:
            self.observe_many(pipe, [value], *labels)
            pipe.execute()

    def observe_many(self, pipe: Pipeline, values: Sequence[float], *labels: str) -> None:
        """Add `values` through `pipe`, a command per bucket touched, for the caller to run."""
        if not values:
            return
        counts: dict[float, int] = {}
        for value in values:
            bucket = next(bound for bound in self.buckets if value <= bound)
            counts[bucket] = counts.get(bucket, 0) + 1
        for bucket, count in counts.items():
            pipe.hincrby(self.key, _field((*labels, str(bucket))), count)
        pipe.hincrbyfloat(self.key, _field((*labels, "sum")), sum(values))

    def collect(self, redis: Redis) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        counts: dict[tuple[str, ...], dict[str, float]] = {}
        for fields, value in _read(redis, self.key):
            counts.setdefault(tuple(fields[:-1]), {})[fields[-1]] = value
        for labels, found in sorted(counts.items()):
            total, cumulative = 0.0, []
            for bound in self.buckets:
                total += found.get(str(bound), 0)
                cumulative.append(("+Inf" if bound == float("inf") else str(bound), total))
            family.add_metric(list(labels), cumulative, found.get("sum", 0.0))
        return family


def _field(labels: Iterable[str]) -> str:
    return "\x1f".join(labels)


def _read(redis: Redis, key: str) -> Iterator[tuple[list[str], float]]:
    for field, value in sorted(redis.hgetall(key).items()):
        yield text(field).split("\x1f"), float(value)


GITHUB_REQUESTS = SharedCounter(
    "stoplight_github_requests",
    "Requests to the GitHub API by kind (token, read, write) and outcome",
    ["kind", "outcome"],
)
WRITES_DEFERRED = SharedCounter(
    "stoplight_github_writes_deferred",
    "GitHub writes put off for later: by the pacing budget, or because GitHub throttled",
    ["reason"],
)
RATE_LIMIT_REMAINING = SharedGauge(
    "stoplight_github_rate_limit_remaining",
    "Requests left in the installation's GitHub rate limit, as its last answer said",
    ["installation"],
)
SLACK_POSTS = SharedCounter(
    "stoplight_slack_posts",
    "Slack notices posted or updated, and failures, by outcome",
    ["outcome"],
)
JOB_LATENCY = SharedHistogram(
    "stoplight_job_latency_seconds",
    "Time a delivery or job waited in its lane, from queueing to start",
    ["lane"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
DEAD_LETTERS = SharedCounter(
    "stoplight_deliveries_dead_lettered",
    "Deliveries set aside after failing 3 times (see `stoplight deadletters`), by event",
    ["event"],
)
# Where workers keep them: with the state, except the lanes' own figure, which is written in
# the same round trips as the lanes (on REDIS_QUEUE_URL when that is set).
STATE_METRICS = (
    GITHUB_REQUESTS, WRITES_DEFERRED, RATE_LIMIT_REMAINING, SLACK_POSTS, DEAD_LETTERS
)  # fmt: skip
LANE_METRICS = (JOB_LATENCY,)


@contextmanager
def github_request(redis: Redis, kind: str) -> Iterator[None]:
    """Count one call to GitHub by how it ended."""
    try:
        yield
    except GithubException as error:
        GITHUB_REQUESTS.inc(redis, kind, _github_outcome(error.status))
        raise
    except Exception:
        GITHUB_REQUESTS.inc(redis, kind, "error")
        raise
    GITHUB_REQUESTS.inc(redis, kind, "ok")


def _github_outcome(status: int) -> str:
    if status in (403, 429):
        return "throttled"
    return "not_found" if status == 404 else "error"
