"""`.github/stoplight.yml`: the model, its validation, and what it means for each team.

Parsing never raises on bad input: a file that does not parse or validate comes back as an
`Invalid` value whose errors name the key by its dotted path, for a status or the CLI to show.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from datetime import date, time, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal, NoReturn
from zoneinfo import ZoneInfo, available_timezones

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from stoplight.core.agents import AGENT_AUTHORS
from stoplight.core.calendar import DailySchedule, WorkingHours
from stoplight.core.light import (
    ALWAYS,
    DEFAULT_STALE_AFTER,
    Level,
    Policy,
    Thresholds,
    WaitCalendar,
    format_duration,
)
from stoplight.core.pulls import AgentRules, Rules
from stoplight.core.text import escape_controls

CONFIG_PATH = ".github/stoplight.yml"
ERROR_PREFIX = f"Invalid {CONFIG_PATH}:"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_COOLDOWN = timedelta(minutes=10)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# The file is written by anyone who can push to a repository: what it may cost is bounded
# before anything is built from it.
MAX_CONFIG_BYTES = 64 * 1024
MAX_NODES = 10_000  # a large org-wide file has a few thousand
MAX_DEPTH = 16  # the format nests five levels deep
MAX_COUNT = 1_000_000
MAX_NUMBER_TEXT = 100  # digits of an integer PyYAML may convert; far below Python's limit
MAX_DURATION = timedelta(days=365)
_DURATION = re.compile(r"(\d+)([smhd])")
_DURATION_TEXT = re.compile(r"(?:\d+[smhd])+")


def _shown(value: object) -> str:
    """A value from the file as an error message may quote it: short, and one line."""
    try:
        shown = repr(value)
    except ValueError:  # an integer past Python's digit limit
        return "a number too long to show"
    return shown if len(shown) <= 42 else f"{shown[:40]}…"


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `24h`, `2d` (or a combination such as `1d12h`) -> timedelta, a year at
    most."""
    compact = text.replace(" ", "")
    # The length bound keeps every number far below Python's digit limit.
    if len(compact) > 40 or not _DURATION_TEXT.fullmatch(compact):
        raise ValueError(f"{_shown(text)} is not a duration such as 30s, 15m, 24h or 2d")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(compact))
    # Compared as an integer: a timedelta that large would overflow.
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{_shown(text)} is longer than a year")
    return timedelta(seconds=seconds)


def _duration_field(value: object) -> object:
    """A duration in the file, or a timedelta already (a default)."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta) or value is None:
        return value
    raise ValueError(f"{_shown(value)} is not a duration such as 30s, 15m, 24h or 2d")


def _clock_time(value: object) -> object:
    # YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        hours, minutes = (int(part) for part in value.split(":"))
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    if isinstance(value, time):
        return value
    raise ValueError(f"{_shown(value)} is not a time of day such as 09:00")


@functools.cache
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones() | {"UTC"})


def _timezone(value: object) -> object:
    # Looked up among the names tzdata knows, never opened as a path from the file's text.
    if not isinstance(value, str) or value not in _known_timezones():
        raise ValueError(f"unknown timezone {_shown(value)}")
    return value


def _matching(pattern: str, what: str) -> BeforeValidator:
    """A string that matches `pattern` whole; the error says what it should have been."""
    compiled = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, str) and compiled.fullmatch(value):
            return value
        raise ValueError(f"{_shown(value)} is not {what}")

    return BeforeValidator(check)


Duration = Annotated[timedelta, BeforeValidator(_duration_field)]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
# A team's name is part of its key (`name@owner/repo`) and of page addresses: no `@` or `/`.
# It is shown in terminals, statuses and Slack: no control characters or bidi overrides.
TeamName = Annotated[
    str,
    _matching(
        r"[^@/\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]{1,100}",
        "a team name (up to 100 characters, no @ or /)",
    ),
]
PathPattern = Annotated[str, _matching(r"[^\x00-\x1f\x7f]{1,200}", "a path pattern such as *.lock")]
# GitHub's limits: labels up to 50 characters, logins up to 39 (bots add `[bot]`).
LabelName = Annotated[
    str, _matching(r"[^\x00-\x1f\x7f]{1,50}", "a label name (up to 50 characters)")
]
# GitHub's logins; managed users' carry an `_shortcode` suffix.
Login = Annotated[
    str, _matching(r"[A-Za-z0-9][A-Za-z0-9_-]{0,59}(\[bot\])?", "a GitHub login such as octocat")
]
# Only Slack member ids: the app builds `<@U…>` mentions from them, and nothing else.
SlackMemberId = Annotated[
    str, _matching(r"[UW][A-Z0-9]{2,20}", "a Slack member id such as U024BE7LH")
]
SlackChannel = Annotated[
    str, _matching(r"#?[^\s<>&|@!]{1,80}", "a Slack channel such as #reviews or C024BE91L")
]
RepoPattern = Annotated[
    str, _matching(r"[A-Za-z0-9._*?\[\]!/-]{1,200}", "a repository name or glob such as shop-*")
]


@dataclass(frozen=True)
class ExtendsTarget:
    """Where `_extends` points: a repository (of the file's own owner unless named) and a file."""

    owner: str | None
    repo: str
    path: str = CONFIG_PATH

    def full_name(self, own_owner: str) -> str:
        return f"{self.owner or own_owner}/{self.repo}"

    def shown(self, own_owner: str) -> str:
        return f"{self.full_name(own_owner)}:{self.path}"


# Probot's forms: `repo`, `owner/repo`, either with `:path/to/file.yml`.
_EXTENDS = re.compile(
    r"(?:(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})/)?(?P<repo>[A-Za-z0-9._-]{1,100})"
    r"(?::(?P<path>[A-Za-z0-9._-]{1,100}(?:/[A-Za-z0-9._-]{1,100}){0,9}))?"
)


def parse_extends(value: object) -> ExtendsTarget:
    """`_extends` checked by its shape alone, before anything is read: no part of it can leave
    its place in a request's path (`..`, `?`, `#`, `%`, a second owner segment)."""
    found = _EXTENDS.fullmatch(value) if isinstance(value, str) else None
    if found is None or found["repo"] in (".", ".."):
        raise ValueError(f"{_shown(value)} is not a repository such as .github, repo or repo:path")
    path = found["path"] or CONFIG_PATH
    if any(part in (".", "..") for part in path.split("/")):
        raise ValueError(f"{_shown(value)} names a path outside the repository")
    return ExtendsTarget(found["owner"], found["repo"], path)


def _extends_field(value: object) -> object:
    parse_extends(value)
    return value


Extends = Annotated[str, BeforeValidator(_extends_field)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class YellowLimits(Strict):
    waiting: Count | None = 4
    oldest: Duration | None = timedelta(hours=24)
    lines: Count | None = 1000

    def thresholds(self) -> Thresholds:
        return Thresholds(waiting=self.waiting, oldest=self.oldest, lines=self.lines)


class RedLimits(YellowLimits):
    waiting: Count | None = 8
    oldest: Duration | None = timedelta(hours=48)
    lines: Count | None = 2500


class TeamThresholds(Strict):
    yellow: YellowLimits = YellowLimits()
    red: RedLimits = RedLimits()


class TeamConfig(Strict):
    name: TeamName
    repos: Annotated[list[RepoPattern], Field(max_length=1000)] | None = None
    slack_channel: SlackChannel | None = None
    # GitHub login -> Slack member id
    slack_users: Annotated[dict[Login, SlackMemberId], Field(max_length=2000)] = {}
    thresholds: TeamThresholds = TeamThresholds()
    cooldown: Duration = DEFAULT_COOLDOWN
    public_badge: bool = False  # /badge/<owner>/<team>.svg shows the light to anyone

    def covers(self, repo: str) -> bool:
        """Whether this team takes `repo` (owner/name); patterns without an owner match names."""
        name = repo.rpartition("/")[2]
        return any(
            fnmatchcase(repo if "/" in pattern else name, pattern) for pattern in self.repos or ()
        )


class WorkingHoursConfig(Strict):
    timezone: Annotated[str, BeforeValidator(_timezone)] = "UTC"
    days: Annotated[list[Literal[DAYS]], Field(min_length=1)] = list(DAYS[:5])  # type: ignore[valid-type]
    start: ClockTime = time(9)
    end: ClockTime = time(18)
    holidays: Annotated[list[date], Field(max_length=1000)] = []

    def calendar(self) -> WorkingHours:
        return WorkingHours(
            timezone=ZoneInfo(self.timezone),
            days=frozenset(DAYS.index(day) for day in self.days),
            start=self.start,
            end=self.end,
            holidays=frozenset(self.holidays),
        )


class DigestConfig(Strict):
    """A daily Slack digest at `at`, on the working days of `working_hours` (Mon-Fri, UTC,
    without it)."""

    at: ClockTime

    def schedule(self, hours: WorkingHoursConfig | None) -> DailySchedule:
        hours = hours or WorkingHoursConfig()
        return DailySchedule(
            at=self.at,
            timezone=ZoneInfo(hours.timezone),
            days=frozenset(DAYS.index(day) for day in hours.days),
            holidays=frozenset(hours.holidays),
        )


class SizeConfig(Strict):
    exclude: Annotated[list[PathPattern], Field(max_length=200)] = []


def _longer_than_nothing(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


class ClaimsConfig(Strict):
    """ "I'll review" claims from Slack: how long one lasts (wall-clock time, not working
    hours: a claim is a promise for today), and how many one person may hold."""

    expire: Annotated[Duration, AfterValidator(_longer_than_nothing)] = timedelta(hours=4)
    max_per_reviewer: Annotated[int, Field(ge=1, le=100)] = 2


class AgentsConfig(Strict):
    """AI coding agents' PRs: whose they are, and the lane that levels them."""

    authors: Annotated[list[Login], Field(max_length=1000)] = sorted(AGENT_AUTHORS)
    label: LabelName = "stoplight:agent"
    # From yellow by default; `red` holds agents' PRs as people's are held.
    hold_from: Literal["yellow", "red"] = "yellow"
    max_waiting: Annotated[int, Field(ge=1, le=1000)] | None = 3  # null: no cap

    def rules(self) -> AgentRules:
        return AgentRules(
            authors=frozenset(self.authors),
            label=self.label,
            hold_from=None if self.hold_from == "red" else Level.YELLOW,
            max_waiting=self.max_waiting,
        )


class Config(Strict):
    teams: Annotated[list[TeamConfig], Field(max_length=500)] = []
    required_approvals: Annotated[int, Field(ge=0, le=100)] = 1
    hold_when_red: bool = True
    expedite_label: LabelName = "stoplight:expedite"
    swarm_labels: Annotated[int, Field(ge=0, le=100)] = 3
    claims: ClaimsConfig = ClaimsConfig()
    working_hours: WorkingHoursConfig | None = None
    size: SizeConfig = SizeConfig()
    ignore_authors: Annotated[list[Login], Field(max_length=1000)] = []
    stale_after: Duration | None = DEFAULT_STALE_AFTER  # null: no PR is ever stale
    # Bot accounts whose approvals and change requests count; no bot's do by default.
    trusted_review_bots: Annotated[list[Login], Field(max_length=1000)] = []
    digest: DigestConfig | None = None  # None: no daily digest
    agents: AgentsConfig = AgentsConfig()
    # A person's waiting PRs (their agents' counted with theirs); null: no cap.
    wip_per_author: Annotated[int, Field(ge=1, le=1000)] | None = None
    extends: Extends | None = Field(default=None, alias="_extends")

    def team_for(self, repo: str) -> TeamSettings | Invalid:
        """The team `repo` belongs to when this is its own file; a repository in no team is a
        team of its own."""
        found = self.member_team(repo, own_file=True)
        if isinstance(found, Invalid):
            return found
        return self.team_settings(found.name if found else repo, found)

    def member_team(self, repo: str, *, own_file: bool) -> TeamConfig | Invalid | None:
        """The team of this file that takes `repo`: one whose `repos` match it, or, in the
        repository's own file (`own_file`), one without `repos`. Another repository's team
        without `repos` covers that repository only: membership needs the file's consent."""
        matches = [
            (i, team)
            for i, team in enumerate(self.teams)
            if team.covers(repo) or (own_file and team.repos is None)
        ]
        if len(matches) > 1:
            names = " and ".join(repr(team.name) for _, team in matches)
            return Invalid((ConfigError(f"teams[{matches[1][0]}].repos", f"{repo} is in {names}"),))
        return matches[0][1] if matches else None

    def team_settings(
        self, key: str, team: TeamConfig | None, *, home: str | None = None
    ) -> TeamSettings:
        """Team `team` of this file (None: a repository in no team) under `key`."""
        calendar: WaitCalendar = self.working_hours.calendar() if self.working_hours else ALWAYS
        limits = team.thresholds if team else TeamThresholds()
        return TeamSettings(
            key=key,
            name=team.name if team else key,
            policy=Policy(
                yellow=limits.yellow.thresholds(),
                red=limits.red.thresholds(),
                cooldown=team.cooldown if team else DEFAULT_COOLDOWN,
                calendar=calendar,
                stale_after=self.stale_after,
            ),
            rules=self.rules(),
            swarm_labels=self.swarm_labels,
            claims=self.claims,
            size_exclude=tuple(self.size.exclude),
            slack_channel=team.slack_channel if team else None,
            slack_users=dict(team.slack_users) if team else {},
            public_badge=team.public_badge if team else False,
            home=home,
            digest=self.digest.schedule(self.working_hours) if self.digest else None,
        )

    def rules(self) -> Rules:
        return Rules(
            required_approvals=self.required_approvals,
            hold_when_red=self.hold_when_red,
            expedite_label=self.expedite_label,
            ignore_authors=frozenset(self.ignore_authors),
            trusted_review_bots=frozenset(self.trusted_review_bots),
            agents=self.agents.rules(),
            wip_per_author=self.wip_per_author,
        )

    def with_pull_rules(self, settings: TeamSettings) -> TeamSettings:
        """A team's settings with this configuration's rules for judging a PR: a repository's
        own keys override what its team's file says, for its own PRs only."""
        return replace(settings, rules=self.rules(), size_exclude=tuple(self.size.exclude))


@dataclass(frozen=True)
class TeamSettings:
    """Everything about one team that the pipeline, effects and notices need."""

    key: str
    name: str
    policy: Policy
    rules: Rules
    swarm_labels: int
    claims: ClaimsConfig
    size_exclude: tuple[str, ...]
    slack_channel: str | None
    slack_users: dict[str, str]
    public_badge: bool = False
    # The repository whose configuration defines the team (None: not known here).
    home: str | None = None
    digest: DailySchedule | None = None  # when the team's daily Slack digest is due


@dataclass(frozen=True)
class ConfigError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class Invalid:
    errors: tuple[ConfigError, ...]

    @property
    def message(self) -> str:
        """One line naming the first bad key: what a status and `check-config` show. Keys and
        values are the file's, so control characters in them are shown escaped."""
        return escape_controls(f"{ERROR_PREFIX} {'; '.join(str(error) for error in self.errors)}")


DEFAULT_CONFIG = Config()


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what makes a small file expensive: aliases (each can
    repeat a whole structure, so a few levels of them reach billions of nodes), nesting deeper
    than the format goes (recursion), and more nodes than a configuration has."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._refuse("aliases (*name) are not allowed")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self._refuse(f"more than {MAX_NODES:,} values")
        if self.depth == MAX_DEPTH:
            self._refuse(f"nested deeper than {MAX_DEPTH} levels")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        """Past Python's digit limit an integer is its text, so validation names its key."""
        if len(node.value) > MAX_NUMBER_TEXT:
            return self.construct_scalar(node)
        return super().construct_yaml_int(node)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        """A date Python cannot hold (year 0) is its text, so validation names its key."""
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            return self.construct_scalar(node)

    def _refuse(self, problem: str) -> NoReturn:
        raise yaml.composer.ComposerError(None, None, problem, self.peek_event().start_mark)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)
_BoundedLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", _BoundedLoader.construct_yaml_timestamp
)


def _load_bounded(text: str) -> Any:
    loader = _BoundedLoader(text)  # its reader refuses control characters already
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def size_problem(size: int) -> str | None:
    """Why a file of `size` bytes is not read, if it is too large."""
    if size <= MAX_CONFIG_BYTES:
        return None
    return f"the file is {size:,} bytes; at most {MAX_CONFIG_BYTES:,} are read"


def parse_yaml(text: str) -> dict[str, Any] | Invalid:
    """The file's mapping, or why it is refused; never raises."""
    too_large = size_problem(len(text.encode("utf-8", "surrogatepass")))
    if too_large:
        return Invalid((ConfigError("", too_large),))
    try:
        raw = _load_bounded(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        return Invalid((ConfigError("", f"YAML does not parse: {where}{problem}"),))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        return Invalid((ConfigError("", "the file must be a mapping of keys to values"),))
    return raw


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate(raw: dict[str, Any], *, org_wide: bool = False) -> Config | Invalid:
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        return Invalid(tuple(_pydantic_error(detail) for detail in error.errors()))
    errors = _team_errors(config, org_wide) + _order_errors(config)
    return Invalid(tuple(errors)) if errors else config


def load(text: str, *, org_wide: bool = False) -> Config | Invalid:
    raw = parse_yaml(text)
    return raw if isinstance(raw, Invalid) else validate(raw, org_wide=org_wide)


def _pydantic_error(detail: ErrorDetails) -> ConfigError:
    loc = [part for part in detail["loc"] if not _is_type_tag(part)]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    kind = detail["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind in ("greater_than_equal", "too_short") and "ge" in detail.get("ctx", {}):
        message = f"must be {detail['ctx']['ge']} or more"
    elif kind == "less_than_equal":
        message = f"must be {detail['ctx']['le']} or less"
    elif kind == "too_long":
        message = f"must have at most {detail['ctx']['max_length']} entries"
    elif kind == "value_error":
        message = str(detail["ctx"]["error"])
    else:
        message = detail["msg"][0].lower() + detail["msg"][1:]
    return ConfigError(path.lstrip("."), message)


def _is_type_tag(part: str | int) -> bool:
    # pydantic names the branch of a union it tried (`int`, `function-before[...]`).
    return isinstance(part, str) and (part in ("int", "str", "bool") or "[" in part)


def _team_errors(config: Config, org_wide: bool) -> list[ConfigError]:
    errors = []
    owner_of: dict[str, str] = {}
    names: set[str] = set()
    for i, team in enumerate(config.teams):
        if team.name in names:
            errors.append(ConfigError(f"teams[{i}].name", f"{team.name!r} names two teams"))
        names.add(team.name)
        if team.repos is None and org_wide:
            errors.append(ConfigError(f"teams[{i}].repos", "required in the org-wide file"))
        for j, repo in enumerate(team.repos or ()):
            if repo in owner_of:
                message = f"{repo} is already in team {owner_of[repo]!r}"
                errors.append(ConfigError(f"teams[{i}].repos[{j}]", message))
            owner_of.setdefault(repo, team.name)
    without_repos = [i for i, team in enumerate(config.teams) if team.repos is None]
    if len(without_repos) > 1:
        message = "only one team may leave out repos (it covers this repository)"
        errors.append(ConfigError(f"teams[{without_repos[1]}].repos", message))
    return errors


def _order_errors(config: Config) -> list[ConfigError]:
    errors = []
    for i, team in enumerate(config.teams):
        yellow, red = team.thresholds.yellow, team.thresholds.red
        for measure in ("waiting", "oldest", "lines"):
            low, high = getattr(yellow, measure), getattr(red, measure)
            if low is not None and high is not None and high <= low:
                shown = format_duration(low) if isinstance(low, timedelta) else low
                path = f"teams[{i}].thresholds.red.{measure}"
                errors.append(ConfigError(path, f"must be greater than yellow ({shown})"))
        errors += _beyond_stale(config, i, team)
    if config.working_hours and config.working_hours.end <= config.working_hours.start:
        errors.append(ConfigError("working_hours.end", "must be later than start"))
    return errors


def _beyond_stale(config: Config, i: int, team: TeamConfig) -> list[ConfigError]:
    """An `oldest` limit a PR could reach only after leaving the measures as stale."""
    stale_after = config.stale_after
    if stale_after is None:
        return []
    errors = []
    for level in ("yellow", "red"):
        oldest = getattr(team.thresholds, level).oldest
        if oldest is not None and oldest >= stale_after:
            message = (
                f"is never reached: PRs leave the queue as stale after "
                f"{format_duration(stale_after)} (stale_after)"
            )
            errors.append(ConfigError(f"teams[{i}].thresholds.{level}.oldest", message))
    return errors


def describe(config: Config) -> str:
    """A short summary of the teams, for `check-config`."""
    lines = []
    for team in config.teams:
        repos = ", ".join(team.repos) if team.repos is not None else "this repository"
        limits = team.thresholds
        lines.append(
            f"{team.name}: {repos}; yellow {_limits(limits.yellow)}; red {_limits(limits.red)}; "
            f"cooldown {format_duration(team.cooldown)}"
        )
    if not config.teams:
        lines.append("no teams: each repository is its own team with the default thresholds")
    return "\n".join(lines)


def _limits(limits: YellowLimits) -> str:
    parts = []
    if limits.waiting is not None:
        parts.append(f"waiting {limits.waiting}")
    if limits.oldest is not None:
        parts.append(f"oldest {format_duration(limits.oldest)}")
    if limits.lines is not None:
        parts.append(f"lines {limits.lines}")
    return ", ".join(parts) or "off"
