"""Improvement actions: a change made to a moment, recorded with its date, so that the
negative rate before and after it can be compared.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "improvement_action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("moment_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("factor", sa.String(length=100), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["moment_id"],
            ["moment.id"],
            name=op.f("fk_improvement_action_moment_id_moment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_improvement_action")),
        # Action ids are named in URLs: never given out twice (SQLite's AUTOINCREMENT).
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_improvement_action_moment_id_done_at",
        "improvement_action",
        ["moment_id", "done_at", "id"],
    )
    op.create_index("ix_improvement_action_done_at", "improvement_action", ["done_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_improvement_action_done_at", table_name="improvement_action")
    op.drop_index("ix_improvement_action_moment_id_done_at", table_name="improvement_action")
    op.drop_table("improvement_action")
