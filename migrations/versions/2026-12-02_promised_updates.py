"""Promises of news to the client and alerts: each step records the next update it
promised, and a follow-up keeps when its current promise was made, when the client last had
news and when a missed promise was announced, so that an update overdue is found by one
condition on the row; `moment_alert` keeps the state of each moment's alarms, so that each
alert goes out once per change.

Steps stored before this revision promised nothing that can be told apart any more: a
follow-up with a promise counts it as made by its latest step, and its latest news is its
latest client message or resolution.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("follow_up_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_update_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.add_column(sa.Column("promised_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_news_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("overdue_alerted_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "moment_alert",
        sa.Column("moment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["moment_id"],
            ["moment.id"],
            name=op.f("fk_moment_alert_moment_id_moment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("moment_id", "kind", "team", name=op.f("pk_moment_alert")),
    )
    op.execute(
        "UPDATE follow_up SET promised_at = (SELECT max(e.at) FROM follow_up_event AS e "
        "WHERE e.follow_up_id = follow_up.id) WHERE next_update_at IS NOT NULL"
    )
    op.execute(
        "UPDATE follow_up SET last_news_at = (SELECT max(e.at) FROM follow_up_event AS e "
        "WHERE e.follow_up_id = follow_up.id AND (e.client_message IS NOT NULL "
        "OR e.status IN ('resolved', 'closed')))"
    )


def downgrade() -> None:
    op.drop_table("moment_alert")
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.drop_column("overdue_alerted_at")
        batch_op.drop_column("last_news_at")
        batch_op.drop_column("promised_at")
    with op.batch_alter_table("follow_up_event", schema=None) as batch_op:
        batch_op.drop_column("next_update_at")
