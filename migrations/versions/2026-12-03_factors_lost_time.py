"""Factors and lost time: why an answer was good or bad, and how much time it cost.

Moments gain their list of factors (null: the channel's defaults); touchpoints and the
ratings they replaced gain the factors picked and the minutes lost. The answers carrying
them are counted per moment, UTC day and sentiment in `detail_rollup`, from deltas that
writers append to `detail_delta`, broken down by team and channel as the rollups are.
No touchpoint stored before carries either, so the counts start empty.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _factor_keys() -> sa.JSON:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def upgrade() -> None:
    with op.batch_alter_table("moment") as batch:
        batch.add_column(sa.Column("factors", sa.JSON(none_as_null=True), nullable=True))
    for table in ("touchpoint", "rating_history"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("factors", _factor_keys(), nullable=True))
            batch.add_column(sa.Column("lost_minutes", sa.SmallInteger(), nullable=True))
    op.create_table(
        "detail_rollup",
        sa.Column("dimension", sa.String(length=8), nullable=False),
        sa.Column("member", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("moment_id", sa.Integer(), nullable=False),
        sa.Column("sentiment", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item", sa.String(length=40), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dimension",
            "member",
            "day",
            "moment_id",
            "sentiment",
            "kind",
            "item",
            name=op.f("pk_detail_rollup"),
        ),
    )
    op.create_table(
        "detail_delta",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("moment_id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("sentiment", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("item", sa.String(length=40), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_detail_delta")),
    )


def downgrade() -> None:
    op.drop_table("detail_delta")
    op.drop_table("detail_rollup")
    for table in ("rating_history", "touchpoint"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lost_minutes")
            batch.drop_column("factors")
    with op.batch_alter_table("moment") as batch:
        batch.drop_column("factors")
