from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr, ValidationError

from app.config import Settings
from app.followups.targets import (
    WorkingCalendar,
    add_working_hours,
    from_settings,
    working_hours_between,
)

OFFICE = WorkingCalendar(
    opens=time(9), closes=time(17), days=frozenset(range(5)), zone=ZoneInfo("Europe/Moscow")
)


def _msk(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Moscow"))


def test_four_working_hours_from_friday_afternoon_end_on_monday_morning() -> None:
    # Friday 2026-11-20 15:00 Moscow: 2 hours left that day, 2 more on Monday from 09:00.
    due = add_working_hours(_msk("2026-11-20T15:00"), 4, OFFICE)
    assert due == _msk("2026-11-23T11:00")


def test_a_complaint_at_night_counts_from_the_next_opening() -> None:
    assert add_working_hours(_msk("2026-11-23T22:30"), 4, OFFICE) == _msk("2026-11-24T13:00")


def test_working_hours_between_skip_nights_and_weekends() -> None:
    assert working_hours_between(_msk("2026-11-20T15:00"), _msk("2026-11-23T11:00"), OFFICE) == 4
    assert working_hours_between(_msk("2026-11-21T10:00"), _msk("2026-11-22T18:00"), OFFICE) == 0


def test_time_zones_are_honoured() -> None:
    # 06:00 UTC is 09:00 in Moscow: the working day has just begun.
    start = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert add_working_hours(start, 1, OFFICE) == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def test_a_calendar_must_make_sense() -> None:
    with pytest.raises(ValueError, match="open before"):
        WorkingCalendar(time(17), time(9), frozenset({0}), ZoneInfo("UTC"))
    with pytest.raises(ValueError, match="working days"):
        WorkingCalendar(time(9), time(17), frozenset(), ZoneInfo("UTC"))


def test_settings_refuse_a_working_day_that_closes_before_it_opens() -> None:
    # In every environment: a service that started with it would fail on every follow-up.
    for environment in ("development", "production"):
        with pytest.raises(ValidationError, match="MOT_WORKING_DAY_START must be before"):
            Settings(
                _env_file=None,
                environment=environment,
                secret_key=SecretStr("s" * 32),
                working_day_start=time(17),
                working_day_end=time(9),
            )


def test_the_targets_follow_the_settings() -> None:
    settings = Settings(
        _env_file=None,
        working_days="Sun, mon,sat",
        working_day_start=time(8),
        working_day_end=time(20),
        time_zone="Europe/Moscow",
        acknowledge_within_hours=2,
        resolve_within_hours=30,
    )
    targets = from_settings(settings)
    assert targets.calendar == WorkingCalendar(
        time(8), time(20), frozenset({0, 5, 6}), ZoneInfo("Europe/Moscow")
    )
    assert (targets.acknowledge_hours, targets.resolve_hours) == (2, 30)
