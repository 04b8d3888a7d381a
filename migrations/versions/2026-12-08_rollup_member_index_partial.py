"""The rollups' member index covers teams and channels only on PostgreSQL: those are the
breakdowns read one member at a time. The moment as a whole (`all`) is read through the
key, and agents only one moment at a time; their rows, about two fifths of what every fold
writes, no longer add an entry to this index each. SQLite keeps the whole index: it is told
which index to read by name, and the hint must fit every breakdown.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 01:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_moment_rollup_member"
COLUMNS = ["dimension", "member", "grain", "period"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(NAME, table_name="moment_rollup")
        op.create_index(
            NAME,
            "moment_rollup",
            COLUMNS,
            postgresql_where=sa.text("dimension = 'team' OR dimension = 'channel'"),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(NAME, table_name="moment_rollup")
        op.create_index(NAME, "moment_rollup", COLUMNS)
