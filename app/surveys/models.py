from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UtcDateTime
from app.touchpoints.models import BigId


class Survey(Base):
    """A touchpoint that was surveyed, and what the client did with the links.

    Counting issues, opens and answers makes survey response rates real: a touchpoint
    never surveyed is not a client who stayed silent.
    """

    __tablename__ = "survey"

    touchpoint_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("touchpoint.id", ondelete="CASCADE"), primary_key=True
    )
    scale: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    """First time links were issued."""
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """First time a link was opened (a page view or a one-click answer)."""
    opens: Mapped[int] = mapped_column(Integer, default=0)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """First answer."""
    answers: Mapped[int] = mapped_column(Integer, default=0)
