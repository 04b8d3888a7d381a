"""Every webhook delivery gets an id of its own, sent with each attempt for receivers to
drop repeats: the row number may be handed out again on SQLite once the last row is
deleted (an erasure), and would then name two different notifications.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:12:00.000000
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_id", sa.String(length=36), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE webhook_delivery SET delivery_id = gen_random_uuid()::text")
    else:
        numbers = bind.execute(sa.text("SELECT id FROM webhook_delivery")).scalars().all()
        if numbers:
            bind.execute(
                sa.text("UPDATE webhook_delivery SET delivery_id = :delivery_id WHERE id = :id"),
                [{"delivery_id": str(uuid.uuid4()), "id": number} for number in numbers],
            )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.alter_column("delivery_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_webhook_delivery_delivery_id"), ["delivery_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_webhook_delivery_delivery_id"), type_="unique")
        batch_op.drop_column("delivery_id")
