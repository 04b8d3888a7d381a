"""Numbers that leave the service are never given out twice, and links name their row.

On SQLite, without AUTOINCREMENT, a new row takes the number of the newest deleted one:
after an erasure, the erased client's links (status links never expire) would open the
next client's touchpoint and follow-up. The tables whose numbers leave the service are
recreated with AUTOINCREMENT (their rows copied as they are); PostgreSQL's sequences never
go back, so there they are left alone.

Touchpoints and follow-ups also gain `link_nonce`, a random number each new row draws,
signed into its links. Rows stored before keep none, so the links already sent for them
keep working.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEVER_REUSED = ("api_key", "audit_entry", "webhook", "webhook_delivery", "touchpoint", "follow_up")
WITH_LINKS = ("touchpoint", "follow_up")
# The same random number from 0 to 2**52 - 1 on both (app.db.RandomNonce).
NONCE = {
    "postgresql": "(floor(random() * 4503599627370496)::bigint)",
    "sqlite": "(random() & 4503599627370495)",
}


def _sqlite_foreign_keys_off() -> None:
    # Recreating a table drops the old one: with foreign keys enforced, the drop would
    # cascade to every touchpoint's ratings, surveys and follow-ups.
    bind = op.get_bind()
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("SQLite foreign keys must be off to recreate tables")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect != "sqlite":
        for table in WITH_LINKS:
            # Added without a default, then given one: the rows stored before stay null
            # (and the table is not rewritten).
            op.add_column(table, sa.Column("link_nonce", sa.BigInteger(), nullable=True))
            op.alter_column(table, "link_nonce", server_default=sa.text(NONCE[dialect]))
        return
    _sqlite_foreign_keys_off()
    for table in NEVER_REUSED:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch:
            if table in WITH_LINKS:
                batch.add_column(
                    sa.Column(
                        "link_nonce",
                        sa.BigInteger(),
                        nullable=True,
                        server_default=sa.text(NONCE["sqlite"]),
                    )
                )
        if table in WITH_LINKS:
            # The copy drew a nonce for every row; the rows stored before keep none.
            op.execute(sa.text(f"UPDATE {table} SET link_nonce = NULL"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table in WITH_LINKS:
            op.drop_column(table, "link_nonce")
        return
    _sqlite_foreign_keys_off()
    for table in reversed(NEVER_REUSED):
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ) as batch:
            if table in WITH_LINKS:
                batch.drop_column("link_nonce")
