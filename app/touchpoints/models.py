from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import NAMING_CONVENTION, NEVER_REUSED_IDS, Base, RandomNonce, UtcDateTime

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def link_nonce_column() -> Mapped[int | None]:
    """The random number signed into a row's links beside its id.

    A link then opens only the row it was issued for, even if the id were ever given to
    another row (a database restored from a backup, a table recreated). Null for rows
    stored before links carried it: their links carry none, and keep working.
    """
    return mapped_column(BigInteger, server_default=RandomNonce())


Attributes = JSON().with_variant(JSONB(), "postgresql")
FactorKeys = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""A list of factor keys; SQL null (not JSON null) when the answer named none."""


class Touchpoint(Base):
    """One client's experience of one moment at one time, with its current rating if any.

    `id` is internal and time-ordered (inserts append to the index); the caller's
    idempotency key lives in `external_id`, and `content_hash` tells a retry of the
    same post from a different post reusing the key.

    On PostgreSQL the table is partitioned by month of `occurred_at` (see
    `app.touchpoints.partitions`): its primary key there is (id, occurred_at), the unique
    external ids are kept in `touchpoint_key`, and the rows that hang off a touchpoint
    reference it without a foreign key (a key to a partitioned table must hold the
    partition key). SQLite keeps this one table as declared.
    """

    __tablename__ = "touchpoint"
    __table_args__ = (
        Index("ix_touchpoint_occurred_at_id", "occurred_at", "id"),
        Index("ix_touchpoint_moment_id_occurred_at", "moment_id", "occurred_at"),
        # The latest comments of bad experiences in a moment report: read from this small
        # index alone, instead of every touchpoint of the moment in the window.
        Index(
            "ix_touchpoint_negative_comment",
            "moment_id",
            "occurred_at",
            "id",
            postgresql_where=text("sentiment = 'negative' AND comment IS NOT NULL"),
            sqlite_where=text("sentiment = 'negative' AND comment IS NOT NULL"),
        ),
        NEVER_REUSED_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    moment_id: Mapped[int] = mapped_column(ForeignKey("moment.id"))
    channel: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    client_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    team: Mapped[str | None] = mapped_column(String(100))
    agent: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(100))
    rating_scale: Mapped[str | None] = mapped_column(String(16))
    rating_value: Mapped[int | None] = mapped_column(SmallInteger)
    score: Mapped[float | None] = mapped_column(Float)
    sentiment: Mapped[str | None] = mapped_column(String(8))
    rated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    comment: Mapped[str | None] = mapped_column(Text)
    complaint: Mapped[bool] = mapped_column(Boolean, default=False)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(Attributes)
    factors: Mapped[list[str] | None] = mapped_column(FactorKeys)
    """Keys of the factors the client picked with the current rating."""
    lost_minutes: Mapped[int | None] = mapped_column(SmallInteger)
    """Minutes the client said the experience cost them, with the current rating."""
    link_nonce: Mapped[int | None] = link_nonce_column()

    rating_history: Mapped[list["RatingHistory"]] = relationship(
        lazy="raise", order_by="RatingHistory.id", passive_deletes=True
    )


class RatingHistory(Base):
    """A rating that a later one replaced; the touchpoint row always holds the latest."""

    __tablename__ = "rating_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    touchpoint_id: Mapped[int] = mapped_column(
        BigId,
        ForeignKey("touchpoint.id", ondelete="CASCADE"),
        index=True,
    )
    scale: Mapped[str] = mapped_column(String(16))
    value: Mapped[int] = mapped_column(SmallInteger)
    score: Mapped[float] = mapped_column(Float)
    sentiment: Mapped[str] = mapped_column(String(8))
    rated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    factors: Mapped[list[str] | None] = mapped_column(FactorKeys)
    lost_minutes: Mapped[int | None] = mapped_column(SmallInteger)
    replaced_at: Mapped[datetime] = mapped_column(UtcDateTime)


POSTGRESQL_ONLY = MetaData(naming_convention=NAMING_CONVENTION)
"""Tables that only PostgreSQL has: the models and migrations of SQLite know nothing of them."""

touchpoint_key = Table(
    "touchpoint_key",
    POSTGRESQL_ONLY,
    Column("external_id", String(64), primary_key=True),
    Column("content_hash", String(64), nullable=False),
)
"""Every stored touchpoint's external id, unique across all the monthly partitions.

A unique index of a partitioned table must hold the partition key, and the same id with
another `occurred_at` is still the same id; this narrow table keeps it unique instead,
and it is where ingestion claims new ids and finds stored ones.
"""
