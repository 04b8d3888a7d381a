"""Writing many rows at once by each driver's fastest path.

PostgreSQL: binary COPY, through the psycopg connection under SQLAlchemy's and so in the
same transaction. SQLite: one executemany of values already in their stored form, without
SQLAlchemy's per-value processing (a batch writes thousands of rows of a dozen columns).
"""

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Date, Dialect, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import UtcDateTime

_copy_types: dict[tuple[str, tuple[str, ...]], list[int]] = {}
"""The PostgreSQL type (oid) of each column written by COPY, by table and columns: read once
per process from the catalogue (the built-in types' oids are the same in every database)."""

_COLUMN_TYPES = text(
    "SELECT attname, atttypid FROM pg_attribute "
    "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped"
)


async def _types_of(connection: AsyncConnection, table: Table, columns: Sequence[str]) -> list[int]:
    key = (table.name, tuple(columns))
    found = _copy_types.get(key)
    if found is None:
        result = await connection.execute(_COLUMN_TYPES, {"table": table.name})
        oids: dict[str, int] = {name: oid for name, oid in result}
        found = _copy_types[key] = [oids[name] for name in columns]
    return found


async def write_rows(
    connection: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Write rows (tuples in `columns` order) by the driver's fastest path."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        await _execute_many(connection, table, columns, rows)
        return
    types = await _types_of(connection, table, columns)
    raw = await connection.get_raw_connection()
    driver_connection: Any = raw.driver_connection
    # In the binary format, with every column's type given: the driver packs numbers and
    # timestamps as they are, where the text format would print each of them (a third of
    # the time), and JSON columns take Python values without a wrapper.
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    async with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(types)
        # A row costs microseconds here and a batch has thousands: no work per row
        # beyond the driver's own.
        write = copy.write_row
        for row in rows:
            await write(row)


Convert = Callable[[Any], Any]


def _date_text(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def stored_form(table: Table, name: str, dialect: Dialect) -> Convert | None:
    """How a value of the column becomes what SQLite stores, or None if it goes as it is:
    timestamps and dates printed by C-implemented `isoformat` where SQLAlchemy formats them
    in Python, anything else by the column type's own processor (JSON keeps its rules for
    None)."""
    column_type = table.c[name].type
    if isinstance(column_type, UtcDateTime):
        # The type's own check and conversion (naive UTC on SQLite), then the text
        # SQLAlchemy's SQLite DATETIME would make of it, always with microseconds. Values
        # already in UTC (the service's own clock, and inputs once validated) skip the
        # conversion.
        naive_utc = column_type.process_bind_param

        def utc_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC:
                value = naive_utc(value, dialect)
                return None if value is None else value.isoformat(" ", "microseconds")
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return utc_text
    implementation = column_type.dialect_impl(dialect)
    if isinstance(implementation, Date):
        return _date_text
    process = implementation.bind_processor(dialect)
    if process is None:
        return None
    # Most optional values are absent: what None becomes is worked out once (for JSON a
    # serialisation of its own: 'null' text, or SQL NULL where the column says so).
    absent = process(None)
    return lambda value: absent if value is None else process(value)


class _Conversion(NamedTuple):
    position: int
    convert: Convert
    shared: bool
    """Values of this column repeat across the rows of a batch (timestamps and days: all
    received, and rated, at once), and are hashable: each distinct one is converted once."""


_conversions: dict[tuple[str, tuple[str, ...]], list[_Conversion]] = {}


def _remembering(convert: Convert) -> Convert:
    done: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        found = done.get(value, _MISSING)
        if found is _MISSING:
            found = done[value] = convert(value)
        return found

    return remembered


_MISSING = object()


async def _execute_many(
    connection: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    dialect = connection.dialect
    key = (table.name, tuple(columns))
    conversions = _conversions.get(key)
    if conversions is None:
        conversions = _conversions[key] = [
            _Conversion(i, convert, isinstance(table.c[name].type, UtcDateTime | Date))
            for i, name in enumerate(columns)
            if (convert := stored_form(table, name, dialect)) is not None
        ]
    batch = [(c.position, _remembering(c.convert) if c.shared else c.convert) for c in conversions]

    def stored(row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for i, convert in batch:
            values[i] = convert(values[i])
        return tuple(values)

    quote = dialect.identifier_preparer.quote
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    await connection.exec_driver_sql(
        statement, [stored(row) for row in rows] if conversions else list(rows)
    )
