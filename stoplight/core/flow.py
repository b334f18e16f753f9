"""Flow figures of a team's review queue: pure functions of its history, calendar and clock.

Weekly figures put Little's Law beside the queue it describes: the time-weighted mean of the
waiting count against throughput times mean wait. Both sides are measured in the team's
calendar (working time when working hours are set, else all time), in which the law holds
exactly for every PR that enters and leaves within the week.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any, TypeVar

from stoplight.core.calendar import WorkingHours
from stoplight.core.light import Level, WaitCalendar

WEEK = timedelta(days=7)
DAY = timedelta(days=1)
CHART_SPAN = timedelta(days=14)
# The oldest wait grows between samples only in working time: evaluated on this grid.
OLDEST_GRID = timedelta(minutes=30)

T = TypeVar("T")


@dataclass(frozen=True)
class LightChange:
    at: datetime
    level: Level


@dataclass(frozen=True)
class Sample:
    """The queue's measures from `at` until the next sample."""

    at: datetime
    waiting: int
    lines: int
    oldest_since: datetime | None  # when the longest-waiting PR started waiting


@dataclass(frozen=True)
class Entry:
    at: datetime
    pull: str


@dataclass(frozen=True)
class Exit:
    at: datetime
    pull: str
    waiting_since: datetime
    held: bool = False  # reviewed in the held lane: in review, never in the queue's measures
    agent: bool = False  # an agent's PR (exits recorded before agents were told apart: not)


@dataclass(frozen=True)
class History:
    """What was recorded of one team between `since` and `until`, each kind in time order.

    `lights` and `samples` start with the last record at or before `since` when one is kept,
    so the state at `since` is known. Before a team's first sample its queue was empty.
    """

    since: datetime
    until: datetime
    lights: tuple[LightChange, ...] = ()
    samples: tuple[Sample, ...] = ()
    entries: tuple[Entry, ...] = ()
    exits: tuple[Exit, ...] = ()
    stale: tuple[Exit, ...] = ()  # PRs that left the queue as stale, with their wait start
    held: tuple[Entry, ...] = ()  # PRs that joined the held lane

    @property
    def begins(self) -> datetime | None:
        """The first moment anything was recorded: no figures are known before it."""
        firsts = [kind[0].at for kind in (self.lights, self.samples, self.entries) if kind]
        return min(firsts, default=None)


@dataclass(frozen=True)
class WeekFigures:
    """One ISO week of the queue. Figures cover the part of it the history knows:
    from `observed_from` (the week's start, or the first record) to `observed_until`
    (the week's end, or now)."""

    first_day: date  # the Monday, in the team's timezone
    start: datetime
    end: datetime
    observed_from: datetime
    observed_until: datetime
    green: timedelta
    yellow: timedelta
    red: timedelta
    entered: int
    left: int
    went_stale: int  # PRs that left the queue as stale
    held: int  # PRs that joined the held lane
    reviewed_held: int  # of those leaving, PRs reviewed while held
    mean_wip: float | None  # time-weighted mean of the waiting count, in calendar time
    median_wait: timedelta | None  # of the PRs that left review this week
    p85_wait: timedelta | None
    mean_wait: timedelta | None
    throughput: float | None  # PRs leaving per day (per working day with working hours)
    # Little's Law over the queue's own departures (stale ones included, PRs reviewed while
    # held not, since the measures never held them): what mean_wip should come to.
    throughput_x_wait: float | None
    imbalance: tuple[str, ...] = ()  # why the two sides differ, when they do
    # Agents' PRs apart: of those leaving review, how many were agents', and their waits.
    agents_left: int = 0
    agents_median_wait: timedelta | None = None
    people_median_wait: timedelta | None = None

    @property
    def agents_share(self) -> float | None:
        """The agents' share of the PRs leaving review (their share of the throughput)."""
        return self.agents_left / self.left if self.left else None

    @property
    def current(self) -> bool:
        return self.observed_until < self.end

    def as_json(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day.isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "observed_from": self.observed_from.isoformat(),
            "observed_until": self.observed_until.isoformat(),
            "seconds_in_light": {
                "green": self.green.total_seconds(),
                "yellow": self.yellow.total_seconds(),
                "red": self.red.total_seconds(),
            },
            "entered": self.entered,
            "left": self.left,
            "went_stale": self.went_stale,
            "held": self.held,
            "reviewed_while_held": self.reviewed_held,
            "mean_wip": self.mean_wip,
            "median_wait_seconds": _seconds(self.median_wait),
            "p85_wait_seconds": _seconds(self.p85_wait),
            "mean_wait_seconds": _seconds(self.mean_wait),
            "throughput_per_day": self.throughput,
            "throughput_x_mean_wait": self.throughput_x_wait,
            "imbalance": list(self.imbalance),
            "agents": {
                "left": self.agents_left,
                "share_of_left": self.agents_share,
                "median_wait_seconds": _seconds(self.agents_median_wait),
                "people_median_wait_seconds": _seconds(self.people_median_wait),
            },
        }


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float


@dataclass(frozen=True)
class Band:
    start: datetime
    end: datetime
    level: Level


@dataclass(frozen=True)
class ChartSeries:
    """The last days of the queue. `waiting` and `lines` are steps (each value holds until
    the next point, the last until `end`); `oldest` (seconds) runs straight between points."""

    start: datetime
    end: datetime
    timezone: tzinfo  # the team's, for the day marks
    waiting: tuple[Point, ...]
    lines: tuple[Point, ...]
    oldest: tuple[Point, ...]
    bands: tuple[Band, ...]

    def as_json(self) -> dict[str, Any]:
        def points(series: tuple[Point, ...]) -> list[dict[str, Any]]:
            return [{"at": point.at.isoformat(), "value": point.value} for point in series]

        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "waiting": points(self.waiting),
            "lines": points(self.lines),
            "oldest_wait_seconds": points(self.oldest),
            "lights": [
                {
                    "start": b.start.isoformat(),
                    "end": b.end.isoformat(),
                    "light": b.level.name.lower(),
                }
                for b in self.bands
            ],
        }


def timezone_of(calendar: WaitCalendar) -> tzinfo:
    """Where the team's weeks and days begin: its working hours' timezone, else UTC."""
    return calendar.timezone if isinstance(calendar, WorkingHours) else UTC


def week_start(moment: datetime, zone: tzinfo) -> datetime:
    """Monday 00:00 of the ISO week holding `moment`, in `zone`, as a UTC moment."""
    local = moment.astimezone(zone).date()
    monday = local - timedelta(days=local.weekday())
    return datetime.combine(monday, time(0), tzinfo=zone).astimezone(UTC)


def weekly_figures(
    history: History, calendar: WaitCalendar, now: datetime, weeks: int
) -> tuple[WeekFigures, ...]:
    """The figures of up to `weeks` ISO weeks, newest (the current one) first, leaving out
    weeks that end before the history begins."""
    begins = history.begins
    if begins is None:
        return ()
    zone = timezone_of(calendar)
    figures = []
    start = week_start(now, zone)
    for _ in range(weeks):
        end = week_start(start + WEEK + timedelta(hours=12), zone)  # a day's DST shift aside
        if end <= begins:
            break
        observed = (max(start, begins), min(end, now))
        figures.append(
            _week(history, calendar, start.astimezone(zone).date(), start, end, *observed)
        )
        start = week_start(start - timedelta(hours=12), zone)
    return tuple(figures)


def _week(
    history: History,
    calendar: WaitCalendar,
    first_day: date,
    start: datetime,
    end: datetime,
    observed_from: datetime,
    observed_until: datetime,
) -> WeekFigures:
    in_light = dict.fromkeys(Level, timedelta(0))
    lights = [(change.at, change.level) for change in history.lights]
    for begin, finish, level in _steps(lights, observed_from, observed_until):
        in_light[level] += finish - begin
    counted = calendar.waited(observed_from, observed_until)
    waiting_time = _time_in_queue(history, calendar, observed_from, observed_until)

    def within(moment: datetime) -> bool:
        return observed_from <= moment < observed_until

    exits = [e for e in history.exits if within(e.at)]
    waits = sorted(calendar.waited(e.waiting_since, e.at) for e in exits)
    agents_waits = sorted(calendar.waited(e.waiting_since, e.at) for e in exits if e.agent)
    people_waits = sorted(calendar.waited(e.waiting_since, e.at) for e in exits if not e.agent)
    day = working_day(calendar)
    throughput = len(exits) / (counted / day) if counted else None
    departures = [e for e in exits if not e.held] + [e for e in history.stale if within(e.at)]
    law = _little(departures, calendar, counted, day)
    mean_wip = waiting_time / counted if counted else None
    return WeekFigures(
        first_day=first_day,
        start=start,
        end=end,
        observed_from=observed_from,
        observed_until=observed_until,
        green=in_light[Level.GREEN],
        yellow=in_light[Level.YELLOW],
        red=in_light[Level.RED],
        entered=sum(1 for e in history.entries if within(e.at)),
        left=len(exits),
        went_stale=sum(1 for e in history.stale if within(e.at)),
        held=sum(1 for e in history.held if within(e.at)),
        reviewed_held=sum(1 for e in exits if e.held),
        mean_wip=mean_wip,
        median_wait=_percentile(waits, 50),
        p85_wait=_percentile(waits, 85),
        mean_wait=sum(waits, timedelta(0)) / len(waits) if waits else None,
        throughput=throughput,
        throughput_x_wait=law,
        imbalance=_imbalance(history, departures, mean_wip, law, observed_from, observed_until),
        agents_left=len(agents_waits),
        agents_median_wait=_percentile(agents_waits, 50),
        people_median_wait=_percentile(people_waits, 50),
    )


def _little(
    departures: Sequence[Exit], calendar: WaitCalendar, counted: timedelta, day: timedelta
) -> float | None:
    """Throughput times mean wait of the PRs that left the queue: L = λW's right side."""
    if not counted or not departures:
        return None
    waits = [calendar.waited(e.waiting_since, e.at) for e in departures]
    mean_wait = sum(waits, timedelta(0)) / len(waits)
    return len(departures) / (counted / day) * (mean_wait / day)


# Sides of Little's Law closer than this (in PRs, or as a share) are taken to balance.
BALANCE_PRS = 0.5
BALANCE_SHARE = 0.1


def _imbalance(
    history: History,
    departures: Sequence[Exit],
    mean_wip: float | None,
    law: float | None,
    start: datetime,
    end: datetime,
) -> tuple[str, ...]:
    """Why mean WIP and throughput times wait differ this week, when they do. The law holds for
    PRs that enter and leave within the period; what breaks it is a queue that ends fuller
    or emptier than it began, and waits begun before the period."""
    if mean_wip is None or law is None:
        return ()
    if abs(mean_wip - law) <= max(BALANCE_PRS, BALANCE_SHARE * max(mean_wip, law)):
        return ()
    reasons = []
    at_start, at_end = _waiting_at(history, start), _waiting_at(history, end)
    if at_end > at_start:
        reasons.append(
            f"the queue held {at_end} PRs at the end against {at_start} at the start: "
            "waits still running count in the mean WIP, not yet in throughput times wait"
        )
    elif at_end < at_start:
        reasons.append(
            f"the queue held {at_end} PRs at the end against {at_start} at the start: "
            "it drained PRs that waited before the period"
        )
    earlier = [e for e in departures if e.waiting_since < start]
    if earlier:
        stale = sum(1 for e in earlier if e in history.stale)
        of_them = f" ({stale} of them stale)" if stale else ""
        reasons.append(
            f"{len(earlier)} of the {len(departures)} PRs that left had waited since before "
            f"the period{of_them}: their whole wait counts in throughput times wait"
        )
    return tuple(reasons)


def _waiting_at(history: History, moment: datetime) -> int:
    """The waiting count the samples show at `moment` (0 before the first)."""
    found = bisect.bisect_right(history.samples, moment, key=lambda sample: sample.at)
    return history.samples[found - 1].waiting if found else 0


def working_day(calendar: WaitCalendar) -> timedelta:
    """The length of a day in the team's calendar: its working hours, else 24 hours."""
    if isinstance(calendar, WorkingHours):
        return datetime.combine(date.min, calendar.end) - datetime.combine(date.min, calendar.start)
    return DAY


def _percentile(ordered: Sequence[timedelta], percent: int) -> timedelta | None:
    """Linear between the nearest ranks (the "inclusive" method: a rank of (n - 1) * p)."""
    if len(ordered) < 2:
        return ordered[0] if ordered else None
    seconds = [wait.total_seconds() for wait in ordered]
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return timedelta(seconds=cuts[percent - 1])


def chart_series(history: History, calendar: WaitCalendar, now: datetime) -> ChartSeries:
    """The last 14 days as steps and bands; the queue is empty before its first sample."""
    start = now - CHART_SPAN
    samples = [(sample.at, sample) for sample in history.samples]
    if not samples or samples[0][0] > start:
        samples.insert(0, (start, Sample(start, 0, 0, None)))
    steps = list(_steps(samples, start, now))
    lights = [(change.at, change.level) for change in history.lights]
    return ChartSeries(
        start=start,
        end=now,
        timezone=timezone_of(calendar),
        waiting=_step_points((begin, s.waiting) for begin, _, s in steps),
        lines=_step_points((begin, s.lines) for begin, _, s in steps),
        oldest=_oldest_points(steps, calendar),
        bands=tuple(
            Band(begin, finish, level) for begin, finish, level in _steps(lights, start, now)
        ),
    )


def _time_in_queue(
    history: History, calendar: WaitCalendar, start: datetime, end: datetime
) -> timedelta:
    """The area under the waiting count (PRs times calendar time) between two moments."""
    counts = [(sample.at, sample.waiting) for sample in history.samples]
    pieces = _steps(counts, start, end)
    return sum(
        (count * calendar.waited(begin, finish) for begin, finish, count in pieces), timedelta()
    )


def _steps(
    changes: Sequence[tuple[datetime, T]], start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, T]]:
    """The pieces of a step function within [start, end): each value holds from its moment
    until the next change. Before the first change nothing is known."""
    following = [moment for moment, _ in changes[1:]] + [end] if changes else []
    for (moment, value), until in zip(changes, following, strict=True):
        begin, finish = max(moment, start), min(until, end)
        if begin < finish:
            yield begin, finish, value


def _step_points(values: Iterator[tuple[datetime, int]]) -> tuple[Point, ...]:
    points: list[Point] = []
    for moment, value in values:
        if not points or points[-1].value != value:
            points.append(Point(moment, value))
    return tuple(points)


def _oldest_points(
    steps: list[tuple[datetime, datetime, Sample]], calendar: WaitCalendar
) -> tuple[Point, ...]:
    """The oldest wait at each sample, at each grid mark and just before the next sample;
    marks on a straight line between their neighbours are left out."""
    points: list[Point] = []
    for begin, finish, sample in steps:
        moments = [begin, *_grid(begin, finish), finish]
        for moment in moments:
            since = sample.oldest_since
            wait = calendar.waited(since, moment) if since is not None else timedelta(0)
            points.append(Point(moment, wait.total_seconds()))
    distinct = [point for n, point in enumerate(points) if n == 0 or point != points[n - 1]]
    kept = distinct[:1]
    for middle, following in pairwise(distinct[1:]):
        if not _collinear(kept[-1], middle, following):
            kept.append(middle)
    if len(distinct) > 1:
        kept.append(distinct[-1])
    return tuple(kept)


def _grid(begin: datetime, finish: datetime) -> Iterator[datetime]:
    step = OLDEST_GRID.total_seconds()
    mark = datetime.fromtimestamp((begin.timestamp() // step + 1) * step, UTC)
    while mark < finish:
        yield mark
        mark += OLDEST_GRID


def _collinear(first: Point, middle: Point, last: Point) -> bool:
    if middle.at in (first.at, last.at):
        return False  # a jump at a sample
    rise = (middle.value - first.value) * (last.at - middle.at).total_seconds()
    run = (last.value - middle.value) * (middle.at - first.at).total_seconds()
    return abs(rise - run) < 1e-6


def _seconds(duration: timedelta | None) -> float | None:
    return duration.total_seconds() if duration is not None else None
