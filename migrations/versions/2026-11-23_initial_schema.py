"""Initial schema: moments catalog, touchpoints and their rating history.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:14:49.903991
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "moment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=50), nullable=True),
        sa.Column("owner_team", sa.String(length=100), nullable=True),
        sa.Column("target_negative_rate", sa.Float(), nullable=True),
        sa.Column("auto_follow_up", sa.Boolean(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("auto_registered", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moment")),
        sa.UniqueConstraint("key", name=op.f("uq_moment_key")),
    )
    with op.batch_alter_table("moment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_moment_owner_team"), ["owner_team"], unique=False)

    op.create_table(
        "touchpoint",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("moment_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_ref", sa.String(length=128), nullable=True),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("agent", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("rating_scale", sa.String(length=16), nullable=True),
        sa.Column("rating_value", sa.SmallInteger(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("sentiment", sa.String(length=8), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("complaint", sa.Boolean(), nullable=False),
        sa.Column(
            "attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["moment_id"], ["moment.id"], name=op.f("fk_touchpoint_moment_id_moment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_touchpoint")),
        sa.UniqueConstraint("external_id", name=op.f("uq_touchpoint_external_id")),
    )
    with op.batch_alter_table("touchpoint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_touchpoint_client_ref"), ["client_ref"], unique=False)
        batch_op.create_index(
            "ix_touchpoint_moment_id_occurred_at", ["moment_id", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_touchpoint_occurred_at_id", ["occurred_at", "id"], unique=False)

    op.create_table(
        "rating_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "touchpoint_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("scale", sa.String(length=16), nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("sentiment", sa.String(length=8), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["touchpoint_id"],
            ["touchpoint.id"],
            name=op.f("fk_rating_history_touchpoint_id_touchpoint"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rating_history")),
    )
    with op.batch_alter_table("rating_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rating_history_touchpoint_id"), ["touchpoint_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rating_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rating_history_touchpoint_id"))

    op.drop_table("rating_history")
    with op.batch_alter_table("touchpoint", schema=None) as batch_op:
        batch_op.drop_index("ix_touchpoint_occurred_at_id")
        batch_op.drop_index("ix_touchpoint_moment_id_occurred_at")
        batch_op.drop_index(batch_op.f("ix_touchpoint_client_ref"))

    op.drop_table("touchpoint")
    with op.batch_alter_table("moment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moment_owner_team"))

    op.drop_table("moment")
