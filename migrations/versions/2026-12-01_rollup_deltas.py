"""Count deltas: what writers append instead of updating the shared rollup rows.

The rollups drop their foreign key (the folder writes them in bulk) and touchpoints gain a
partial index for the latest comments of bad experiences.

Rollups also gain the `agent` dimension (per day only), counted from the touchpoints
already stored.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RATING_COLUMNS = [
    *(f"csat5_{v}" for v in range(1, 6)),
    *(f"nps11_{v}" for v in range(0, 11)),
    *(f"ces7_{v}" for v in range(1, 8)),
    *(f"smiley4_{v}" for v in range(1, 5)),
    *(f"thumbs_{v}" for v in range(0, 2)),
]
NEGATIVE = (
    "(rating_scale = 'csat5' AND rating_value <= 2) OR (rating_scale = 'nps11' AND "
    "rating_value <= 6) OR (rating_scale = 'ces7' AND rating_value <= 3) OR "
    "(rating_scale = 'smiley4' AND rating_value <= 2) OR (rating_scale = 'thumbs' AND "
    "rating_value <= 0)"
)


def upgrade() -> None:
    op.create_table(
        "rollup_delta",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moment_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("agent", sa.String(length=100), nullable=False),
        sa.Column("rating_scale", sa.String(length=16), nullable=True),
        sa.Column("rating_value", sa.Integer(), nullable=True),
        sa.Column("touchpoints", sa.Integer(), nullable=False),
        sa.Column("complaints", sa.Integer(), nullable=False),
        sa.Column("ratings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_delta")),
    )
    _count_agents()
    with op.batch_alter_table("moment_rollup") as batch:
        batch.drop_constraint("fk_moment_rollup_moment_id_moment", type_="foreignkey")
    op.create_index(
        "ix_touchpoint_negative_comment",
        "touchpoint",
        ["moment_id", "occurred_at", "id"],
        postgresql_where=sa.text("sentiment = 'negative' AND comment IS NOT NULL"),
        sqlite_where=sa.text("sentiment = 'negative' AND comment IS NOT NULL"),
    )


def _count_agents() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        day = "CAST(timezone('UTC', occurred_at) AS date)"
    else:
        day = "date(occurred_at)"
    ratings = ", ".join(
        f"sum(CASE WHEN rating_scale = '{c.split('_')[0]}' AND rating_value = "
        f"{c.split('_')[1]} THEN 1 ELSE 0 END)"
        for c in RATING_COLUMNS
    )
    columns = ", ".join(
        ["dimension", "grain", "period", "moment_id", "member", "touchpoints", "complaints"]
        + RATING_COLUMNS
        + ["responses", "negatives"]
    )
    op.execute(
        f"INSERT INTO moment_rollup ({columns}) "
        f"SELECT 'agent', 'day', {day}, moment_id, coalesce(agent, ''), count(*), "
        f"sum(CASE WHEN complaint THEN 1 ELSE 0 END), {ratings}, count(rating_scale), "
        f"sum(CASE WHEN {NEGATIVE} THEN 1 ELSE 0 END) "
        f"FROM touchpoint GROUP BY {day}, moment_id, coalesce(agent, '')"
    )


def downgrade() -> None:
    op.drop_index("ix_touchpoint_negative_comment", table_name="touchpoint")
    with op.batch_alter_table("moment_rollup") as batch:
        batch.create_foreign_key(
            "fk_moment_rollup_moment_id_moment", "moment", ["moment_id"], ["id"]
        )
    op.execute("DELETE FROM moment_rollup WHERE dimension = 'agent'")
    op.drop_table("rollup_delta")
