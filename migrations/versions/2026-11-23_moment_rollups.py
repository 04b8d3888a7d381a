"""Moment rollups: counts per moment, UTC day and month, overall, per team and per channel.

Existing touchpoints are counted into the new table, so insights see them at once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:28:52.884642
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "moment_rollup",
        sa.Column("dimension", sa.String(length=8), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("moment_id", sa.Integer(), nullable=False),
        sa.Column("member", sa.String(length=100), nullable=False),
        sa.Column("touchpoints", sa.Integer(), server_default="0", nullable=False),
        sa.Column("complaints", sa.Integer(), server_default="0", nullable=False),
        sa.Column("responses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("negatives", sa.Integer(), server_default="0", nullable=False),
        sa.Column("csat5_1", sa.Integer(), server_default="0", nullable=False),
        sa.Column("csat5_2", sa.Integer(), server_default="0", nullable=False),
        sa.Column("csat5_3", sa.Integer(), server_default="0", nullable=False),
        sa.Column("csat5_4", sa.Integer(), server_default="0", nullable=False),
        sa.Column("csat5_5", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_0", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_1", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_2", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_3", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_4", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_5", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_6", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_7", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_8", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_9", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nps11_10", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ces7_1", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ces7_2", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ces7_3", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ces7_4", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ces7_5", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ces7_6", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ces7_7", sa.Integer(), server_default="0", nullable=False),
        sa.Column("smiley4_1", sa.Integer(), server_default="0", nullable=False),
        sa.Column("smiley4_2", sa.Integer(), server_default="0", nullable=False),
        sa.Column("smiley4_3", sa.Integer(), server_default="0", nullable=False),
        sa.Column("smiley4_4", sa.Integer(), server_default="0", nullable=False),
        sa.Column("thumbs_0", sa.Integer(), server_default="0", nullable=False),
        sa.Column("thumbs_1", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["moment_id"], ["moment.id"], name=op.f("fk_moment_rollup_moment_id_moment")
        ),
        sa.PrimaryKeyConstraint(
            "dimension", "grain", "period", "moment_id", "member", name=op.f("pk_moment_rollup")
        ),
    )
    with op.batch_alter_table("moment_rollup", schema=None) as batch_op:
        batch_op.create_index(
            "ix_moment_rollup_member", ["dimension", "member", "grain", "period"], unique=False
        )
        batch_op.create_index(
            "ix_moment_rollup_moment", ["moment_id", "dimension", "grain", "period"], unique=False
        )
        batch_op.create_index(
            "ix_moment_rollup_rated",
            ["dimension", "grain", "period", "moment_id", "member", "responses", "negatives"],
            unique=False,
            postgresql_where=sa.text("responses > 0"),
            sqlite_where=sa.text("responses > 0"),
        )

    _count_existing_touchpoints()


def downgrade() -> None:
    with op.batch_alter_table("moment_rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_moment_rollup_rated")
        batch_op.drop_index("ix_moment_rollup_moment")
        batch_op.drop_index("ix_moment_rollup_member")

    op.drop_table("moment_rollup")


# The scales as they were at this revision; a migration must not import the application.
SCALE_VALUES = {
    "csat5": range(1, 6),
    "nps11": range(0, 11),
    "ces7": range(1, 8),
    "smiley4": range(1, 5),
    "thumbs": range(0, 2),
}
# Each breakdown: the member it counts under and the columns it groups by.
DIMENSIONS = {
    "all": ("''", ""),
    "team": ("COALESCE(team, '')", ", COALESCE(team, '')"),
    "channel": ("channel", ", channel"),
}


def _count_existing_touchpoints() -> None:
    if op.get_bind().dialect.name == "postgresql":
        periods = {
            "day": "CAST(timezone('UTC', occurred_at) AS DATE)",
            "month": "CAST(date_trunc('month', timezone('UTC', occurred_at)) AS DATE)",
        }
    else:
        periods = {"day": "date(occurred_at)", "month": "date(occurred_at, 'start of month')"}
    rating_columns = [
        f"{scale}_{value}" for scale, values in SCALE_VALUES.items() for value in values
    ]
    rating_counts = [
        f"SUM(CASE WHEN rating_scale = '{scale}' AND rating_value = {value} THEN 1 ELSE 0 END)"
        for scale, values in SCALE_VALUES.items()
        for value in values
    ]
    for dimension, (member, grouping) in DIMENSIONS.items():
        for grain, period in periods.items():
            op.execute(
                f"INSERT INTO moment_rollup (dimension, grain, period, moment_id, member, "
                f"touchpoints, complaints, responses, negatives, {', '.join(rating_columns)}) "
                f"SELECT '{dimension}', '{grain}', {period}, moment_id, {member}, COUNT(*), "
                f"SUM(CASE WHEN complaint THEN 1 ELSE 0 END), COUNT(rating_scale), "
                f"SUM(CASE WHEN sentiment = 'negative' THEN 1 ELSE 0 END), "
                f"{', '.join(rating_counts)} "
                f"FROM touchpoint GROUP BY {period}, moment_id{grouping}"
            )
