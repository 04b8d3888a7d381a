"""Rows written in bulk on SQLite are stored exactly as SQLAlchemy itself would store them:
the fast conversions of timestamps and dates must not change what a reader finds."""

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Table
from sqlalchemy.dialects import sqlite

from app.bulk_write import stored_form
from app.rollups.models import RollupDelta
from app.touchpoints.models import Touchpoint

TOUCHPOINT = cast(Table, Touchpoint.__table__)
DELTA = cast(Table, RollupDelta.__table__)
DIALECT = sqlite.dialect()


def _sqlalchemy_form(table: Table, name: str, value: Any) -> Any:
    process = table.c[name].type.dialect_impl(DIALECT).bind_processor(DIALECT)
    return value if process is None else process(value)


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
        datetime(2026, 6, 1, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 6, 1, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(1, 1, 1, 0, 0, tzinfo=UTC),
        None,
    ],
)
def test_timestamps_are_stored_as_sqlalchemy_stores_them(value: datetime | None) -> None:
    convert = stored_form(TOUCHPOINT, "occurred_at", DIALECT)
    assert convert is not None
    assert convert(value) == _sqlalchemy_form(TOUCHPOINT, "occurred_at", value)


def test_a_naive_timestamp_is_refused_as_sqlalchemy_refuses_it() -> None:
    convert = stored_form(TOUCHPOINT, "received_at", DIALECT)
    assert convert is not None
    naive = datetime(2026, 6, 1, 12, 0)
    with pytest.raises(ValueError, match="naive"):
        _sqlalchemy_form(TOUCHPOINT, "received_at", naive)
    with pytest.raises(ValueError, match="naive"):
        convert(naive)


@pytest.mark.parametrize("value", [date(2026, 12, 31), date(1, 1, 1), None])
def test_dates_are_stored_as_sqlalchemy_stores_them(value: date | None) -> None:
    convert = stored_form(DELTA, "day", DIALECT)
    assert convert is not None
    assert convert(value) == _sqlalchemy_form(DELTA, "day", value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("attributes", {"desk": "north", "tier": 2}),
        ("attributes", None),  # JSON 'null' text
        ("factors", ["waited", "rude"]),
        ("factors", None),  # SQL NULL: the column says so
    ],
)
def test_json_keeps_the_column_types_own_rules(name: str, value: object) -> None:
    convert = stored_form(TOUCHPOINT, name, DIALECT)
    assert convert is not None
    assert convert(value) == _sqlalchemy_form(TOUCHPOINT, name, value)
