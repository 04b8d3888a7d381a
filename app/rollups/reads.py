"""Reading whole UTC days: the rollups plus the deltas not folded yet.

These are the statements every insight runs, many per request: they are written once per
shape as SQL text with bound parameters, so that a read builds no statement objects and
the database can reuse its plans. Callers read in one snapshot (see `app.db`), so a fold
committing meanwhile is either wholly seen or not at all.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Date, Integer, String, TextualSelect, bindparam, column, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.rollups.service import (
    DELTA_COUNTER_SQL,
    DELTA_MEMBER_SQL,
    RATE_COLUMNS,
    Dimension,
    Grain,
    grains,
)
from app.rollups.tally import COUNT_COLUMNS, Tally


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
    postgresql: bool


def _shape(dimension: Dimension, part: Slice, session: AsyncSession) -> _Shape:
    return _Shape(
        dimension,
        part.daily,
        part.member(dimension) is not None,
        part.moment_id is not None,
        session.get_bind().dialect.name == "postgresql",
    )


def _rollup_source(shape: _Shape) -> tuple[str, list[str]]:
    """The rollup table as a read of this shape should search it, and the conditions that
    lead it there (beyond the breakdown, the grain and the periods).

    The key leads with the breakdown, the grain and the moment, so a read over every moment
    descends once per catalogued one: neither database skips through a key's leading columns
    by itself. A read of one member (a team, a channel) takes the member index; SQLite, which
    keeps the counters in the key alone and has no statistics, is told so.
    """
    member = ["member = :member"] if shape.member else []
    if shape.moment:
        return "moment_rollup", [*member, "moment_id = :moment_id"]
    if shape.member:
        hint = "" if shape.postgresql else " INDEXED BY ix_moment_rollup_member"
        return f"moment_rollup{hint}", member
    if not shape.postgresql:
        return "moment_rollup", ["moment_id IN (SELECT id FROM moment)"]
    # An array, not IN (SELECT ...): the planner then descends once per element rather than
    # joining the whole breakdown's range to the catalogue.
    return "moment_rollup", ["moment_id = ANY(ARRAY(SELECT id FROM moment))"]


def _params(dimension: Dimension, part: Slice, **bounds: Any) -> dict[str, Any]:
    params: dict[str, Any] = dict(bounds)
    member = part.member(dimension)
    if member is not None:
        params["member"] = member
    if part.moment_id is not None:
        params["moment_id"] = part.moment_id
    return params


def _rollup_sql(
    shape: _Shape, measures: Iterable[str], *, sign: int, suffix: str, span: int
) -> str:
    """Rollup rows of one run of periods of window `span`, their counters signed; `suffix`
    names the run's parameters (several runs share one statement)."""
    source, found_by = _rollup_source(shape)
    conditions = [
        # Written out, not bound: PostgreSQL's index of members holds teams and channels
        # only, and a plan may take it only where the statement itself says which.
        f"dimension = '{shape.dimension.value}'",
        f"grain = :grain{suffix}",
        f"period >= :low{suffix}",
        f"period < :high{suffix}",
        *found_by,
        # Rows without answers hold no rates (the key carries both, so this reads no row).
        *(["responses > 0"] if tuple(measures) == RATE_COLUMNS else []),
    ]
    factor = "" if sign == 1 else "-"
    signed = ", ".join(f"{factor}{name} AS {name}" for name in measures)
    day = ", period AS day" if shape.daily else ""
    return (
        f"SELECT {span} AS span, moment_id, member{day}, {signed} FROM {source} "
        f"WHERE {' AND '.join(conditions)}"
    )


def _delta_sql(shape: _Shape, measures: Iterable[str], *, span: int) -> str:
    """The pending deltas of window `span`, as rollup counters."""
    member = DELTA_MEMBER_SQL[shape.dimension]
    conditions = [
        f"day >= :first_{span}",
        f"day < :last_{span}",
        *([f"{member} = :member"] if shape.member else []),
        *(["moment_id = :moment_id"] if shape.moment else []),
    ]
    counters = ", ".join(f"{DELTA_COUNTER_SQL[name]} AS {name}" for name in measures)
    day = ", day" if shape.daily else ""
    return (
        f"SELECT {span} AS span, moment_id, {member} AS member{day}, {counters} "
        f"FROM rollup_delta WHERE {' AND '.join(conditions)}"
    )


Signs = tuple[tuple[int, ...], ...]
"""Per window, the signs of its runs of rollup periods: what shapes a statement."""


def _summed_sql(shape: _Shape, measures: tuple[str, ...], signs: Signs) -> str:
    """Every run of rollup periods and the pending deltas of every window, summed by the
    database per (window, moment, member, day if daily) in one statement.

    The pieces are not summed on their own: their integer counters then sum to a bigint
    once, where sums of sums would be PostgreSQL's slower numeric. The windows share one
    statement, so that a ranking and its previous window cost one round trip, not two.
    """
    pieces: list[str] = []
    for span, runs in enumerate(signs):
        pieces.extend(
            _rollup_sql(shape, measures, sign=sign, suffix=f"_{span}_{i}", span=span)
            for i, sign in enumerate(runs)
        )
        pieces.append(_delta_sql(shape, measures, span=span))
    day = "day" if shape.daily else "NULL AS day"
    grouping = "span, moment_id, member" + (", day" if shape.daily else "")
    sums = ", ".join(f"sum({name}) AS {name}" for name in measures)
    return (
        f"SELECT moment_id, member, {day}, span, {sums} "
        f"FROM ({' UNION ALL '.join(pieces)}) AS pieces GROUP BY {grouping}"
    )


_KEYS = 4
"""The columns of a summed row before its counters: moment_id, member, day, span."""


def _typed(sql: str, signs: Signs) -> TextualSelect:
    """The statement with its date parameters typed, and its key columns typed: the day is
    a key the caller merges on, so SQLite's text must come back as a date too."""
    dates = [
        bindparam(name, type_=Date)
        for span, runs in enumerate(signs)
        for name in (
            *(f"{bound}_{span}_{i}" for i in range(len(runs)) for bound in ("low", "high")),
            f"first_{span}",
            f"last_{span}",
        )
    ]
    return (
        text(sql)
        .bindparams(*dates)
        .columns(
            column("moment_id", Integer),
            column("member", String),
            column("day", Date),
            column("span", Integer),
        )
    )


@cache
def _tallies(shape: _Shape, signs: Signs) -> TextualSelect:
    return _typed(_summed_sql(shape, COUNT_COLUMNS, signs), signs)


@cache
def _response_counts(shape: _Shape, signs: Signs) -> TextualSelect:
    """Members under `:minimum` responses are left out."""
    sql = _summed_sql(shape, RATE_COLUMNS, signs) + " HAVING sum(responses) >= :minimum"
    return _typed(sql, signs)


def _run_params(
    dimension: Dimension,
    part: Slice,
    windows: Sequence[tuple[date, date]],
    *,
    months: bool,
    **more: Any,
) -> tuple[Signs, dict[str, Any]]:
    """The signs of every window's runs of periods, and every parameter of the statement."""
    params = _params(dimension, part, **more)
    signs = []
    for span, (first, last) in enumerate(windows):
        spans = list(split_days(first, last, months=months).spans())
        params |= {f"first_{span}": first, f"last_{span}": last}
        for i, (_, grain, low, high) in enumerate(spans):
            params |= {
                f"grain_{span}_{i}": grain.value,
                f"low_{span}_{i}": low,
                f"high_{span}_{i}": high,
            }
        signs.append(tuple(sign for sign, *_ in spans))
    return tuple(signs), params


# --- reading ---


async def tallies(
    session: AsyncSession,
    *,
    windows: Sequence[tuple[date, date]],
    part: Slice,
    into: Sequence[dict[CellKey, Tally]],
) -> None:
    """Add the counts of each window of whole UTC days [first, last) to the matching dict of
    `into`, per (moment, member of the breakdown, day if daily): rollups plus pending
    deltas, every window in one statement. The slice must have a `rollup_dimension`."""
    dimension = part.rollup_dimension()
    assert dimension is not None, "only touchpoints can answer this slice"
    months = not part.daily and Grain.month in grains(dimension)
    signs, params = _run_params(dimension, part, windows, months=months)
    statement = _tallies(_shape(dimension, part, session), signs)
    for row in (await session.execute(statement, params)).all():
        found = into[row[3]]
        key = (row[0], row[1], row[2])
        if key in found:
            found[key].merge_counts(row[_KEYS:])
        else:
            found[key] = Tally(row[_KEYS:])


async def response_counts(
    session: AsyncSession, *, first: date, last: date, part: Slice, min_responses: int = 0
) -> dict[tuple[int, str], tuple[int, int]]:
    """(responses, negatives) over the whole UTC days [first, last) per (moment, member),
    for members with at least `min_responses`: rollup rows (from the key alone, which
    carries both) and pending deltas, summed by the database."""
    dimension = part.rollup_dimension()
    assert dimension is not None, "only touchpoints can answer this slice"
    signs, params = _run_params(
        dimension,
        part,
        [(first, last)],
        months=Grain.month in grains(dimension),
        minimum=min_responses,
    )
    statement = _response_counts(_shape(dimension, part, session), signs)
    rows = (await session.execute(statement, params)).all()
    return {(row[0], row[1]): (int(row[_KEYS]), int(row[_KEYS + 1])) for row in rows}
