"""Monthly partitions of the touchpoints on PostgreSQL: created ahead, dropped past retention.

Touchpoints are partitioned by `occurred_at`, one partition per UTC calendar month, named
`touchpoint_yYYYYmMM`. A DEFAULT partition, `touchpoint_default`, takes any other time
(long ago, far ahead), so that an insert never fails for want of a partition. SQLite
keeps one table: every function here does nothing there.
"""

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import ForeignKeyConstraint, Index, Table, UniqueConstraint, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, utcnow
from app.touchpoints.models import POSTGRESQL_ONLY, Touchpoint

logger = logging.getLogger(__name__)

DEFAULT_PARTITION = "touchpoint_default"
ENSURE_LOCK = 0x6D6F74_10
"""PostgreSQL advisory lock held while partitions are created: one instance at a time."""
LOCK_TIMEOUT = "5s"
"""How long creating or dropping a partition waits for the locks it needs. A DDL statement
waiting for a lock makes every later query of the table wait behind it: better to give up
and try again later."""
_NAME = re.compile(r"touchpoint_y(\d{4})m(\d{2})")
EXTERNAL_ID_INDEX = "ix_touchpoint_external_id"
"""PostgreSQL's index of the external ids in every partition: not unique there, since
`touchpoint_key` keeps them unique."""
_COLUMNS = ", ".join(cast(Table, Touchpoint.__table__).c.keys())


@dataclass(frozen=True, slots=True)
class MonthPartition:
    """The partition of the touchpoints that occurred from `start` until `end` (excluded)."""

    name: str
    start: datetime
    end: datetime


def month_partition(month: date) -> MonthPartition:
    """The partition of the month `month` falls in."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return MonthPartition(f"touchpoint_y{start.year:04d}m{start.month:02d}", start, end)


def months_from(month: date, count: int) -> list[MonthPartition]:
    """The partitions of `count` months from the one `month` falls in."""
    partitions = [month_partition(month)]
    while len(partitions) < count:
        partitions.append(month_partition(partitions[-1].end.date()))
    return partitions[:count]


def is_partition(table_name: str) -> bool:
    """Whether a table is one of the touchpoints' partitions."""
    return table_name == DEFAULT_PARTITION or _NAME.fullmatch(table_name) is not None


def same_on_postgresql(
    item: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Whether Alembic, comparing the models with a PostgreSQL database, should compare
    this item (its `include_object` hook): not what the partitioned layout does otherwise
    than the one table the models declare.

    Skipped: the partitions, the tables of `POSTGRESQL_ONLY` (compared on their own), the
    foreign keys to `touchpoint.id` and the unique external id, which PostgreSQL keeps
    in `touchpoint_key` and indexes as `EXTERNAL_ID_INDEX`.
    """
    if type_ == "table":
        return not (name is not None and (is_partition(name) or name in POSTGRESQL_ONLY.tables))
    if type_ == "foreign_key_constraint" and isinstance(item, ForeignKeyConstraint):
        return item.referred_table.name != "touchpoint"
    if type_ == "unique_constraint" and isinstance(item, UniqueConstraint):
        return not (item.table.name == "touchpoint" and item.columns.keys() == ["external_id"])
    if type_ == "index" and isinstance(item, Index):
        return name != EXTERNAL_ID_INDEX
    return True


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def monthly_partitions(session: AsyncSession) -> list[MonthPartition]:
    """The monthly partitions there are, oldest first; none on SQLite."""
    if not _is_postgresql(session):
        return []
    names = await session.scalars(
        text(
            "SELECT child.relname FROM pg_inherits "
            "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = 'touchpoint'::regclass"
        )
    )
    found = []
    for name in names:
        if (match := _NAME.fullmatch(name)) is not None:
            found.append(month_partition(date(int(match[1]), int(match[2]), 1)))
    return sorted(found, key=lambda partition: partition.start)


async def ensure(session: AsyncSession, *, today: date, months_ahead: int) -> list[str]:
    """Create the partitions of this month and the next `months_ahead` that are missing;
    return their names.

    Idempotent, and one instance at a time (an advisory lock held until the transaction
    ends). Touchpoints of such a month already stored in the default partition move into
    the new one.
    """
    if not _is_postgresql(session):
        return []
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ENSURE_LOCK})
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    existing = {partition.name for partition in await monthly_partitions(session)}
    created = []
    for partition in months_from(today, months_ahead + 1):
        if partition.name not in existing:
            await _create(session, partition)
            created.append(partition.name)
    return created


async def _create(session: AsyncSession, partition: MonthPartition) -> None:
    # Made apart and attached, rather than CREATE TABLE ... PARTITION OF: attaching locks
    # the parent table only against other schema changes, so ingestion goes on meanwhile,
    # and the rows of the month that the default partition holds can move in first.
    name = partition.name
    await session.execute(
        text(
            f"CREATE TABLE {name} (LIKE touchpoint INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING STORAGE)"
        )
    )
    await session.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
            f"WHERE occurred_at >= :start AND occurred_at < :end RETURNING {_COLUMNS}) "
            f"INSERT INTO {name} ({_COLUMNS}) SELECT {_COLUMNS} FROM moved"
        ),
        {"start": partition.start, "end": partition.end},
    )
    await session.execute(
        text(
            f"ALTER TABLE touchpoint ATTACH PARTITION {name} FOR VALUES "
            f"FROM ('{partition.start.isoformat()}') TO ('{partition.end.isoformat()}')"
        )
    )


async def lock_for_drop(session: AsyncSession, partition: MonthPartition) -> None:
    """Stop every write to the partition until the transaction ends (reads go on)."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    await session.execute(text(f"LOCK TABLE {partition.name} IN EXCLUSIVE MODE"))


async def drop(session: AsyncSession, partition: MonthPartition, *, keep: Sequence[int]) -> None:
    """Detach and drop a partition, moving the touchpoints numbered `keep` out of it first.

    Detached, its month is no partition's any more: the kept rows land in the default one.
    """
    await session.execute(text(f"ALTER TABLE touchpoint DETACH PARTITION {partition.name}"))
    if keep:
        await session.execute(
            text(
                f"INSERT INTO touchpoint ({_COLUMNS}) SELECT {_COLUMNS} FROM {partition.name} "
                "WHERE id = ANY(:ids)"
            ),
            {"ids": list(keep)},
        )
    await session.execute(text(f"DROP TABLE {partition.name}"))


async def run_ensurer(database: Database, *, months_ahead: int, interval: float) -> None:
    """Ensure the partitions ahead now and every `interval` seconds until cancelled; a
    failed attempt is logged and retried (inserts meanwhile land in the default one)."""
    while True:
        try:
            async with database.write_sessions() as session, session.begin():
                created = await ensure(session, today=utcnow().date(), months_ahead=months_ahead)
            if created:
                logger.info("touchpoint partitions created: %s", ", ".join(created))
        except Exception:
            logger.exception("creating the touchpoint partitions ahead failed; retrying")
        await asyncio.sleep(interval)
