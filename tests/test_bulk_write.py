"""Rows written in bulk on SQLite are stored exactly as SQLAlchemy itself would store them:
the fast conversions of timestamps and dates must not change what a reader finds."""

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Table, text
from sqlalchemy.dialects import sqlite

from app.bulk_write import stored_form, write_rows
from app.db import Database
from app.rollups.models import RollupDelta
from app.rollups.service import DELTA_COLUMNS
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


@pytest.mark.anyio
async def test_a_batch_repeating_instants_stores_each_row_as_sqlalchemy_would(
    backend: str, database_url: str
) -> None:
    # A batch's rows share most timestamps and days, and each distinct one is converted
    # once: the same instant given in another zone, or a new one, must still come out right.
    if backend != "sqlite":
        pytest.skip("only SQLite stores converted values; PostgreSQL is sent them by COPY")
    noon = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    instants = [noon, noon, noon.astimezone(timezone(timedelta(hours=-5))), noon + timedelta(1)]
    rows = [(at, 7, at.date(), "red", "call", "", "csat5", 4, 1, 0, 1) for at in instants]
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            await write_rows(await session.connection(), DELTA, DELTA_COLUMNS, rows)
            stored = (
                await session.execute(text("SELECT recorded_at, day FROM rollup_delta ORDER BY id"))
            ).all()
    finally:
        await database.dispose()
    assert [tuple(row) for row in stored] == [
        (_sqlalchemy_form(DELTA, "recorded_at", at), _sqlalchemy_form(DELTA, "day", at.date()))
        for at in instants
    ]
