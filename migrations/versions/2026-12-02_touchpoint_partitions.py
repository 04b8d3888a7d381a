"""Touchpoints on PostgreSQL are split into monthly partitions by `occurred_at`.

A retention purge then drops a whole month instead of deleting it row by row, and a
query over a window reads only the months it covers. SQLite keeps one table: this
migration does nothing there.

The partitioned table is built from the old one's definition (`LIKE`), so it carries
every column whatever earlier migrations added; every index of the old table is created
again on it from its own definition. Each month that holds touchpoints gets a partition,
as do this month and the next three; a DEFAULT partition takes any other time, so that an
insert never fails for want of a partition. The rows are copied over in one transaction.

PostgreSQL cannot enforce a unique index across partitions unless it holds the partition
key, so the external ids move to a narrow table of their own, `touchpoint_key`, whose
primary key keeps each id unique whatever the touchpoint's time; ingestion claims its ids
there before it writes the touchpoints. The primary key becomes (id, occurred_at), and the
foreign keys that named `touchpoint.id` alone are dropped: erasure and purge delete what
hangs off a touchpoint themselves, and writers lock the touchpoint they attach rows to.

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-02 18:00:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTHS_AHEAD = 3
DEPENDANTS = ("rating_history", "follow_up", "survey")
"""The tables whose `touchpoint_id` referenced `touchpoint.id`, deleting with it."""
EXTERNAL_ID_INDEX = "ix_touchpoint_external_id"


def _month_after(month: datetime) -> datetime:
    return month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)


def _partition_name(month: datetime) -> str:
    return f"touchpoint_y{month.year:04d}m{month.month:02d}"


def _indexes_of(table: str) -> list[str]:
    """The definitions of the table's indexes that no constraint owns."""
    rows = op.get_bind().execute(
        sa.text(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = CAST(:table AS regclass) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
        ),
        {"table": table},
    )
    return list(rows.scalars())


def _foreign_keys_of(table: str) -> list[tuple[str, str]]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:table AS regclass) AND contype = 'f'"
        ),
        {"table": table},
    )
    return [(name, definition) for name, definition in rows.all()]


def _id_sequence() -> str:
    return str(op.get_bind().scalar(sa.text("SELECT pg_get_serial_sequence('touchpoint', 'id')")))


def _copy_of_touchpoint(name: str, *, partitioned: bool) -> None:
    partitioning = " PARTITION BY RANGE (occurred_at)" if partitioned else ""
    op.execute(
        f"CREATE TABLE {name} (LIKE touchpoint INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING STORAGE INCLUDING COMMENTS){partitioning}"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    referencing = bind.execute(
        sa.text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE confrelid = 'touchpoint'::regclass AND contype = 'f'"
        )
    ).all()
    unexpected = {table for table, _ in referencing} - set(DEPENDANTS)
    if unexpected:
        raise RuntimeError(f"foreign keys to touchpoint this migration does not know: {unexpected}")
    for table, constraint in referencing:
        op.drop_constraint(constraint, table, type_="foreignkey")
    indexes = _indexes_of("touchpoint")
    outgoing = _foreign_keys_of("touchpoint")
    sequence = _id_sequence()

    _copy_of_touchpoint("touchpoint_partitioned", partitioned=True)
    now = datetime.now(UTC)
    month = datetime(now.year, now.month, 1)
    months = {month}
    for _ in range(MONTHS_AHEAD):
        month = _month_after(month)
        months.add(month)
    stored = bind.execute(
        sa.text(
            "SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC') FROM touchpoint"
        )
    )
    months.update(stored.scalars())
    for start in sorted(months):
        op.execute(
            f"CREATE TABLE {_partition_name(start)} PARTITION OF touchpoint_partitioned "
            f"FOR VALUES FROM ('{start.isoformat()}+00:00') "
            f"TO ('{_month_after(start).isoformat()}+00:00')"
        )
    op.execute("CREATE TABLE touchpoint_default PARTITION OF touchpoint_partitioned DEFAULT")
    op.execute("INSERT INTO touchpoint_partitioned SELECT * FROM touchpoint")

    op.create_table(
        "touchpoint_key",
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("external_id", name="pk_touchpoint_key"),
    )
    op.execute(
        "INSERT INTO touchpoint_key (external_id, content_hash) "
        "SELECT external_id, content_hash FROM touchpoint"
    )

    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY touchpoint_partitioned.id")
    op.execute("DROP TABLE touchpoint")
    op.execute("ALTER TABLE touchpoint_partitioned RENAME TO touchpoint")
    op.create_primary_key("pk_touchpoint", "touchpoint", ["id", "occurred_at"])
    for name, definition in outgoing:
        op.execute(f"ALTER TABLE touchpoint ADD CONSTRAINT {name} {definition}")
    for definition in indexes:
        op.execute(definition)
    # Reads by external id still find their row by index, one small probe per partition.
    op.create_index(EXTERNAL_ID_INDEX, "touchpoint", ["external_id"])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    indexes = [
        # A partitioned table's index is defined ON ONLY the parent.
        definition.replace(" ON ONLY ", " ON ")
        for definition in _indexes_of("touchpoint")
        if f" {EXTERNAL_ID_INDEX} " not in definition
    ]
    outgoing = _foreign_keys_of("touchpoint")
    sequence = _id_sequence()
    _copy_of_touchpoint("touchpoint_single", partitioned=False)
    op.execute("INSERT INTO touchpoint_single SELECT * FROM touchpoint")
    op.execute(f"ALTER SEQUENCE {sequence} OWNED BY touchpoint_single.id")
    op.execute("DROP TABLE touchpoint")  # and its partitions
    op.drop_table("touchpoint_key")
    op.execute("ALTER TABLE touchpoint_single RENAME TO touchpoint")
    op.create_primary_key("pk_touchpoint", "touchpoint", ["id"])
    op.create_unique_constraint("uq_touchpoint_external_id", "touchpoint", ["external_id"])
    for name, definition in outgoing:
        op.execute(f"ALTER TABLE touchpoint ADD CONSTRAINT {name} {definition}")
    for definition in indexes:
        op.execute(definition)
    for table in DEPENDANTS:
        op.create_foreign_key(
            f"fk_{table}_touchpoint_id_touchpoint",
            table,
            "touchpoint",
            ["touchpoint_id"],
            ["id"],
            ondelete="CASCADE",
        )
