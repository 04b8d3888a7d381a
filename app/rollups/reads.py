"""Reading whole UTC days: the rollups plus the deltas not folded yet.

These are the statements every insight runs, many per request: they are written once per
shape as SQL text with bound parameters, so that a read builds no statement objects and
the database can reuse its plans. Callers read in one snapshot (see `app.db`), so a fold
committing meanwhile is either wholly seen or not at all.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Date, Integer, String, TextClause, TextualSelect, bindparam, column, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.rollups.service import (
    DELTA_MEMBER_SQL,
    NEGATIVE_RATING_SQL,
    RATE_COLUMNS,
    Dimension,
    Grain,
    grains,
)
from app.rollups.tally import COUNT_COLUMNS, Tally, tally_at


@dataclass(frozen=True, slots=True)
class Slice:
    """What to count in a window: a breakdown, optional filters, per day or as a whole."""

    by: Dimension = Dimension.all
    team: str | None = None
    channel: str | None = None
    moment_id: int | None = None
    daily: bool = False

    def rollup_dimension(self) -> Dimension | None:
        """The rollup breakdown that answers this slice, or None if only touchpoints can."""
        filtered = {
            dimension
            for dimension, value in ((Dimension.team, self.team), (Dimension.channel, self.channel))
            if value is not None
        }
        needed = filtered | ({self.by} - {Dimension.all})
        if len(needed) > 1:
            return None
        return needed.pop() if needed else Dimension.all

    def member(self, dimension: Dimension) -> str | None:
        """The one member of `dimension` the slice is filtered to, if any."""
        return {Dimension.team: self.team, Dimension.channel: self.channel}.get(dimension)


CellKey = tuple[int, str, date | None]
"""(moment_id, member, UTC day or None when the window is counted as a whole)."""


@dataclass(frozen=True, slots=True)
class DayRanges:
    """Whole UTC days [first, last) as rollup periods to add and to take away.

    A month only partly inside is read as the month minus the days outside it when that
    means fewer rows: a window that ends today reads this month's row minus the rest of
    the month (empty days, still to come) instead of every day so far.
    """

    months: tuple[tuple[date, date], ...]
    days: tuple[tuple[date, date], ...]
    minus_days: tuple[tuple[date, date], ...] = ()

    def spans(self) -> Iterable[tuple[int, Grain, date, date]]:
        """(sign, grain, first, last) of every run of periods to read."""
        for sign, grain, runs in (
            (1, Grain.month, self.months),
            (1, Grain.day, self.days),
            (-1, Grain.day, self.minus_days),
        ):
            for low, high in runs:
                yield sign, grain, low, high


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def split_days(first: date, last: date, *, months: bool = True) -> DayRanges:
    """The days [first, last) as whole months (if wanted) and days."""
    if first >= last:
        return DayRanges((), ())
    if not months:
        return DayRanges((), ((first, last),))
    whole: list[tuple[date, date]] = []
    days: list[tuple[date, date]] = []
    minus: list[tuple[date, date]] = []
    month = first.replace(day=1)
    while month < last:
        following = _next_month(month)
        inside = (max(first, month), min(last, following))
        outside = [r for r in ((month, inside[0]), (inside[1], following)) if r[0] < r[1]]
        # One month row plus the days outside, or the days inside: whichever reads less.
        if 1 + sum((b - a).days for a, b in outside) < (inside[1] - inside[0]).days:
            if whole and whole[-1][1] == month:
                whole[-1] = (whole[-1][0], following)
            else:
                whole.append((month, following))
            minus.extend(outside)
        else:
            days.append(inside)
        month = following
    return DayRanges(tuple(whole), tuple(days), tuple(minus))


# --- the statements, one per shape ---


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a statement depends on besides its bound values."""

    dimension: Dimension
    daily: bool
    member: bool
    moment: bool


def _shape(dimension: Dimension, part: Slice) -> _Shape:
    return _Shape(
        dimension, part.daily, part.member(dimension) is not None, part.moment_id is not None
    )


def _params(dimension: Dimension, part: Slice, **bounds: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"dimension": dimension.value, **bounds}
    member = part.member(dimension)
    if member is not None:
        params["member"] = member
    if part.moment_id is not None:
        params["moment_id"] = part.moment_id
    return params


def _rollup_sql(
    shape: _Shape, measures: Iterable[str], *, sign: int, rated_only: bool, suffix: str = ""
) -> str:
    """`suffix` names this statement's period parameters, where several share one text."""
    day = "period" if shape.daily else "NULL"
    conditions = [
        "dimension = :dimension",
        f"grain = :grain{suffix}",
        f"period >= :low{suffix}",
        f"period < :high{suffix}",
        *(["member = :member"] if shape.member else []),
        *(["moment_id = :moment_id"] if shape.moment else []),
        *(["responses > 0"] if rated_only else []),
    ]
    grouping = "moment_id, member" + (", period" if shape.daily else "")
    factor = "" if sign == 1 else f"{sign} * "
    signed = ", ".join(f"{factor}sum({name}) AS {name}" for name in measures)
    return (
        f"SELECT moment_id, member, {day} AS day, {signed} FROM moment_rollup "
        f"WHERE {' AND '.join(conditions)} GROUP BY {grouping}"
    )


def _delta_sql(shape: _Shape, measures: str, grouping: str) -> str:
    member = DELTA_MEMBER_SQL[shape.dimension]
    day = "day" if shape.daily else "NULL"
    conditions = [
        "day >= :first",
        "day < :last",
        *([f"{member} = :member"] if shape.member else []),
        *(["moment_id = :moment_id"] if shape.moment else []),
    ]
    group = ["moment_id", *([] if shape.dimension is Dimension.all else [member])]
    group += [*([grouping] if grouping else []), *(["day"] if shape.daily else [])]
    return (
        f"SELECT moment_id, {member} AS member, {day} AS day, {measures} FROM rollup_delta "
        f"WHERE {' AND '.join(conditions)} GROUP BY {', '.join(group)}"
    )


_DATES = ("low", "high", "first", "last")


def _keyed_by_day(sql: str) -> TextualSelect:
    """The statement with its date parameters typed, and its key columns typed: the day is
    a key the caller merges on, so SQLite's text must come back as a date too."""
    present = [bindparam(name, type_=Date) for name in _DATES if f":{name}" in sql]
    return (
        text(sql)
        .bindparams(*present)
        .columns(column("moment_id", Integer), column("member", String), column("day", Date))
    )


@cache
def _rollup_tallies(shape: _Shape) -> TextualSelect:
    return _keyed_by_day(_rollup_sql(shape, COUNT_COLUMNS, sign=1, rated_only=False))


@cache
def _delta_tallies(shape: _Shape) -> TextualSelect:
    measures = "rating_scale, rating_value, sum(touchpoints), sum(complaints), sum(ratings)"
    return _keyed_by_day(_delta_sql(shape, measures, "rating_scale, rating_value"))


@cache
def _response_counts(shape: _Shape, signs: tuple[int, ...]) -> TextClause:
    """Rollup rows with responses over spans of these signs, and the pending deltas, summed per
    (moment, member) in one statement; members under `:minimum` responses left out."""
    pieces = [
        _rollup_sql(shape, RATE_COLUMNS, sign=sign, rated_only=True, suffix=f"_{i}")
        for i, sign in enumerate(signs)
    ]
    measures = (
        "sum(CASE WHEN rating_scale IS NOT NULL THEN ratings ELSE 0 END) AS responses, "
        f"sum(CASE WHEN {NEGATIVE_RATING_SQL} THEN ratings ELSE 0 END) AS negatives"
    )
    pieces.append(_delta_sql(shape, measures, ""))
    union = " UNION ALL ".join(pieces)
    sql = (
        "SELECT moment_id, member, sum(responses) AS responses, sum(negatives) AS negatives "
        f"FROM ({union}) AS pieces "
        "GROUP BY moment_id, member HAVING sum(responses) >= :minimum"
    )
    dates = [
        bindparam(f"{bound}_{i}", type_=Date)
        for i in range(len(signs))
        for bound in ("low", "high")
    ]
    return text(sql).bindparams(
        *dates, bindparam("first", type_=Date), bindparam("last", type_=Date)
    )


# --- reading ---


async def tallies(
    session: AsyncSession, *, first: date, last: date, part: Slice, into: dict[CellKey, Tally]
) -> None:
    """Add the counts of the whole UTC days [first, last) to `into`, per (moment, member of
    the breakdown, day if daily): rollups plus pending deltas. The slice must have a
    `rollup_dimension`."""
    dimension = part.rollup_dimension()
    assert dimension is not None, "only touchpoints can answer this slice"
    shape = _shape(dimension, part)
    # One statement per run of periods: PostgreSQL plans a UNION of them worse.
    months = not part.daily and Grain.month in grains(dimension)
    for sign, grain, low, high in split_days(first, last, months=months).spans():
        params = _params(dimension, part, grain=grain.value, low=low, high=high)
        for row in (await session.execute(_rollup_tallies(shape), params)).all():
            tally_at(into, (row[0], row[1], row[2])).merge_counts(row[3:], sign=sign)
    params = _params(dimension, part, first=first, last=last)
    for row in (await session.execute(_delta_tallies(shape), params)).all():
        scale, value, touchpoints, complaints, ratings = row[3:]
        tally_at(into, (row[0], row[1], row[2])).add_counts(
            touchpoints=int(touchpoints),
            complaints=int(complaints),
            scale=scale,
            value=value,
            ratings=int(ratings),
        )


async def response_counts(
    session: AsyncSession, *, first: date, last: date, part: Slice, min_responses: int = 0
) -> dict[tuple[int, str], tuple[int, int]]:
    """(responses, negatives) over the whole UTC days [first, last) per (moment, member),
    for members with at least `min_responses`: rollup rows with responses (from an index
    that holds just those) and pending deltas, summed by the database."""
    dimension = part.rollup_dimension()
    assert dimension is not None, "only touchpoints can answer this slice"
    spans = list(split_days(first, last, months=Grain.month in grains(dimension)).spans())
    statement = _response_counts(_shape(dimension, part), tuple(sign for sign, *_ in spans))
    params = _params(dimension, part, first=first, last=last, minimum=min_responses)
    for i, (_, grain, low, high) in enumerate(spans):
        params |= {f"grain_{i}": grain.value, f"low_{i}": low, f"high_{i}": high}
    rows = (await session.execute(statement, params)).all()
    return {(row[0], row[1]): (int(row[2]), int(row[3])) for row in rows}
