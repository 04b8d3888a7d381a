from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import NEVER_REUSED_IDS, Base, UtcDateTime
from app.touchpoints.models import BigId, link_nonce_column


class FollowUp(Base):
    """The closed loop on one bad experience: at most one per touchpoint.

    `moment_id` and `team` are copied from the touchpoint so that lists filter without a
    join; the timestamps of the first acknowledgement and resolution feed the targets.
    """

    __tablename__ = "follow_up"
    __table_args__ = (
        Index("ix_follow_up_status_opened_at", "status", "opened_at"),
        NEVER_REUSED_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    touchpoint_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("touchpoint.id", ondelete="CASCADE"), unique=True
    )
    moment_id: Mapped[int] = mapped_column(ForeignKey("moment.id"), index=True)
    team: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_update_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The next update promised to the client: a promise kept by news before it."""
    promised_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the current promise was made."""
    last_news_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the client last had news: a message for them, or the problem resolved."""
    overdue_alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the current promise was announced as missed (one alert per promise)."""
    acknowledge_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolve_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    root_cause: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    link_nonce: Mapped[int | None] = link_nonce_column()

    events: Mapped[list["FollowUpEvent"]] = relationship(
        lazy="raise", order_by="FollowUpEvent.id", passive_deletes=True
    )


class FollowUpEvent(Base):
    """One step of a follow-up: who moved it where, when, with what note and message."""

    __tablename__ = "follow_up_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    follow_up_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("follow_up.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    """Internal: never shown to the client."""
    client_message: Mapped[str | None] = mapped_column(Text)
    """Shown to the client on the status page."""
    next_update_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """The next update this step promised the client, if it promised one."""
