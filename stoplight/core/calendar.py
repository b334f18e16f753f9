"""Working hours: waits count only the time inside a team's working days and hours.

Each working day's window is built in the team's timezone and compared in absolute time, so a
daylight-saving change neither shifts the window nor loses or adds an hour of waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class WorkingHours:
    timezone: ZoneInfo
    days: frozenset[int]  # 0 = Monday, as date.weekday()
    start: time
    end: time
    holidays: frozenset[date] = frozenset()

    def waited(self, start: datetime, end: datetime) -> timedelta:
        total = timedelta(0)
        if end <= start:
            return total
        for opens, closes in self._windows(start):
            if opens >= end:
                break
            total += min(closes, end) - max(opens, start)
        return total

    def moment_when_waited(self, start: datetime, wait: timedelta) -> datetime:
        if wait <= timedelta(0):
            return start
        remaining = wait
        for opens, closes in self._windows(start):
            moment = max(opens, start)
            if remaining <= closes - moment:
                return moment + remaining
            remaining -= closes - moment
        raise AssertionError("working windows never run out")

    def _windows(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows (in UTC) that end after `after`, in order, without end."""
        day = after.astimezone(self.timezone).date() - timedelta(days=1)
        while True:
            if day.weekday() in self.days and day not in self.holidays:
                opens = self._at(day, self.start)
                closes = self._at(day, self.end)
                if closes > after and closes > opens:
                    yield opens, closes
            day += timedelta(days=1)

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.timezone).astimezone(UTC)


@dataclass(frozen=True)
class DailySchedule:
    """A moment of each working day in a team's timezone (holidays skipped): when its daily
    message is due. Each day's moment is built in local time, so it stays at the same hour on
    the clock across a daylight-saving change."""

    at: time
    timezone: ZoneInfo
    days: frozenset[int]  # 0 = Monday, as date.weekday(); never empty
    holidays: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.holidays

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.timezone).date()

    def moment_on(self, day: date) -> datetime | None:
        """The day's moment (UTC), or None when `day` is not a working day."""
        if not self.is_working_day(day):
            return None
        return datetime.combine(day, self.at, tzinfo=self.timezone).astimezone(UTC)

    def next_after(self, after: datetime) -> datetime:
        """The first moment later than `after`."""
        day = self.local_date(after)
        while True:  # `days` is never empty and holidays are finite: this ends
            moment = self.moment_on(day)
            if moment is not None and moment > after:
                return moment
            day += timedelta(days=1)

    def previous_working_day(self, day: date) -> date:
        day -= timedelta(days=1)
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def since_previous_working_day(self, day: date) -> tuple[datetime, datetime]:
        """From the start of the working day before `day` to the start of `day` (UTC): on a
        Monday, Friday and the weekend after it."""
        since = datetime.combine(self.previous_working_day(day), time(0), tzinfo=self.timezone)
        until = datetime.combine(day, time(0), tzinfo=self.timezone)
        return since.astimezone(UTC), until.astimezone(UTC)
