"""An organisation's working day through the real pipeline, against a fake GitHub: what the
app spends of GitHub's API, and how soon a big team's PRs all show a new light.

    python -m benchmarks.org_day [--seed 7] [--repos 30] [--pulls 300] [--big-team 200]
                                 [--write DAY.jsonl] [--from DAY.jsonl --config DAY.yml]

The day is seeded and synthetic: an installation with `--repos` repositories, an org-wide
`.github/stoplight.yml` with six teams, and `--pulls` PRs opened over the day before and the
day itself (Monday and Tuesday, working hours in Berlin), each with the deliveries GitHub
sends for it: opened (some as drafts, then ready for review), review requests, pushes,
reviews (approve, request changes, comment), re-requests after changes, labels, closes and
merges (with the push to the default branch), and bots' PRs that no queue counts. `--write`
saves the deliveries in the format `stoplight replay` and `stoplight backtest --from` read
(and the configuration beside it, `.yml`), `--from` replays such a file.

The deliveries go through intake, the jobs, the effects and the GitHub client with its
pacing, on a scratch Redis and a simulated clock that moves through the days (so pacing,
timed re-evaluations and token expiry behave as over a real day, in a minute of wall time),
against the fake GitHub of tests/github_server.py on 127.0.0.1. Only Tuesday counts: Monday
fills the queues, so the day starts with PRs open, as a real one does.

Then a second installation with one team of `--big-team` open PRs (opened over the two days
before, green throughout) gets one more PR, which turns the light yellow: the time from that
change to the last PR's new status, beside the bound GitHub's one write a second implies.

Every figure is printed with its target and whether it is met.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.org_history import iso
from stoplight.backtest.history import Recorded, read_recorded
from stoplight.backtest.simulation import Simulation, scratch_redis
from stoplight.clients.github import TOKEN_MARGIN
from stoplight.settings import Settings
from stoplight.state import keys
from tests.fakes import Pull, Repo, throwaway_private_key
from tests.github_server import FakeGitHubState, serve_fake_github

ORG = "acme"
INSTALLATION = 91
BIG_INSTALLATION = 92
MONDAY = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
DAY = MONDAY + timedelta(days=1)  # the day that counts
TEAMS = ("payments", "storefront", "platform", "data", "mobile", "growth")
BOTS = ("dependabot[bot]", "renovate[bot]")
OTHER_LABELS = ("needs-qa", "bug", "tech-debt")
EXPEDITE = "stoplight:expedite"
CONFIG_PATH = ".github/stoplight.yml"
# What each request the fake GitHub answers is, by its route.
KINDS = {
    "token": "token",
    "contents": "config read",
    "pull_files": "file list read",
    "combined_status": "status read",
    "issue_labels": "label read",
    "create_status": "status write",
    "add_labels": "label write",
    "remove_label": "label write",
    "create_label": "label creation",
    "unknown": "unanswered (404)",
}
WRITES = frozenset({"create_status", "add_labels", "remove_label", "create_label"})

REQUESTS_PER_DELIVERY = 1.2
WRITES_PER_MINUTE = 60
GITHUB_WRITE_GAP = timedelta(seconds=1)


# Each team takes about 30 PRs a day, reviewed within three hours or so: by Little's law
# about ten wait at a time, so a queue of 8 calls for yellow, 14 for red.
def org_config() -> str:
    teams = "".join(
        f'  - name: {team}\n    repos: ["{team}-*"]\n'
        f"    thresholds:\n      yellow: {{waiting: 8, oldest: 8h}}\n"
        f"      red: {{waiting: 14, oldest: 16h}}\n"
        for team in TEAMS
    )
    return (
        f"teams:\n{teams}"
        "working_hours:\n  timezone: Europe/Berlin\n"
        'size:\n  exclude: ["*.lock", "package-lock.json"]\n'
        f"ignore_authors: {json.dumps(list(BOTS))}\n"
    )


def big_team_config(pulls: int) -> str:
    """One team whose light turns yellow with its `pulls`-th waiting PR, and on nothing else."""
    return (
        'teams:\n  - name: everyone\n    repos: ["*"]\n    thresholds:\n'
        f"      yellow: {{waiting: {pulls}, oldest: null, lines: null}}\n"
        f"      red: {{waiting: {pulls * 2}, oldest: null, lines: null}}\n"
    )


@dataclass(frozen=True)
class Step:
    at: datetime
    kind: str  # open, ready, request, push, review, label, close
    value: Any = None


@dataclass
class PullPlan:
    """A PR's life on the two days, as steps; rendered to deliveries in time order."""

    pull: Pull
    opened: datetime
    steps: list[Step] = field(default_factory=list)

    def deliveries(self, end: datetime) -> list[Recorded]:
        found = []
        for step in sorted(self.steps, key=lambda s: s.at):
            if step.at >= end:
                break
            found += self._render(step)
        return found

    def _render(self, step: Step) -> list[Recorded]:
        pull, at = self.pull, step.at
        if step.kind == "open":  # the branch was pushed just before
            pushed = _branch_push(pull, at - timedelta(minutes=1), created=True)
            return [
                _recorded(at - timedelta(minutes=1), pushed),
                _recorded(at, pull.event("opened", at)),
            ]
        if step.kind == "ready":
            pull.draft = False
            return [_recorded(at, pull.event("ready_for_review", at))]
        if step.kind == "request":
            pull.reviewers = [*pull.reviewers, step.value]
            asked = {"login": step.value, "type": "User"}
            return [_recorded(at, pull.event("review_requested", at, requested_reviewer=asked))]
        if step.kind == "push":
            pull.head_sha, grown = step.value
            pull.additions += grown
            pull.deletions += grown // 4
            pushed = _branch_push(pull, at, created=False)
            return [_recorded(at, pushed), _recorded(at, pull.event("synchronize", at))]
        if step.kind == "review":
            who, verdict = step.value
            pull.reviewers = [login for login in pull.reviewers if login != who]
            return [_recorded(at, pull.review(who, verdict, at))]
        if step.kind == "label":
            pull.labels = [*pull.labels, step.value]
            return [_recorded(at, pull.event("labeled", at, label={"name": step.value}))]
        pull.state = "closed"
        name, payload = pull.event("closed", at)
        payload["pull_request"]["merged"] = step.value
        closed = [_recorded(at, (name, payload))]
        if step.value:  # a merge pushes to the default branch
            closed.append(_recorded(at, _merge_push(pull, at)))
        return closed


def _recorded(at: datetime, event: tuple[str, dict[str, Any]]) -> Recorded:
    return Recorded(at, event[0], event[1])


def _merge_push(pull: Pull, at: datetime) -> tuple[str, dict[str, Any]]:
    merged = sha(pull.repo.full_name, pull.number, "merge")
    return _push(pull, at, "refs/heads/main", merged, created=False)


def _branch_push(pull: Pull, at: datetime, *, created: bool) -> tuple[str, dict[str, Any]]:
    """The push to a PR's branch that GitHub delivers beside `opened` or `synchronize`."""
    return _push(pull, at, f"refs/heads/topic-{pull.number}", pull.head_sha, created=created)


def _push(
    pull: Pull, at: datetime, ref: str, after: str, *, created: bool
) -> tuple[str, dict[str, Any]]:
    payload: dict[str, Any] = {**pull.repo.base(), "ref": ref, "after": after, "created": created}
    payload["repository"] = {**payload["repository"], "default_branch": "main"}
    payload["head_commit"] = {"id": after, "timestamp": iso(at)}
    payload["commits"] = [{"added": [], "modified": [f"src/change_{pull.number}.py"]}]
    return "push", payload


def sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def org_day(seed: int = 7, repos: int = 30, pulls: int = 300) -> list[Recorded]:
    """The deliveries of Monday and Tuesday, in time order."""
    rng = random.Random(seed)
    repositories = [
        Repo(id=7000 + n, full_name=f"{ORG}/{TEAMS[n % len(TEAMS)]}-{n // len(TEAMS)}",
             installation_id=INSTALLATION)
        for n in range(repos)
    ]  # fmt: skip
    numbers: Counter[str] = Counter()
    plans = []
    for _ in range(pulls):
        repo = rng.choice(repositories)
        numbers[repo.full_name] += 1
        team = repo.name.rpartition("-")[0]
        plans.append(_plan(rng, repo, numbers[repo.full_name], team))
    end = DAY + timedelta(days=1)
    deliveries = [recorded for plan in plans for recorded in plan.deliveries(end)]
    return sorted(deliveries, key=lambda recorded: recorded.at)


def _members(team: str) -> list[str]:
    return [f"{team}-dev{n}" for n in range(8)]


def _plan(rng: random.Random, repo: Repo, number: int, team: str) -> PullPlan:
    bot = rng.random() < 0.1
    opened = _moment(rng, night=bot)
    size = max(int(rng.lognormvariate(4.2, 1.1)), 1)
    pull = Pull(
        repo=repo,
        number=number,
        head_sha=sha(repo.full_name, number, 0),
        additions=(size * 3) // 4 or 1,
        deletions=size // 4,
        author=rng.choice(BOTS) if bot else rng.choice(_members(team)),
        author_type="Bot" if bot else "User",
        labels=["dependencies"] if bot else [],
        title=f"Change {number} to {repo.name}",
    )
    plan = PullPlan(pull, opened, [Step(opened, "open")])
    if bot:
        _bot_life(rng, plan)
    else:
        _human_life(rng, plan, [m for m in _members(team) if m != pull.author])
    return plan


def _moment(rng: random.Random, *, night: bool = False) -> datetime:
    """A moment of Monday (a third of the PRs) or Tuesday: working hours in Berlin (08-17 UTC),
    bots at night."""
    day = MONDAY if rng.random() < 1 / 3 else DAY
    hours = rng.uniform(3, 6) if night else rng.uniform(8, 17)
    return (day + timedelta(hours=hours)).replace(microsecond=0)


def _later(rng: random.Random, at: datetime, low: float, high: float) -> datetime:
    return (at + timedelta(hours=rng.uniform(low, high))).replace(microsecond=0)


def _bot_life(rng: random.Random, plan: PullPlan) -> None:
    at = plan.opened
    if rng.random() < 0.3:  # rebased on main
        at = _later(rng, at, 0.5, 4)
        plan.steps.append(Step(at, "push", (sha(plan.pull.head_sha, "rebase"), 0)))
    if rng.random() < 0.7:
        plan.steps.append(Step(_later(rng, at, 1, 8), "close", True))


def _human_life(rng: random.Random, plan: PullPlan, reviewers: list[str]) -> None:
    pull, steps = plan.pull, plan.steps
    ready = plan.opened
    if rng.random() < 0.15:
        pull.draft = True
        ready = _later(rng, plan.opened, 0.3, 5)
        steps.append(Step(ready, "ready"))
    asked = rng.sample(reviewers, rng.choice((1, 1, 2)))
    requested = _later(rng, ready, 0.01, 0.2)
    steps += [Step(requested, "request", login) for login in asked]
    if rng.random() < 0.1:
        steps.append(Step(_later(rng, plan.opened, 0, 1), "label", rng.choice(OTHER_LABELS)))
    if rng.random() < 0.03:
        steps.append(Step(_later(rng, plan.opened, 0, 0.5), "label", EXPEDITE))
    heads = 0

    def push(at: datetime) -> None:
        nonlocal heads
        heads += 1
        grown = int(rng.uniform(2, 60))
        steps.append(Step(at, "push", (sha(pull.repo.full_name, pull.number, heads), grown)))

    at = requested
    for _ in range(rng.choice((0, 0, 1, 2))):  # pushes before anyone looks
        at = _later(rng, at, 0.1, 1.5)
        push(at)
    for _ in range(4):  # review rounds
        at = _later(rng, at, 0.2, 0.5) + timedelta(hours=rng.expovariate(1 / 2.5))
        reviewer = rng.choice(asked)
        verdict = rng.choices(("approved", "changes_requested", "commented"), (55, 25, 20))[0]
        steps.append(Step(at, "review", (reviewer, verdict)))
        if verdict != "approved":  # replies in the review's threads: each is a review too
            for _ in range(rng.choice((0, 1, 2, 3))):
                at = _later(rng, at, 0.02, 0.5)
                who = rng.choice((reviewer, pull.author))
                steps.append(Step(at, "review", (who, "commented")))
        if verdict == "approved":
            if rng.random() < 0.9:
                steps.append(Step(_later(rng, at, 0.05, 3), "close", True))
            return
        if verdict == "changes_requested":
            for _ in range(rng.choice((1, 1, 2))):
                at = _later(rng, at, 0.2, 3)
                push(at)
            at = _later(rng, at, 0, 0.05)
            steps.append(Step(at, "request", reviewer))
    if rng.random() < 0.3:
        steps.append(Step(_later(rng, at, 0.5, 6), "close", False))


def big_team(pulls: int = 200) -> list[Recorded]:
    """`pulls` - 1 PRs opened over two days (green throughout), then one more on Tuesday at
    10:00 UTC, which turns the team yellow."""
    repositories = [
        Repo(id=9000 + n, full_name=f"{ORG}-big/service-{n}", installation_id=BIG_INSTALLATION)
        for n in range(10)
    ]
    spacing = timedelta(hours=48) / pulls
    found = []
    for n in range(pulls):
        repo = repositories[n % len(repositories)]
        pull = Pull(repo=repo, number=n + 1, head_sha=sha(repo.full_name, n), author=f"dev{n % 40}")
        opened = DAY + timedelta(hours=10) - spacing * (pulls - 1 - n)
        found.append(_recorded(opened, pull.event("opened", opened)))
    return found


# What the fake GitHub needs to answer the reads a worker makes.
def pull_files(payload: dict[str, Any]) -> list[tuple[str, int, int]]:
    """A PR's files, made up from its size: some PRs also change a lock file."""
    pull = payload["pull_request"]
    added, deleted = pull.get("additions") or 0, pull.get("deletions") or 0
    files = [("src/app.py", added, deleted)]
    if pull["number"] % 4 == 0:
        files.append(("package-lock.json", 120, 80))
    return files


@dataclass
class Replay:
    deliveries: Counter[str]  # counted deliveries by event.action
    echoes: int  # of those, GitHub's deliveries of the app's own label writes
    requests: list[tuple[datetime, str, str]]
    writes: list[tuple[str, str, Any]]
    light_changes: Counter[str]
    seconds: float  # wall time of the replay

    @property
    def delivered(self) -> int:
        return sum(self.deliveries.values())


def replay(
    deliveries: list[Recorded],
    config: str,
    *,
    counted_from: datetime,
    until: datetime,
    installation_id: int,
) -> Replay:
    """Feed the deliveries through the pipeline against the fake GitHub until `until`, with
    the `labeled` and `unlabeled` deliveries GitHub sends for the app's own label writes."""
    started = time.perf_counter()
    owner = deliveries[0].payload["repository"]["full_name"].partition("/")[0]
    with _pipeline(deliveries[0].at) as (simulation, github):
        github.files[(f"{owner}/.github", CONFIG_PATH)] = config
        tokens = TokenExpiry(simulation, github, installation_id)
        echoes = Echoes(github)
        lights: dict[tuple[int, str], Any] = {}
        changes: Counter[str] = Counter()
        counted: Counter[str] = Counter()
        echoed = 0
        pending = list(reversed(deliveries))
        while pending:
            recorded = pending.pop()
            if recorded.event.startswith("pull_request"):
                echoes.saw(recorded.payload)
                pull = recorded.payload["pull_request"]
                key = (recorded.payload["repository"]["full_name"], pull["number"])
                github.pull_files[key] = pull_files(recorded.payload)
            tokens.expire_if_due()
            after = simulation.feed(recorded)
            if recorded.at >= counted_from:
                counted[f"{recorded.event}.{recorded.payload.get('action', '')}".rstrip(".")] += 1
                echoed += recorded.delivery is not None and recorded.delivery.startswith("echo")
                for team, level in after.items():
                    changes[team[1]] += team in lights and lights[team] != level
            lights = after
            pending += reversed(echoes.since_last(simulation.clock.now()))
        tokens.expire_if_due()
        simulation.run_until(until)
        requests = [r for r in github.requests if r[0] >= counted_from]
        writes = list(github.writes)
    return Replay(counted, echoed, requests, writes, +changes, time.perf_counter() - started)


@dataclass
class Echoes:
    """GitHub delivers `labeled` / `unlabeled` for every label the app adds or removes."""

    github: FakeGitHubState
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # issue path -> payload
    seen: int = 0
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def saw(self, payload: dict[str, Any]) -> None:
        pull = payload["pull_request"]
        self.latest[f"/repos/{payload['repository']['full_name']}/issues/{pull['number']}"] = (
            payload
        )

    def since_last(self, now: datetime) -> list[Recorded]:
        found = []
        for method, path, body in self.github.writes[self.seen :]:
            issue, _, removed = path.partition("/labels/")
            issue = issue.removesuffix("/labels")
            if "/issues/" not in path or issue not in self.latest:
                continue
            names = [removed] if method == "DELETE" else body
            action = "unlabeled" if method == "DELETE" else "labeled"
            found += [self._echo(issue, action, name, now) for name in names]
        self.seen = len(self.github.writes)
        return found

    def _echo(self, issue: str, action: str, name: str, now: datetime) -> Recorded:
        earlier = self.latest[issue]
        number = earlier["pull_request"]["number"]
        carried = self.github.labels.get(f"{earlier['repository']['full_name']}#{number}", [])
        labels = {label["name"] for label in earlier["pull_request"]["labels"]} | set(carried)
        pull = {**earlier["pull_request"], "updated_at": iso(now)}
        pull["labels"] = [{"name": label} for label in sorted(labels)]
        payload = {
            "action": action,
            "number": number,
            "pull_request": pull,
            "label": {"name": name},
            "repository": earlier["repository"],
            "installation": earlier["installation"],
            "sender": {"login": "stoplight[bot]", "type": "Bot"},
        }
        return Recorded(now, "pull_request", payload, f"echo-{next(self.numbers)}")


@contextmanager
def _pipeline(start: datetime) -> Iterator[tuple[Simulation, FakeGitHubState]]:
    """A simulation whose GitHub client talks to a fake GitHub on the simulated clock."""
    simulation: Simulation | None = None

    def now() -> datetime:
        return simulation.clock.now() if simulation else start

    with scratch_redis() as (redis, data_dir), serve_fake_github(now) as (host, github):
        settings = Settings(
            _env_file=None,
            APP_ID=1,
            PRIVATE_KEY=throwaway_private_key(),
            GHE_HOST=host,
            GHE_PROTOCOL="http",
            DATA_DIR=data_dir,
            BASE_URL="https://stoplight.example",
        )
        simulation = Simulation(redis, data_dir, start, settings)
        yield simulation, github


@dataclass
class TokenExpiry:
    """Redis expires a cached token on the wall clock, which hardly moves in a replay: the
    token is dropped when the simulated clock reaches the moment Redis would have dropped it."""

    simulation: Simulation
    github: FakeGitHubState
    installation_id: int
    seen: int = 0
    issued: datetime | None = None

    def expire_if_due(self) -> None:
        for at, _, name in self.github.requests[self.seen :]:
            if name == "token":
                self.issued = at
        self.seen = len(self.github.requests)
        lifetime = timedelta(hours=1) - TOKEN_MARGIN
        if self.issued is not None and self.simulation.clock.now() >= self.issued + lifetime:
            self.simulation.redis.delete(keys.InstallationKeys(self.installation_id).token)
            self.issued = None


def duplicate_writes(writes: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    """Writes that changed nothing on GitHub: a status a commit already showed, a label a PR
    already carried (or did not carry, for a removal), a label a repository already had."""
    shown: dict[str, tuple[str, str, str]] = {}
    carried: dict[str, set[str]] = {}
    created: set[tuple[str, str]] = set()
    found = []
    for method, path, body in writes:
        if "/statuses/" in path:
            status = (body["state"], body["description"], body["target_url"])
            same = shown.get(path) == status
            shown[path] = status
        elif "/issues/" in path:
            issue, _, name = path.partition("/labels/")  # label names hold slashes: size/M
            on_pull = carried.setdefault(issue.removesuffix("/labels"), set())
            if method == "DELETE":
                same = name not in on_pull
                on_pull.discard(name)
            else:
                same = set(body) <= on_pull
                on_pull |= set(body)
        else:
            label = (path, body["name"])
            same = label in created
            created.add(label)
        if same:
            found.append((method, path, body))
    return found


def peak_per_minute(moments: list[datetime]) -> tuple[int, datetime | None]:
    """The most writes in any 60 seconds, and when that minute began."""
    ordered = sorted(moments)
    best, best_at, first = 0, None, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= timedelta(minutes=1):
            first += 1
        if last - first + 1 > best:
            best, best_at = last - first + 1, ordered[first]
    return best, best_at


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def report_day(day: Replay) -> None:
    kinds = Counter(KINDS[name] for _, _, name in day.requests)
    writes = sum(1 for _, _, name in day.requests if name in WRITES)
    reads = len(day.requests) - writes
    per = len(day.requests) / day.delivered
    print(f"org day: {day.delivered:,} deliveries on {DAY:%A %Y-%m-%d}, {day.echoes:,} of them "
          f"echoes of the app's own label writes (replayed in {day.seconds:.0f} s)")  # fmt: skip
    mix = ", ".join(f"{name} {n}" for name, n in day.deliveries.most_common())
    print(f"  deliveries: {mix}")
    changes = ", ".join(f"{team} {n}" for team, n in sorted(day.light_changes.items()))
    print(f"  light changes: {sum(day.light_changes.values())} ({changes or 'none'})")
    print(f"  GitHub requests: {len(day.requests):,} ({reads:,} reads, {writes:,} writes)")
    for kind, count in kinds.most_common():
        print(f"    {kind:<18} {count:6,}   {count / day.delivered:.3f} per delivery")
    without = len(day.requests) / max(day.delivered - day.echoes, 1)
    print(
        f"  requests per delivery: {per:.3f} ({without:.3f} leaving the echoes out)   "
        f"target <= {REQUESTS_PER_DELIVERY}: {verdict(per <= REQUESTS_PER_DELIVERY)}"
    )
    duplicates = duplicate_writes(day.writes)
    print(f"  duplicate writes: {len(duplicates)}   target 0: {verdict(not duplicates)}")
    for method, path, body in duplicates[:5]:
        print(f"    {method} {path} {body}")
    write_moments = [at for at, _, name in day.requests if name in WRITES]
    peak, minute = peak_per_minute(write_moments)
    when = f" (from {minute:%H:%M:%S})" if minute else ""
    print(f"  peak writes per minute, one installation: {peak}{when}   "
          f"target <= {WRITES_PER_MINUTE}: {verdict(peak <= WRITES_PER_MINUTE)}")  # fmt: skip


def report_big_team(team: Replay, opened: list[Recorded]) -> None:
    """How soon the new light reaches every PR, and the PRs people were last active on."""
    changed_at, pulls = opened[-1].at, len(opened)
    moments = [at for at, _, name in team.requests if name == "create_status"]
    print(f"a team of {pulls} open PRs turns yellow at {changed_at:%H:%M:%S}:")
    if len(moments) < pulls:
        print(f"  only {len(moments)} of {pulls} statuses written: NOT MET")
        return
    # The fan-out's statuses are the last writes to commits: which PR each went to, in order.
    shas = [path.rpartition("/")[2] for _, path, _ in team.writes if "/statuses/" in path]
    written = dict(zip(shas[-len(moments) :], moments, strict=True))
    recent = [recorded.payload["pull_request"]["head"]["sha"] for recorded in opened]
    tenth = max(pulls // 10, 1)
    reached_recent = max(written[sha] for sha in recent[-tenth:]) - changed_at
    first, last = moments[0] - changed_at, moments[-1] - changed_at
    bound = GITHUB_WRITE_GAP * pulls
    print(f"  first status after {first.total_seconds():.0f} s; the {tenth} most recently active "
          f"PRs all show it after {reached_recent.total_seconds():.0f} s")  # fmt: skip
    print(f"  the last of {len(moments)} statuses after {last.total_seconds():.0f} s; "
          f"bound from one write a second: about {bound.total_seconds():.0f} s   "
          f"within 10% of it: {verdict(last <= bound * 1.1)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repos", type=int, default=30)
    parser.add_argument("--pulls", type=int, default=300)
    parser.add_argument("--big-team", type=int, default=200, help="open PRs of the big team")
    parser.add_argument("--write", type=Path, help="save the day's deliveries here (.jsonl)")
    parser.add_argument("--from", dest="source", type=Path, help="replay this file instead")
    parser.add_argument("--config", type=Path, help="with --from: the org's stoplight.yml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.source:
        deliveries = read_recorded(args.source.read_text().splitlines())
        config = args.config.read_text() if args.config else org_config()
    else:
        deliveries, config = org_day(args.seed, args.repos, args.pulls), org_config()
    if args.write:
        lines = (json.dumps({**r.as_json(), "at": iso(r.at)}) + "\n" for r in deliveries)
        args.write.write_text("".join(lines))
        args.write.with_suffix(".yml").write_text(config)
        print(f"wrote {len(deliveries):,} deliveries to {args.write} and its configuration "
              f"to {args.write.with_suffix('.yml')}")  # fmt: skip
    end = DAY + timedelta(days=1)
    report_day(
        replay(deliveries, config, counted_from=DAY, until=end, installation_id=INSTALLATION)
    )

    opened = big_team(args.big_team)
    changed_at = opened[-1].at
    team = replay(
        opened,
        big_team_config(args.big_team),
        counted_from=changed_at,
        until=changed_at + timedelta(hours=1),
        installation_id=BIG_INSTALLATION,
    )
    report_big_team(team, opened)


if __name__ == "__main__":
    main()
