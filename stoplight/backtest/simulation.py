"""The live pipeline on a simulated clock: recorded deliveries go in through intake, the
workers run their jobs, and the scheduled re-evaluations run as the clock passes them.

Everything happens on a scratch Redis started for the run, with no GitHub client and no
Slack settings: the pipeline decides every status, label and notice and sends none, and no
request leaves. What the backtest reports is what the pipeline recorded in that Redis (the
team history of `stoplight.state.history`) and what the simulation saw after each step. (A
benchmark may hand in settings that name a fake GitHub: the pipeline then writes to it, paced
on the simulated clock.)
"""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from redis import Redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from stoplight.backtest.history import Recorded
from stoplight.config.repos import ORG_CONFIG_REPO, RepoConfigs
from stoplight.config.schema import MAX_DURATION, TeamSettings
from stoplight.core.clock import from_timestamp
from stoplight.core.flow import History
from stoplight.core.light import Level
from stoplight.events import intake
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.pipeline import runtime
from stoplight.pipeline.worker import delivery_streams
from stoplight.settings import Settings
from stoplight.state import rebuild
from stoplight.state.history import read_history, retained_for
from stoplight.state.installations import installation_ids
from stoplight.state.replies import scores
from stoplight.state.review_queue import QueueStore
from stoplight.transport.worker import take_job

TeamId = tuple[int, str]  # installation, team key

# The longest window a backtest sums up (`--since` is a duration, a year at most). The scratch
# Redis keeps the team history that long (the live app keeps 90 days), so that every figure
# of the window comes from the pipeline.
MAX_WINDOW = MAX_DURATION


class ConfigSource(Protocol):
    def read_file(self, repo: str, path: str) -> str | None: ...


@dataclass(frozen=True)
class OrgConfig:
    """One `stoplight.yml` standing as every organisation's org-wide file."""

    text: str

    def read_file(self, repo: str, path: str) -> str | None:
        return self.text if repo.endswith(f"/{ORG_CONFIG_REPO}") else None


@dataclass
class SimulatedClock:
    moment: datetime

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        """A wait for the write budget passes on the simulated clock, not the wall's."""
        self.moment += timedelta(seconds=seconds)


@dataclass(frozen=True)
class HeldSpell:
    pull: str
    since: datetime
    until: datetime | None  # None: still held when the run ended
    agent: bool = False  # an agent's PR, held in the agents' lane


@dataclass(frozen=True)
class TeamRun:
    installation_id: int
    settings: TeamSettings
    history: History
    held: tuple[HeldSpell, ...]
    repos: tuple[str, ...]  # owner/name of the repositories whose PRs the team took
    # PRs the history never ends (no close seen) and those of them stale when the run ended.
    open_at_end: int = 0
    stale_at_end: int = 0

    @property
    def key(self) -> str:
        return self.settings.key


@dataclass(frozen=True)
class Run:
    start: datetime  # the first delivery
    end: datetime
    teams: tuple[TeamRun, ...]
    # The lights after each delivery was processed, one entry per delivery.
    lights_after: tuple[dict[TeamId, Level], ...]


@dataclass
class _Observer:
    """What the simulation sees of every team after each step: its light and held lane."""

    redis: Redis
    # pull key -> when it was held, and whether it is an agent's
    held_since: dict[TeamId, dict[str, tuple[datetime, bool]]] = field(default_factory=dict)
    spells: dict[TeamId, list[HeldSpell]] = field(default_factory=dict)

    def look(self, now: datetime) -> dict[TeamId, Level]:
        lights = {}
        for installation_id in installation_ids(self.redis):
            store = QueueStore(self.redis, installation_id)
            for team in store.teams():
                team_id = (installation_id, team)
                light = store.light(team)
                if light is not None:
                    lights[team_id] = light.level
                self._held(team_id, store, now)
        return lights

    def _held(self, team_id: TeamId, store: QueueStore, now: datetime) -> None:
        held = {
            r.key: (r.held_since, r.by_agent)
            for r in store.pulls(store.held_keys(team_id[1]))
            if r.held_since is not None
        }
        before = self.held_since.get(team_id, {})
        for pull, (since, agent) in before.items():
            if pull not in held:
                self.spells.setdefault(team_id, []).append(HeldSpell(pull, since, now, agent))
        self.held_since[team_id] = held

    def spells_of(self, team_id: TeamId) -> tuple[HeldSpell, ...]:
        still = [
            HeldSpell(pull, since, None, agent)
            for pull, (since, agent) in self.held_since.get(team_id, {}).items()
        ]
        return tuple(sorted([*self.spells.get(team_id, []), *still], key=lambda h: h.since))


class Simulation:
    """One run of the pipeline over recorded deliveries, on `redis` (a scratch server).

    `settings` default to none of GitHub's or Slack's: nothing is sent.
    """

    def __init__(
        self, redis: Redis, data_dir: Path, start: datetime, settings: Settings | None = None
    ) -> None:
        self.redis = redis
        self.clock = SimulatedClock(start)
        settings = settings or Settings.model_construct(redis_url=None, data_dir=data_dir)
        self.rt = runtime.Runtime.create(settings, redis, self.clock, sleep=self.clock.sleep)
        rebuild.mark_scratch(redis, start)
        self.observer = _Observer(redis)
        self._numbers = itertools.count(1)
        self.streams = delivery_streams(self.rt, "backtest")
        self.streams.ensure_groups()

    def load_configs(self, repos: Iterable[tuple[int, str]], source: ConfigSource) -> None:
        """Cache each repository's configuration as a worker would have read it."""
        for installation_id, repo in sorted(set(repos)):
            RepoConfigs(self.redis, installation_id, source).reload(repo)

    def feed(self, recorded: Recorded) -> dict[TeamId, Level]:
        """Process one delivery at its moment (after every re-evaluation due before it)."""
        self.run_until(recorded.at)
        delivery_id = recorded.delivery or f"backtest-{next(self._numbers)}"
        body = json.dumps(recorded.payload).encode()
        intake.accept(
            self.rt.lanes,
            delivery_id,
            recorded.event,
            body,
            installation_id=intake.installation_of(recorded.payload),
            now=self.clock.now(),
        )
        return self._run_jobs()

    def run_until(self, moment: datetime) -> None:
        """Move the clock to `moment`, running each scheduled job at the moment it is due."""
        ran_at: datetime | None = None
        while (due := self._next_scheduled()) is not None:
            if ran_at is not None and due <= ran_at:
                # RQ schedules in whole seconds: a job put back into the second just run (its
                # moment a fraction later) runs in the next one, as RQ's scheduler would run it.
                due = ran_at + timedelta(seconds=1)
            if due > moment:
                break
            self.clock.moment = max(self.clock.moment, due)
            self._release_due()
            self._run_jobs()
            ran_at = due
        self.clock.moment = max(self.clock.moment, moment)

    def _next_scheduled(self) -> datetime | None:
        found = []
        for lane in self.rt.lanes.queues:
            found += scores(self.redis, ScheduledJobRegistry(queue=lane).key, 0, 0)
        return from_timestamp(min(found)) if found else None

    def _release_due(self) -> None:
        # RQ's scheduler compares with the wall clock; the simulation moves its own.
        for lane in self.rt.lanes.queues:
            registry = ScheduledJobRegistry(queue=lane)
            job_ids = registry.get_jobs_to_schedule(int(self.clock.now().timestamp()))
            for job in Job.fetch_many(job_ids, connection=self.redis):
                if job is not None:
                    registry.remove(job)
                    lane.enqueue_job(job)

    def _run_jobs(self) -> dict[TeamId, Level]:
        """Apply the queued deliveries, then run every queued job and the jobs they queue, as
        the app's workers take them.

        The jobs run as RQ runs them (`Job.perform`: the job is current, so the work it sets
        off follows its lane) but without a worker's bookkeeping of heartbeats, registries
        and retries, which makes up most of the time of a job: a job that fails stops the
        backtest rather than wait for a retry on the wall clock.
        """
        lanes = self.rt.lanes.queues
        with runtime.installed(self.rt):
            self.streams.apply_available()
            while (taken := take_job(self.redis, lanes)) is not None:
                job, lane = taken
                self.redis.lrem(lane.intermediate_queue_key, 1, job.id)
                job.perform()
        return self.observer.look(self.clock.now())

    def finish(self, end: datetime, start: datetime) -> tuple[TeamRun, ...]:
        self.run_until(end)
        self.observer.look(self.clock.now())
        runs = []
        for installation_id in installation_ids(self.redis):
            store = QueueStore(self.redis, installation_id)
            configs = RepoConfigs(self.redis, installation_id)
            repos: dict[str, list[str]] = {}
            for repo in sorted(store.stored_repositories().values()):
                repos.setdefault(configs.assign_team(repo).key, []).append(repo)
            for team in sorted(store.teams()):
                runs.append(
                    TeamRun(
                        installation_id=installation_id,
                        settings=configs.team(team),
                        history=read_history(self.redis, installation_id, team, start, end),
                        held=self.observer.spells_of((installation_id, team)),
                        repos=tuple(repos.get(team, ())),
                        open_at_end=len(store.open_pulls(team)),
                        stale_at_end=store.stale_count(team),
                    )
                )
        return tuple(runs)


def repositories_of(deliveries: Iterable[Recorded]) -> set[tuple[int, str]]:
    """(installation, owner/name) of every repository the deliveries name."""
    found = set()
    for recorded in deliveries:
        repository = recorded.payload.get("repository")
        installation_id = intake.installation_of(recorded.payload)
        if isinstance(repository, dict) and isinstance(repository.get("full_name"), str):
            found.add((installation_id, repository["full_name"]))
    return found


def simulate(
    deliveries: Sequence[Recorded],
    config: ConfigSource | None = None,
    *,
    end: datetime | None = None,
) -> Run:
    """Run `deliveries` (in time order) through the pipeline until `end` (the last one)."""
    if not deliveries:
        raise ValueError("no deliveries to replay")
    start = deliveries[0].at
    end = max(end or deliveries[-1].at, deliveries[-1].at)
    with scratch_redis() as (redis, data_dir), _quiet_effects(), retained_for(MAX_WINDOW):
        simulation = Simulation(redis, data_dir, start)
        if config is not None:
            simulation.load_configs(repositories_of(deliveries), config)
        lights = tuple(simulation.feed(recorded) for recorded in deliveries)
        teams = simulation.finish(end, start)
    return Run(start=start, end=end, teams=teams, lights_after=lights)


@contextmanager
def _quiet_effects() -> Iterator[None]:
    """The simulation has no GitHub client on purpose: the pipeline's warning that effects
    are skipped for want of one says nothing here, once per evaluation."""
    pipeline_log = logging.getLogger("stoplight.pipeline.fanout")
    level = pipeline_log.level
    pipeline_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pipeline_log.setLevel(level)


@contextmanager
def scratch_redis() -> Iterator[tuple[Redis, Path]]:
    """A Redis server of the run's own, in a temporary directory, gone afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="stoplight-backtest-") as directory,
        EmbeddedRedis(Path(directory) / "redis", appendonly=False) as server,
        Redis.from_url(server.url) as redis,
    ):
        yield redis, Path(directory)
