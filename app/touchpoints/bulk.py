"""Bulk insert of new touchpoints, and the ids already stored.

The caller has already set aside ids it found stored, so the rows are normally all new.

On PostgreSQL the touchpoints are partitioned by month and their external ids are kept
unique in `touchpoint_key`: one ``INSERT ... SELECT FROM json_array_elements(...) ON CONFLICT
(external_id) DO NOTHING RETURNING`` claims the ids, in id order, and exactly the rows
whose id it claimed are then written by COPY. A concurrent request claiming the same id
waits for this one's transaction, then finds the id taken.

On SQLite the rows are numbered and written by executemany inside a savepoint. Only when
a concurrent request stored one of the same ids in between does that fail on the unique
key; the savepoint is then rolled back and the rows go through a temporary table and one
``INSERT ... SELECT ... ON CONFLICT (external_id) DO NOTHING RETURNING``, which stores
exactly the rows nobody else stored.
"""

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

import psycopg
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Select,
    Table,
    delete,
    select,
    text,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.schema import CreateTable

from app.bulk_write import write_rows
from app.db import dialect_insert, one_of
from app.touchpoints.models import Touchpoint, touchpoint_key


class TouchpointRow(NamedTuple):
    """A touchpoint as written, in the column order of the insert."""

    external_id: str
    content_hash: str
    moment_id: int
    channel: str
    occurred_at: datetime
    received_at: datetime
    client_ref: str | None
    team: str | None
    agent: str | None
    source: str | None
    rating_scale: str | None
    rating_value: int | None
    score: float | None
    sentiment: str | None
    rated_at: datetime | None
    comment: str | None
    complaint: bool
    attributes: dict[str, Any] | None
    factors: list[str] | None
    lost_minutes: int | None


COLUMNS = TouchpointRow._fields
_NUMBERED = (*COLUMNS, "id")
"""The columns written: a row and the id given to it up front."""
# SQLite: the next ids AUTOINCREMENT would give, numbered by the writer itself so that the
# rows need not be looked up again (a write transaction holds the file: no other writer
# can take them in between, and one that did would fail the insert on the key).
_NEXT_SQLITE_ID = text(
    "SELECT 1 + max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'touchpoint'), 0), "
    "coalesce((SELECT max(id) FROM touchpoint), 0))"
)

# The mapped table, typed as the Table it is (the ORM declares it as a FromClause).
_touchpoint = cast(Table, Touchpoint.__table__)
_stage = Table(
    "touchpoint_stage",
    MetaData(),
    Column("position", Integer, nullable=False),
    *(Column(name, _touchpoint.c[name].type) for name in COLUMNS),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)


Created = Mapping[str, int | None]
"""The external ids stored now, each with its row id where it was given up front, or None
(SQLite, when a concurrent request stored some of the same ids)."""


async def insert_new(session: AsyncSession, rows: Sequence[TouchpointRow]) -> Created:
    """Insert rows; return the external ids stored now, with their row ids.

    Rows whose external id is already stored are skipped, never overwritten.
    """
    if not rows:
        return {}
    # In id order, the same for every request: an insert waits for a concurrent request that
    # wrote the same id and has not committed yet. In each request's own order, two requests
    # could each wait for an id the other holds, and PostgreSQL would abort one of them.
    rows = sorted(rows, key=lambda row: row.external_id)
    if session.get_bind().dialect.name == "postgresql":
        return await _claim_and_copy(await session.connection(), rows)
    try:
        async with session.begin_nested():
            connection = await session.connection()
            first = int(await connection.scalar(_NEXT_SQLITE_ID) or 1)
            ids = {row.external_id: first + position for position, row in enumerate(rows)}
            await _write_with_ids(connection, rows, ids)
        return ids
    except (IntegrityError, psycopg.errors.UniqueViolation):
        return await _insert_skipping_stored(await session.connection(), session, rows)


async def _insert_skipping_stored(
    connection: AsyncConnection, session: AsyncSession, rows: Sequence[TouchpointRow]
) -> Created:
    await connection.execute(CreateTable(_stage, if_not_exists=True))
    staged_columns = ("position", *COLUMNS)
    positioned = [(position, *row) for position, row in enumerate(rows)]
    await write_rows(connection, _stage, staged_columns, positioned)
    move = (
        dialect_insert(session, _touchpoint)
        .from_select(
            list(COLUMNS),
            select(*(_stage.c[name] for name in COLUMNS))
            # WHERE keeps SQLite from reading ON CONFLICT as a join clause.
            .where(true())
            .order_by(_stage.c.position),
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(_touchpoint.c.external_id)
    )
    created = dict.fromkeys((await connection.execute(move)).scalars())
    await connection.execute(delete(_stage))
    return created


# The ids and hashes go as one JSON text: the driver dumps a list of a thousand strings
# as an array parameter in Python, item by item, where `json.dumps` takes a fraction of it.
# Each id claimed takes its row id from the sequence of the row's own default, so that the
# rows are written with it and nothing has to look them up by external id afterwards (that
# probes every partition's index).
_CLAIM = text(
    "INSERT INTO touchpoint_key (external_id, content_hash) "
    "SELECT pair ->> 0, pair ->> 1 FROM json_array_elements(CAST(:pairs AS json)) "
    "WITH ORDINALITY AS claimed (pair, position) ORDER BY position "
    "ON CONFLICT (external_id) DO NOTHING "
    "RETURNING external_id, nextval('touchpoint_id_seq')"
)


async def _claim_and_copy(
    connection: AsyncConnection, rows: Sequence[TouchpointRow]
) -> dict[str, int]:
    pairs = json.dumps([(row.external_id, row.content_hash) for row in rows])
    result = await connection.execute(_CLAIM, {"pairs": pairs})
    claimed: dict[str, int] = {external_id: row_id for external_id, row_id in result}
    await _write_with_ids(connection, rows, claimed)
    return claimed


async def _write_with_ids(
    connection: AsyncConnection, rows: Sequence[TouchpointRow], ids: Mapping[str, int]
) -> None:
    """Write the rows whose external id `ids` gives a row id, each with that id."""
    numbered = [(*row, ids[row.external_id]) for row in rows if row.external_id in ids]
    if numbered:
        await write_rows(connection, _touchpoint, _NUMBERED, numbered)


async def stored_hashes(session: AsyncSession, external_ids: Sequence[str]) -> dict[str, str]:
    """The content hash of each of these external ids that is stored, by id."""
    if not external_ids:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        columns = (touchpoint_key.c.external_id, touchpoint_key.c.content_hash)
    else:
        columns = (_touchpoint.c.external_id, _touchpoint.c.content_hash)
    result = await session.execute(
        select(*columns).where(one_of(session, columns[0], external_ids))
    )
    return {external_id: content_hash for external_id, content_hash in result.all()}


async def forget(session: AsyncSession, external_ids: Select[str]) -> None:
    """Free the external ids of touchpoints about to be deleted, so that they may be posted
    again; on SQLite they go with their rows."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            delete(touchpoint_key).where(touchpoint_key.c.external_id.in_(external_ids))
        )
