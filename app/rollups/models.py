from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, PrimaryKeyConstraint, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UtcDateTime


def _counter() -> Mapped[int]:
    return mapped_column(Integer, default=0, server_default="0")


class MomentRollup(Base):
    """Touchpoints, complaints and ratings per scale value of one moment in one period.

    A row belongs to one breakdown: `dimension` is `all` (the moment as a whole,
    `member` empty), `team`, `channel` or `agent` (`member` names it; empty for
    touchpoints without a team or agent). Each touchpoint is counted once per dimension
    and grain, in the UTC `day` and the UTC `month` it occurred (agents by day only).
    Ratings are counted by value rather than summarised, so every figure (sentiments,
    scores, native survey figures, families) is derived from the counts and agrees exactly
    with the touchpoints.
    """

    __tablename__ = "moment_rollup"
    __table_args__ = (
        # Two indexes only: every index is written for each of the thousands of rows a fold
        # upserts, and most of a fold's time went into four. The key serves a moment's
        # breakdowns (one moment, a run of periods), the rankings over every moment (a
        # descent per moment; PostgreSQL 15 cannot skip through a key's leading columns) and,
        # carrying the two rates, the comparison of teams from the index alone.
        PrimaryKeyConstraint(
            "dimension",
            "grain",
            "moment_id",
            "period",
            "member",
            name="pk_moment_rollup",
            postgresql_include=["responses", "negatives"],
        ),
        # One team or one channel over every moment. On PostgreSQL only their rows are in it:
        # the moment as a whole is read through the key, agents one moment at a time, and
        # their rows (two fifths of a fold's) then add no entry here. SQLite names the index
        # in its reads, and so keeps it whole.
        Index(
            "ix_moment_rollup_member",
            "dimension",
            "member",
            "grain",
            "period",
            postgresql_where=text("dimension = 'team' OR dimension = 'channel'"),
        ),
        # SQLite: the rows are stored in the key's order, so the key holds every counter.
        {"sqlite_with_rowid": False},
    )

    dimension: Mapped[str] = mapped_column(String(8), primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    period: Mapped[date] = mapped_column(Date, primary_key=True)
    """First day of the period (UTC)."""
    # Not a foreign key: the folder writes thousands of rows a second, and checking each one
    # against the moments costs more than it guards (rows come only from stored touchpoints).
    moment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
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


class RollupDelta(Base):
    """A signed change to the counts of one moment, UTC day, team, channel and agent.

    Written by every change to the touchpoints (new ones, late ratings, erasures), in the
    writer's own transaction and appended only, so that concurrent writers never wait on
    each other's rows. A rating moved from one value to another is two rows of `ratings`
    -1 and +1 with no touchpoint. The folder deletes committed deltas and adds them to
    `MomentRollup` in one statement; until then readers add them themselves.
    """

    __tablename__ = "rollup_delta"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the change was written: the folder's lag is the age of the oldest delta."""
    moment_id: Mapped[int] = mapped_column(Integer)
    """Not a foreign key: a delta is a number to add, and checking it would slow appends."""
    day: Mapped[date] = mapped_column(Date)
    team: Mapped[str] = mapped_column(String(100))
    """Empty for touchpoints without a team, as in the rollups."""
    channel: Mapped[str] = mapped_column(String(100))
    agent: Mapped[str] = mapped_column(String(100))
    rating_scale: Mapped[str | None] = mapped_column(String(16))
    rating_value: Mapped[int | None] = mapped_column(Integer)
    touchpoints: Mapped[int] = mapped_column(Integer)
    complaints: Mapped[int] = mapped_column(Integer)
    ratings: Mapped[int] = mapped_column(Integer)
    """Ratings of `rating_value` on `rating_scale` added (or, negative, taken off)."""


class DetailRollup(Base):
    """Answers of one moment, UTC day and sentiment that carried one detail.

    `kind` says which: `factor` (`item` is the factor's key), `said_why` (answers that
    picked any factor; `item` empty) or `lost` (`item` is the minutes the client said they
    lost, in decimal). Counts per minutes value, not sums, so that the mean, the median and
    their intervals are exact. Broken down as the rollups are, by day only: `dimension` is
    `all` (`member` empty), `team` or `channel` (`member` names it, empty without a team).
    """

    __tablename__ = "detail_rollup"

    dimension: Mapped[str] = mapped_column(String(8), primary_key=True)
    member: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    moment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sentiment: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    item: Mapped[str] = mapped_column(String(40), primary_key=True)
    answers: Mapped[int] = mapped_column(Integer)


class DetailDelta(Base):
    """A signed change to `DetailRollup`, appended by the writer that made it (as
    `RollupDelta` is) and folded with the rollup deltas."""

    __tablename__ = "detail_delta"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    day: Mapped[date] = mapped_column(Date)
    moment_id: Mapped[int] = mapped_column(Integer)
    team: Mapped[str] = mapped_column(String(100))
    """Empty for touchpoints without a team, as in the rollups."""
    channel: Mapped[str] = mapped_column(String(100))
    sentiment: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(8))
    item: Mapped[str] = mapped_column(String(40))
    answers: Mapped[int] = mapped_column(Integer)


class RollupEpoch(Base):
    """One row: a number raised by every transaction that takes deltas away or writes the
    rollups themselves (a fold, a rebuild), never by the writers appending deltas.

    Between two raises the deltas only grow, so the epoch and how many deltas there are
    name the counts a snapshot sees: an answer computed from them can be kept and given
    again while both stay the same (`app.rollups.epoch`).
    """

    __tablename__ = "rollup_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
