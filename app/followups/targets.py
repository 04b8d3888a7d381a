"""Working-time targets of follow-ups: deadlines and elapsed time counted in working hours.

Pure functions over a working calendar (hours of the day, days of the week, time zone):
a complaint received on Friday evening is due on Monday, not on Saturday.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.config import Settings

MAX_DAYS = 3 * 366
"""Deadlines further out than this are not working-time deadlines any more: refused."""


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    opens: time
    closes: time
    days: frozenset[int]
    """Working days of the week, Monday = 0."""
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not self.opens < self.closes:
            raise ValueError("the working day must open before it closes")
        if not self.days or not self.days <= set(range(7)):
            raise ValueError("working days must be a non-empty subset of 0..6 (Monday = 0)")

    def _window(self, day: datetime) -> tuple[datetime, datetime] | None:
        """The working hours of `day`'s local date, or None on a day off."""
        if day.weekday() not in self.days:
            return None
        start = datetime.combine(day.date(), self.opens, tzinfo=self.zone)
        end = datetime.combine(day.date(), self.closes, tzinfo=self.zone)
        return start, end


def add_working_hours(start: datetime, hours: float, calendar: WorkingCalendar) -> datetime:
    """The moment `hours` working hours after `start` (timezone-aware in, UTC-comparable out)."""
    remaining = timedelta(hours=hours)
    cursor = start.astimezone(calendar.zone)
    for _ in range(MAX_DAYS):
        window = calendar._window(cursor)
        if window is not None:
            begin = max(cursor, window[0])
            if begin < window[1]:
                available = window[1] - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        cursor = datetime.combine(cursor.date() + timedelta(days=1), time(0), tzinfo=calendar.zone)
    raise ValueError(f"no deadline within {MAX_DAYS} days")


def working_hours_between(start: datetime, end: datetime, calendar: WorkingCalendar) -> float:
    """Working hours from `start` to `end` (0 when end is not after start)."""
    if end <= start:
        return 0.0
    total = timedelta()
    cursor = start.astimezone(calendar.zone)
    end = end.astimezone(calendar.zone)
    while cursor < end:
        window = calendar._window(cursor)
        if window is not None:
            begin, finish = max(cursor, window[0]), min(end, window[1])
            if begin < finish:
                total += finish - begin
        cursor = datetime.combine(cursor.date() + timedelta(days=1), time(0), tzinfo=calendar.zone)
    return total.total_seconds() / 3600


@dataclass(frozen=True, slots=True)
class Targets:
    """How soon a follow-up should be acknowledged and resolved, in working hours."""

    calendar: WorkingCalendar
    acknowledge_hours: float
    resolve_hours: float

    def acknowledge_due(self, opened_at: datetime) -> datetime:
        return add_working_hours(opened_at, self.acknowledge_hours, self.calendar)

    def resolve_due(self, opened_at: datetime) -> datetime:
        return add_working_hours(opened_at, self.resolve_hours, self.calendar)


def working_calendar(settings: Settings) -> WorkingCalendar:
    """The working hours follow-up targets are counted in."""
    return WorkingCalendar(
        opens=settings.working_day_start,
        closes=settings.working_day_end,
        days=settings.working_weekdays,
        zone=ZoneInfo(settings.time_zone),
    )


def from_settings(settings: Settings) -> Targets:
    """Acknowledge and resolve targets of follow-ups, in working hours."""
    return Targets(
        calendar=working_calendar(settings),
        acknowledge_hours=settings.acknowledge_within_hours,
        resolve_hours=settings.resolve_within_hours,
    )
