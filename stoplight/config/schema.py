"""`.github/stoplight.yml`: the model, its validation, and what it means for each team.

Parsing never raises on bad input: a file that does not parse or validate comes back as an
`Invalid` value whose errors name the key by its dotted path, for a status or the CLI to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from stoplight.core.calendar import WorkingHours
from stoplight.core.light import ALWAYS, Policy, Thresholds, WaitCalendar, format_duration
from stoplight.core.pulls import Rules

CONFIG_PATH = ".github/stoplight.yml"
ERROR_PREFIX = f"Invalid {CONFIG_PATH}:"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"(\d+)([smhd])")
DEFAULT_COOLDOWN = timedelta(minutes=10)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `24h`, `2d` (or a combination such as `1d12h`) -> timedelta."""
    compact = text.replace(" ", "")
    if not re.fullmatch(r"(\d+[smhd])+", compact):
        raise ValueError(f"{text!r} is not a duration such as 30s, 15m, 24h or 2d")
    return sum(
        (timedelta(**{_UNITS[unit]: int(n)}) for n, unit in _DURATION.findall(compact)),
        timedelta(0),
    )


def _duration_field(value: object) -> object:
    """A duration in the file, or a timedelta already (a default)."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta) or value is None:
        return value
    raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 24h or 2d")


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
    raise ValueError(f"{value!r} is not a time of day such as 09:00")


def _timezone(value: object) -> object:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}") from None
    return str(value)


Duration = Annotated[timedelta, BeforeValidator(_duration_field)]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Count = Annotated[int, Field(ge=0)]


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
    name: Annotated[str, Field(min_length=1)]
    repos: list[str] | None = None
    slack_channel: str | None = None
    slack_users: dict[str, str] = {}  # GitHub login -> Slack member id
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
    holidays: list[date] = []

    def calendar(self) -> WorkingHours:
        return WorkingHours(
            timezone=ZoneInfo(self.timezone),
            days=frozenset(DAYS.index(day) for day in self.days),
            start=self.start,
            end=self.end,
            holidays=frozenset(self.holidays),
        )


class SizeConfig(Strict):
    exclude: list[str] = []


class Config(Strict):
    teams: list[TeamConfig] = []
    required_approvals: Count = 1
    hold_when_red: bool = True
    expedite_label: str = "stoplight:expedite"
    swarm_labels: Count = 3
    working_hours: WorkingHoursConfig | None = None
    size: SizeConfig = SizeConfig()
    ignore_authors: list[str] = []
    extends: str | None = Field(default=None, alias="_extends")

    def team_for(self, repo: str) -> TeamSettings | Invalid:
        """The team `repo` belongs to; a repository in no team is a team of its own."""
        matches = [(i, team) for i, team in enumerate(self.teams) if _takes(team, repo)]
        if len(matches) > 1:
            names = " and ".join(repr(team.name) for _, team in matches)
            return Invalid((ConfigError(f"teams[{matches[1][0]}].repos", f"{repo} is in {names}"),))
        team = matches[0][1] if matches else None
        return self._settings(repo, team)

    def _settings(self, repo: str, team: TeamConfig | None) -> TeamSettings:
        calendar: WaitCalendar = self.working_hours.calendar() if self.working_hours else ALWAYS
        limits = team.thresholds if team else TeamThresholds()
        return TeamSettings(
            key=team.name if team else repo,
            name=team.name if team else repo,
            policy=Policy(
                yellow=limits.yellow.thresholds(),
                red=limits.red.thresholds(),
                cooldown=team.cooldown if team else DEFAULT_COOLDOWN,
                calendar=calendar,
            ),
            rules=Rules(
                required_approvals=self.required_approvals,
                hold_when_red=self.hold_when_red,
                expedite_label=self.expedite_label,
                ignore_authors=frozenset(self.ignore_authors),
            ),
            swarm_labels=self.swarm_labels,
            size_exclude=tuple(self.size.exclude),
            slack_channel=team.slack_channel if team else None,
            slack_users=dict(team.slack_users) if team else {},
            public_badge=team.public_badge if team else False,
        )


def _takes(team: TeamConfig, repo: str) -> bool:
    # In a repository's own file, a team without `repos` covers that repository.
    return team.repos is None or team.covers(repo)


@dataclass(frozen=True)
class TeamSettings:
    """Everything about one team that the pipeline, effects and notices need."""

    key: str
    name: str
    policy: Policy
    rules: Rules
    swarm_labels: int
    size_exclude: tuple[str, ...]
    slack_channel: str | None
    slack_users: dict[str, str]
    public_badge: bool = False


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
        """One line naming the first bad key: what a status and `check-config` show."""
        return f"{ERROR_PREFIX} {'; '.join(str(error) for error in self.errors)}"


DEFAULT_CONFIG = Config()


def parse_yaml(text: str) -> dict[str, Any] | Invalid:
    try:
        raw = yaml.safe_load(text)
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
    if config.working_hours and config.working_hours.end <= config.working_hours.start:
        errors.append(ConfigError("working_hours.end", "must be later than start"))
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
