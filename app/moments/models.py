from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UtcDateTime, utcnow
from app.moments import factors as moment_factors


class Moment(Base):
    """A kind of touchpoint in the client's journey, e.g. `service-desk.first-voice`."""

    __tablename__ = "moment"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(50))
    owner_team: Mapped[str | None] = mapped_column(String(100), index=True)
    target_negative_rate: Mapped[float | None] = mapped_column(Float)
    factors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    """The factors clients may pick, per sentiment; null: the channel's defaults."""
    auto_follow_up: Mapped[bool] = mapped_column(Boolean, default=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_registered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    @property
    def offered_factors(self) -> list[dict[str, Any]]:
        """The factors clients may pick: the moment's own, or its channel's defaults."""
        return [f.as_json() for f in moment_factors.of_moment(self.factors, channel=self.channel)]

    @property
    def offers_default_factors(self) -> bool:
        return self.factors is None
