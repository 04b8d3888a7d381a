from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UtcDateTime


class MomentAlert(Base):
    """The last known state of one alarm on one moment: whether it holds now, and since
    when. An alert goes out when an alarm starts to hold; one that stops arms it again."""

    __tablename__ = "moment_alert"

    moment_id: Mapped[int] = mapped_column(
        ForeignKey("moment.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    team: Mapped[str] = mapped_column(String(100), primary_key=True)
    """The team named, for `team_named`; empty for the moment's own alarms."""
    active: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
