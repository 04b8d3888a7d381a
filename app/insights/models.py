from datetime import date

from sqlalchemy import Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


def _counter() -> Mapped[int]:
    return mapped_column(Integer, default=0, server_default="0")


class MomentRollup(Base):
    """Touchpoints, complaints and ratings per scale value of one moment in one period.

    A row belongs to one breakdown: `dimension` is `all` (the moment as a whole,
    `member` empty), `team` or `channel` (`member` names it; empty for touchpoints
    without a team). Each touchpoint is counted once per dimension and grain, in the UTC
    `day` and the UTC `month` it occurred. Ratings are counted by value rather than
    summarised, so every figure (sentiments, scores, native survey figures, families)
    is derived from the counts and agrees exactly with the touchpoints.
    """

    __tablename__ = "moment_rollup"
    __table_args__ = (
        Index("ix_moment_rollup_moment", "moment_id", "dimension", "grain", "period"),
        Index("ix_moment_rollup_member", "dimension", "member", "grain", "period"),
        # Comparing teams needs only responses and negatives of the rows with responses:
        # this index holds exactly those, so the comparison reads the index alone.
        Index(
            "ix_moment_rollup_rated",
            "dimension",
            "grain",
            "period",
            "moment_id",
            "member",
            "responses",
            "negatives",
            postgresql_where=text("responses > 0"),
            sqlite_where=text("responses > 0"),
        ),
    )

    dimension: Mapped[str] = mapped_column(String(8), primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    """First day of the period (UTC)."""
    moment_id: Mapped[int] = mapped_column(ForeignKey("moment.id"), primary_key=True)
    member: Mapped[str] = mapped_column(String(100), primary_key=True)

    touchpoints: Mapped[int] = _counter()
    complaints: Mapped[int] = _counter()
    responses: Mapped[int] = _counter()
    """Sum of the rating columns, stored for the index above."""
    negatives: Mapped[int] = _counter()
    """Sum of the negative rating columns, stored for the index above."""
    csat5_1: Mapped[int] = _counter()
    csat5_2: Mapped[int] = _counter()
    csat5_3: Mapped[int] = _counter()
    csat5_4: Mapped[int] = _counter()
    csat5_5: Mapped[int] = _counter()
    nps11_0: Mapped[int] = _counter()
    nps11_1: Mapped[int] = _counter()
    nps11_2: Mapped[int] = _counter()
    nps11_3: Mapped[int] = _counter()
    nps11_4: Mapped[int] = _counter()
    nps11_5: Mapped[int] = _counter()
    nps11_6: Mapped[int] = _counter()
    nps11_7: Mapped[int] = _counter()
    nps11_8: Mapped[int] = _counter()
    nps11_9: Mapped[int] = _counter()
    nps11_10: Mapped[int] = _counter()
    ces7_1: Mapped[int] = _counter()
    ces7_2: Mapped[int] = _counter()
    ces7_3: Mapped[int] = _counter()
    ces7_4: Mapped[int] = _counter()
    ces7_5: Mapped[int] = _counter()
    ces7_6: Mapped[int] = _counter()
    ces7_7: Mapped[int] = _counter()
    smiley4_1: Mapped[int] = _counter()
    smiley4_2: Mapped[int] = _counter()
    smiley4_3: Mapped[int] = _counter()
    smiley4_4: Mapped[int] = _counter()
    thumbs_0: Mapped[int] = _counter()
    thumbs_1: Mapped[int] = _counter()
