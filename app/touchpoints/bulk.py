"""Bulk insert of new touchpoints: stage the rows, then move them over in one statement.

Rows go into a per-connection temporary table (PostgreSQL: COPY; SQLite: executemany),
then a single ``INSERT ... SELECT ... ON CONFLICT (external_id) DO NOTHING RETURNING``
moves them into ``touchpoint``. The conflict clause makes concurrent posts of the same id
safe without locks: exactly one insert wins, the others see a duplicate.
"""

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Column, Integer, MetaData, Table, delete, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable

from app.db import dialect_insert
from app.touchpoints.models import Touchpoint

STAGED_COLUMNS = (
    "external_id",
    "content_hash",
    "moment_id",
    "channel",
    "occurred_at",
    "received_at",
    "client_ref",
    "team",
    "agent",
    "source",
    "rating_scale",
    "rating_value",
    "score",
    "sentiment",
    "rated_at",
    "comment",
    "complaint",
    "attributes",
)

_touchpoint_table = Touchpoint.__table__
stage = Table(
    "touchpoint_stage",
    MetaData(),
    Column("position", Integer, nullable=False),
    *(Column(name, _touchpoint_table.c[name].type) for name in STAGED_COLUMNS),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)
_create_stage = CreateTable(stage, if_not_exists=True)


async def insert_new(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """Insert rows (values in `STAGED_COLUMNS` order); return the external ids stored now.

    Rows whose external id is already stored are skipped, not overwritten.
    """
    if not rows:
        return set()
    connection = await session.connection()
    await connection.execute(_create_stage)
    if connection.dialect.name == "postgresql":
        await _copy_into_stage(session, rows)
    else:
        names = ("position", *STAGED_COLUMNS)
        await connection.execute(
            stage.insert(), [dict(zip(names, (i, *row), strict=True)) for i, row in enumerate(rows)]
        )
    move = (
        dialect_insert(session, _touchpoint_table)
        .from_select(
            list(STAGED_COLUMNS),
            select(*(stage.c[name] for name in STAGED_COLUMNS))
            # WHERE keeps SQLite from reading ON CONFLICT as a join clause.
            .where(true())
            .order_by(stage.c.position),
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(_touchpoint_table.c.external_id)
    )
    created = set((await connection.execute(move)).scalars())
    await connection.execute(delete(stage))
    return created


async def _copy_into_stage(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver_connection: Any = raw.driver_connection
    attributes_at = STAGED_COLUMNS.index("attributes")
    columns = ", ".join(("position", *STAGED_COLUMNS))
    async with driver_connection.cursor() as cursor:
        async with cursor.copy(f"COPY touchpoint_stage ({columns}) FROM STDIN") as copy:
            for position, row in enumerate(rows):
                values = list(row)
                if values[attributes_at] is not None:
                    values[attributes_at] = Jsonb(values[attributes_at])
                await copy.write_row((position, *values))
