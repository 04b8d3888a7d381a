"""Rollups with two indexes instead of four: the primary key leads with the moment after the
breakdown and carries responses and negatives; the moment index and the partial index of
rated rows go. Every fold writes each index once per row, and these two were over a third
of a fold's time. On SQLite the table is stored in its key's order (WITHOUT ROWID), which
is the copy of the rows the rated index used to be.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 23:30:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ["dimension", "grain", "period", "moment_id", "member"]
NEW_KEY = ["dimension", "grain", "moment_id", "period", "member"]
RATES = ["responses", "negatives"]
# The counters as they are at this revision; a migration must not import the application.
COUNTERS = [
    "touchpoints",
    "complaints",
    *RATES,
    *(f"csat5_{value}" for value in range(1, 6)),
    *(f"nps11_{value}" for value in range(11)),
    *(f"ces7_{value}" for value in range(1, 8)),
    *(f"smiley4_{value}" for value in range(1, 5)),
    "thumbs_0",
    "thumbs_1",
]
MOMENT_INDEX = ("ix_moment_rollup_moment", ["moment_id", "dimension", "grain", "period"])
RATED_INDEX = (
    "ix_moment_rollup_rated",
    ["dimension", "grain", "period", "moment_id", "member", *RATES],
)
MEMBER_INDEX = ("ix_moment_rollup_member", ["dimension", "member", "grain", "period"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(RATED_INDEX[0], table_name="moment_rollup")
        op.drop_index(MOMENT_INDEX[0], table_name="moment_rollup")
        op.drop_constraint("pk_moment_rollup", "moment_rollup", type_="primary")
        # Alembic's create_primary_key knows no INCLUDE.
        op.execute(
            f"ALTER TABLE moment_rollup ADD CONSTRAINT pk_moment_rollup "
            f"PRIMARY KEY ({', '.join(NEW_KEY)}) INCLUDE ({', '.join(RATES)})"
        )
    else:
        _recreate_on_sqlite(NEW_KEY, with_rowid=False)
        _create_index(*MEMBER_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("pk_moment_rollup", "moment_rollup", type_="primary")
        op.create_primary_key("pk_moment_rollup", "moment_rollup", OLD_KEY)
    else:
        _recreate_on_sqlite(OLD_KEY, with_rowid=True)
        _create_index(*MEMBER_INDEX)
    _create_index(*MOMENT_INDEX)
    _create_index(
        *RATED_INDEX,
        postgresql_where=sa.text("responses > 0"),
        sqlite_where=sa.text("responses > 0"),
    )


def _create_index(name: str, columns: list[str], **options: Any) -> None:
    op.create_index(name, "moment_rollup", columns, **options)


def _recreate_on_sqlite(key: list[str], *, with_rowid: bool) -> None:
    """SQLite changes neither a primary key nor WITHOUT ROWID in place: copy the rows into a
    new table of the wanted shape (its indexes go with the old table)."""
    op.create_table(
        "moment_rollup_new",
        sa.Column("dimension", sa.String(length=8), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("moment_id", sa.Integer(), nullable=False),
        sa.Column("member", sa.String(length=100), nullable=False),
        *(sa.Column(name, sa.Integer(), server_default="0", nullable=False) for name in COUNTERS),
        sa.PrimaryKeyConstraint(*key, name="pk_moment_rollup"),
        sqlite_with_rowid=with_rowid,
    )
    columns = ", ".join([*OLD_KEY, *COUNTERS])
    op.execute(f"INSERT INTO moment_rollup_new ({columns}) SELECT {columns} FROM moment_rollup")
    op.drop_table("moment_rollup")
    op.rename_table("moment_rollup_new", "moment_rollup")
