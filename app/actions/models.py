from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import NEVER_REUSED_IDS, Base, UtcDateTime, utcnow


class ImprovementAction(Base):
    """A change made to a moment, whose effect on the negative rate is measured afterwards."""

    __tablename__ = "improvement_action"
    # Listed newest first, per moment and across the catalogue, by (done_at, id).
    __table_args__ = (
        Index("ix_improvement_action_moment_id_done_at", "moment_id", "done_at", "id"),
        Index("ix_improvement_action_done_at", "done_at", "id"),
        NEVER_REUSED_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    moment_id: Mapped[int] = mapped_column(ForeignKey("moment.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # A factor's key as free text: factors are not catalogued rows (yet), so no foreign key.
    factor: Mapped[str | None] = mapped_column(String(100))
    done_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
