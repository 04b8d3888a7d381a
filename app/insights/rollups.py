"""Rollups: counts per moment and UTC day and month, kept in step with every write.

Ingestion and late ratings add their changes to the rollups in the same transaction as
the touchpoints, so a committed touchpoint is always counted once. Insights then read a
window as whole months and whole days from the rollups and only its partial edge days
(a window that does not start or end at UTC midnight) from the touchpoints themselves:
the cost follows moments x periods, not the number of touchpoints.

Each touchpoint is counted in three breakdowns (`Dimension`): the moment as a whole, per
team and per channel. Anything finer (per agent, or team and channel together) is read
from the touchpoints.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    Date,
    Integer,
    MetaData,
    Select,
    Table,
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.schema import CreateTable

from app.db import dialect_insert, write_rows
from app.insights.models import MomentRollup
from app.insights.tally import COUNT_COLUMNS, RATING_KEYS, Tally
from app.touchpoints.models import Touchpoint
from app.touchpoints.scales import Sentiment


class Dimension(StrEnum):
    all = "all"
    team = "team"
    channel = "channel"
    agent = "agent"


ROLLED_UP = (Dimension.all, Dimension.team, Dimension.channel)


class Grain(StrEnum):
    day = "day"
    month = "month"


RollupKey = tuple[str, str, date, int, str]
"""(dimension, grain, period, moment_id, member): the primary key of a rollup row."""
KEY_COLUMNS = ("dimension", "grain", "period", "moment_id", "member")
RATE_COLUMNS = ("responses", "negatives")
STORED_COLUMNS = (*COUNT_COLUMNS, *RATE_COLUMNS)
"""Every counter of a rollup row: the counts of a `Tally`, and two sums derived from them."""

_rollup = cast(Table, MomentRollup.__table__)
_touchpoint = cast(Table, Touchpoint.__table__)


@dataclass(frozen=True, slots=True)
class TouchpointFacts:
    """What the rollups count of one touchpoint."""

    moment_id: int
    occurred_at: datetime
    channel: str
    team: str | None
    complaint: bool
    scale: str | None
    value: int | None


FACT_COLUMNS = (
    Touchpoint.moment_id,
    Touchpoint.occurred_at,
    Touchpoint.channel,
    Touchpoint.team,
    Touchpoint.complaint,
    Touchpoint.rating_scale,
    Touchpoint.rating_value,
)
"""The columns of a stored touchpoint that make its facts, in `TouchpointFacts` order."""


def facts_of(touchpoint: Touchpoint) -> TouchpointFacts:
    """The facts of a stored (loaded) touchpoint."""
    return TouchpointFacts(*(getattr(touchpoint, column.key) for column in FACT_COLUMNS))


def _keys(facts: TouchpointFacts) -> list[RollupKey]:
    day = facts.occurred_at.astimezone(UTC).date()
    periods = ((Grain.day.value, day), (Grain.month.value, day.replace(day=1)))
    members = (
        (Dimension.all.value, ""),
        (Dimension.team.value, facts.team or ""),
        (Dimension.channel.value, facts.channel),
    )
    return [
        (dimension, grain, period, facts.moment_id, member)
        for dimension, member in members
        for grain, period in periods
    ]


def _touchpoint_deltas(
    touchpoints: Iterable[TouchpointFacts], *, times: int
) -> dict[RollupKey, Tally]:
    """What adding (`times=1`) or taking off (`times=-1`) the touchpoints changes."""
    deltas: dict[RollupKey, Tally] = {}
    for facts in touchpoints:
        for key in _keys(facts):
            tally = deltas.get(key)
            if tally is None:
                tally = deltas[key] = Tally()
            tally.add_touchpoint(
                complaint=facts.complaint, scale=facts.scale, value=facts.value, times=times
            )
    return deltas


async def count_new(session: AsyncSession, touchpoints: Iterable[TouchpointFacts]) -> None:
    """Add newly stored touchpoints to the rollups."""
    await _apply(session, _touchpoint_deltas(touchpoints, times=1))


async def count_rerating(
    session: AsyncSession, facts: TouchpointFacts, *, previous: tuple[str, int] | None
) -> None:
    """Move a touchpoint's rating in the rollups from `previous` to the one in `facts`."""
    delta = Tally()
    if previous is not None:
        delta.add_rating(*previous, times=-1)
    if facts.scale is not None and facts.value is not None:
        delta.add_rating(facts.scale, facts.value)
    await _apply(session, {key: delta for key in _keys(facts)})


async def count_removed(session: AsyncSession, touchpoints: Iterable[TouchpointFacts]) -> None:
    """Take erased touchpoints off the rollups, as if they had never been stored.

    The counts are taken off rather than recounted from the touchpoints left: a recount of
    a month would lose the days whose touchpoints were purged (their counts are kept).
    Rows left with no touchpoint are deleted, as a rebuild would not write them.
    """
    deltas = _touchpoint_deltas(touchpoints, times=-1)
    if not deltas:
        return
    await _apply(session, deltas)
    moment_ids = sorted({key[3] for key in deltas})
    await session.execute(
        delete(_rollup).where(_rollup.c.moment_id.in_(moment_ids), _rollup.c.touchpoints <= 0)
    )


async def _apply(session: AsyncSession, deltas: Mapping[RollupKey, Tally]) -> None:
    if not deltas:
        return
    # Rows are locked in one global order, so two writers never wait on each other in a cycle.
    rows = [
        (*key, *tally.counts, tally.responses, tally.negatives)
        for key, tally in sorted(deltas.items(), key=lambda item: item[0])
    ]
    names = (*KEY_COLUMNS, *STORED_COLUMNS)
    if _is_postgres(session):
        # COPY into a staging table, then one upsert: executemany would run the upsert once
        # per row, and a batch of touchpoints touches thousands of rollup rows.
        connection = await session.connection()
        await connection.execute(CreateTable(_stage, if_not_exists=True))
        await write_rows(connection, _stage, names, rows)
        await connection.execute(_UPSERT_FROM_STAGE)
        await connection.execute(delete(_stage))
        return
    statement = dialect_insert(session, _rollup)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={name: _rollup.c[name] + statement.excluded[name] for name in STORED_COLUMNS},
    )
    await session.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])


_stage = Table(
    "moment_rollup_stage",
    MetaData(),
    # moment_id is typed here: as a foreign key its type is only known once the tables bind.
    *(
        Column(name, Integer() if name == "moment_id" else _rollup.c[name].type)
        for name in (*KEY_COLUMNS, *STORED_COLUMNS)
    ),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DELETE ROWS",
)


def _upsert_from_stage() -> Insert:
    names = [*KEY_COLUMNS, *STORED_COLUMNS]
    statement = postgresql.insert(_rollup).from_select(
        names,
        # Sorted, so rows are locked in the same order by every writer.
        select(*(_stage.c[name] for name in names)).order_by(
            *(_stage.c[name] for name in KEY_COLUMNS)
        ),
    )
    return statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={name: _rollup.c[name] + statement.excluded[name] for name in STORED_COLUMNS},
    )


_UPSERT_FROM_STAGE = _upsert_from_stage()


# --- recomputation from the touchpoints ---


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _utc_period(session: AsyncSession, grain: Grain) -> ColumnElement[date]:
    occurred_at = _touchpoint.c.occurred_at
    if _is_postgres(session):
        utc = func.timezone("UTC", occurred_at)
        if grain is Grain.day:
            return sql_cast(utc, Date)
        return sql_cast(func.date_trunc("month", utc), Date)
    # SQLite holds UTC timestamps as ISO text.
    if grain is Grain.day:
        return func.date(occurred_at, type_=Date)
    return func.date(occurred_at, "start of month", type_=Date)


def _member(dimension: Dimension) -> ColumnElement[str]:
    if dimension is Dimension.all:
        return literal("")
    column = {
        Dimension.team: _touchpoint.c.team,
        Dimension.channel: _touchpoint.c.channel,
        Dimension.agent: _touchpoint.c.agent,
    }[dimension]
    return func.coalesce(column, "")


def _grouping(dimension: Dimension, member: ColumnElement[str]) -> list[ColumnElement[str]]:
    # A constant member is not grouped by: PostgreSQL refuses constants in GROUP BY. The
    # very expression selected is grouped by, so that its parameters are the same.
    return [] if dimension is Dimension.all else [member]


def _is_negative() -> ColumnElement[bool]:
    return _touchpoint.c.sentiment == Sentiment.negative.value


def _counts() -> list[ColumnElement[Any]]:
    """COUNT_COLUMNS computed over touchpoints, as aggregate expressions."""
    scale, value = _touchpoint.c.rating_scale, _touchpoint.c.rating_value
    return [
        func.count().label("touchpoints"),
        func.sum(case((_touchpoint.c.complaint, 1), else_=0)).label("complaints"),
        *(
            func.sum(case((and_(scale == key.scale.value, value == key.value), 1), else_=0)).label(
                key.column
            )
            for key in RATING_KEYS
        ),
    ]


def _recount(session: AsyncSession, dimension: Dimension, grain: Grain) -> Select[Any]:
    period = _utc_period(session, grain)
    member = _member(dimension)
    return select(
        literal(dimension.value).label("dimension"),
        literal(grain.value).label("grain"),
        period.label("period"),
        _touchpoint.c.moment_id,
        member.label("member"),
        *_counts(),
        func.count(_touchpoint.c.rating_scale).label("responses"),
        func.sum(case((_is_negative(), 1), else_=0)).label("negatives"),
    ).group_by(period, _touchpoint.c.moment_id, *_grouping(dimension, member))


Counters = tuple[int, ...]
"""A rollup row's counters, in `STORED_COLUMNS` order."""


async def recompute(session: AsyncSession) -> dict[RollupKey, Counters]:
    """What the rollups should hold, counted afresh from the touchpoints."""
    expected: dict[RollupKey, Counters] = {}
    for dimension in ROLLED_UP:
        for grain in Grain:
            for row in await session.execute(_recount(session, dimension, grain)):
                expected[_key_of(row)] = tuple(row[len(KEY_COLUMNS) :])
    return expected


async def stored(session: AsyncSession) -> dict[RollupKey, Counters]:
    """What the rollups hold."""
    columns = [_rollup.c[name] for name in (*KEY_COLUMNS, *STORED_COLUMNS)]
    rows = await session.execute(select(*columns))
    return {_key_of(row): tuple(row[len(KEY_COLUMNS) :]) for row in rows}


def _key_of(row: Sequence[Any]) -> RollupKey:
    dimension, grain, period, moment_id, member = row[: len(KEY_COLUMNS)]
    return (dimension, grain, period, moment_id, member)


async def rebuild(session: AsyncSession, *, since: date | None = None) -> int:
    """Replace rollup rows by a recount from the touchpoints; returns the rows there are.

    `since` (a UTC day) keeps the rows of earlier periods as they are: touchpoints before it
    may have been purged, and their counts must outlive them. Days from `since` on are
    recounted from the touchpoints; months from the one holding `since` on are summed from
    their day rows, so a month that straddles `since` keeps the counts of its purged days.
    """
    columns = [*KEY_COLUMNS, *STORED_COLUMNS]
    if since is None:
        await session.execute(delete(_rollup))
        for dimension in ROLLED_UP:
            for grain in Grain:
                recount = _recount(session, dimension, grain)
                await session.execute(_rollup.insert().from_select(columns, recount))
    else:
        first_month = since.replace(day=1)
        await session.execute(
            delete(_rollup).where(
                or_(
                    and_(_rollup.c.grain == Grain.day.value, _rollup.c.period >= since),
                    and_(_rollup.c.grain == Grain.month.value, _rollup.c.period >= first_month),
                )
            )
        )
        for dimension in ROLLED_UP:
            recount = _recount(session, dimension, Grain.day).where(
                _touchpoint.c.occurred_at >= _midnight(since)
            )
            await session.execute(_rollup.insert().from_select(columns, recount))
        await session.execute(
            _rollup.insert().from_select(columns, _months_from_days(session, first_month))
        )
    written = await session.scalar(select(func.count()).select_from(_rollup))
    return written or 0


def _months_from_days(session: AsyncSession, first_month: date) -> Select[Any]:
    """Month rows from `first_month` on, as the sums of their day rows."""
    day = _rollup.c.period
    month: ColumnElement[date]
    if _is_postgres(session):
        month = sql_cast(func.date_trunc("month", day), Date)
    else:
        month = func.date(day, "start of month", type_=Date)
    keys = [_rollup.c.dimension, _rollup.c.moment_id, _rollup.c.member]
    return (
        select(
            _rollup.c.dimension,
            literal(Grain.month.value).label("grain"),
            month.label("period"),
            _rollup.c.moment_id,
            _rollup.c.member,
            *(func.sum(_rollup.c[name]).label(name) for name in STORED_COLUMNS),
        )
        .where(_rollup.c.grain == Grain.day.value, day >= first_month)
        .group_by(*keys, month)
    )


# --- reading a window ---


CellKey = tuple[int, str, date | None]
"""(moment_id, member, UTC day or None when the window is counted as a whole)."""


@dataclass(frozen=True, slots=True)
class WindowParts:
    """A window [start, end) as rollup periods to add, to take away, and touchpoint ranges.

    A month only partly inside the window is read as the month minus the days outside it
    when that means fewer days: a window that ends today reads this month's row minus the
    rest of the month (empty days, still to come) instead of every day so far.
    """

    months: tuple[tuple[date, date], ...]
    days: tuple[tuple[date, date], ...]
    raw: tuple[tuple[datetime, datetime], ...]
    minus_days: tuple[tuple[date, date], ...] = ()


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def split_window(start: datetime, end: datetime, *, months: bool = True) -> WindowParts:
    """Whole UTC months (if wanted), whole UTC days, and the partial days at either edge."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return WindowParts((), (), ())
    first_day = start.date() if start.time() == time(0) else start.date() + timedelta(days=1)
    last_day = end.date()  # exclusive: end's own day is at most partly inside
    if first_day >= last_day:
        return WindowParts((), (), ((start, end),))
    raw = []
    if start < _midnight(first_day):
        raw.append((start, _midnight(first_day)))
    if _midnight(last_day) < end:
        raw.append((_midnight(last_day), end))
    if not months:
        return WindowParts((), ((first_day, last_day),), tuple(raw))
    whole: list[tuple[date, date]] = []
    days: list[tuple[date, date]] = []
    minus: list[tuple[date, date]] = []
    month = first_day.replace(day=1)
    while month < last_day:
        following = _next_month(month)
        inside = (max(first_day, month), min(last_day, following))
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
    return WindowParts(tuple(whole), tuple(days), tuple(raw), tuple(minus))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


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
        if self.by not in ROLLED_UP:
            return None
        needed = filtered | ({self.by} - {Dimension.all})
        if len(needed) > 1:
            return None
        return needed.pop() if needed else Dimension.all


def _plan(start: datetime, end: datetime, part: Slice) -> tuple[Dimension | None, WindowParts]:
    dimension = part.rollup_dimension()
    if dimension is None:
        return None, WindowParts((), (), ((start.astimezone(UTC), end.astimezone(UTC)),))
    return dimension, split_window(start, end, months=not part.daily)


async def tallies(
    session: AsyncSession, *, start: datetime, end: datetime, part: Slice
) -> dict[CellKey, Tally]:
    """Counts in [start, end) per (moment, member of the breakdown, day if daily)."""
    dimension, parts = _plan(start, end, part)
    found: dict[CellKey, Tally] = {}

    def tally_of(row: Sequence[Any]) -> Tally:
        key: CellKey = (row[0], row[1], row[2] if part.daily else None)
        tally = found.get(key)
        if tally is None:
            tally = found[key] = Tally()
        return tally

    if dimension is not None:

        def signed(sign: int) -> list[ColumnElement[Any]]:
            return [sign * func.sum(_rollup.c[name]) for name in COUNT_COLUMNS]

        # One statement per run of periods: PostgreSQL plans a UNION of them worse.
        for query in _rollup_queries(parts, dimension, part, signed):
            for row in (await session.execute(query)).all():
                tally_of(row).merge(Tally(row[3:]))
    if parts.raw:
        # Grouped by rating rather than counted per rating column: far cheaper to compute.
        rating = [_touchpoint.c.rating_scale, _touchpoint.c.rating_value, _touchpoint.c.complaint]
        query = _raw_query(session, parts.raw, part, [*rating, func.count()], rating)
        for row in (await session.execute(query)).all():
            scale, value, complaint, count = row[3:]
            tally_of(row).add_touchpoint(complaint=complaint, scale=scale, value=value, times=count)
    # Periods taken away can leave members with nothing in the window.
    return {key: tally for key, tally in found.items() if not tally.is_empty()}


async def response_counts(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    part: Slice,
    min_responses: int = 0,
) -> dict[tuple[int, str], tuple[int, int]]:
    """(responses, negatives) in [start, end) per (moment, member), for members with at
    least `min_responses`.

    Only the two counts a test of rates needs: per team this is the largest read of a
    ranking, so it reads only rows with responses, from an index that holds just those,
    and the database sums the periods and drops the members under the minimum.
    """
    dimension, parts = _plan(start, end, part)
    statements: list[Select[Any]] = []
    if dimension is not None:

        def signed(sign: int) -> list[ColumnElement[Any]]:
            return [sign * func.sum(_rollup.c.responses), sign * func.sum(_rollup.c.negatives)]

        statements.extend(_rollup_queries(parts, dimension, part, signed, rated_only=True))
    if parts.raw:
        counts = [
            func.count(_touchpoint.c.rating_scale),
            func.sum(case((_is_negative(), 1), else_=0)),
        ]
        statements.append(_raw_query(session, parts.raw, part, counts, []))
    if not statements:
        return {}
    pieces = union_all(*statements).subquery()
    moment_id, member, responses, negatives = (pieces.c[i] for i in (0, 1, 3, 4))
    query = (
        select(moment_id, member, func.sum(responses), func.sum(negatives))
        .group_by(moment_id, member)
        .having(func.sum(responses) >= min_responses)
    )
    rows = (await session.execute(query)).all()
    return {(row[0], row[1]): (int(row[2]), int(row[3])) for row in rows}


def _rollup_queries(
    parts: WindowParts,
    dimension: Dimension,
    part: Slice,
    measures: Callable[[int], Sequence[ColumnElement[Any]]],
    *,
    rated_only: bool = False,
) -> list[Select[Any]]:
    """One query per run of periods, each a single index range; `measures` gives the
    aggregates for periods added (sign 1) or taken away (sign -1)."""
    ranges = [
        (sign, grain, low, high)
        for sign, grain, spans in (
            (1, Grain.month, parts.months),
            (1, Grain.day, parts.days),
            (-1, Grain.day, parts.minus_days),
        )
        for low, high in spans
    ]
    queries = [
        _rollup_query(grain, low, high, dimension, part, measures(sign))
        for sign, grain, low, high in ranges
    ]
    return [query.where(_rollup.c.responses > 0) for query in queries] if rated_only else queries


def _rollup_query(
    grain: Grain,
    low: date,
    high: date,
    dimension: Dimension,
    part: Slice,
    measures: Sequence[ColumnElement[Any]],
) -> Select[Any]:
    day = _rollup.c.period if part.daily else literal(None, Date)
    query = select(_rollup.c.moment_id, _rollup.c.member, day, *measures).where(
        _rollup.c.dimension == dimension.value,
        _rollup.c.grain == grain.value,
        _rollup.c.period >= low,
        _rollup.c.period < high,
    )
    member = {Dimension.team: part.team, Dimension.channel: part.channel}.get(dimension)
    if member is not None:
        query = query.where(_rollup.c.member == member)
    if part.moment_id is not None:
        query = query.where(_rollup.c.moment_id == part.moment_id)
    group = [_rollup.c.moment_id, _rollup.c.member]
    return query.group_by(*group, _rollup.c.period) if part.daily else query.group_by(*group)


def _raw_query(
    session: AsyncSession,
    ranges: Sequence[tuple[datetime, datetime]],
    part: Slice,
    measures: Sequence[ColumnElement[Any]],
    grouping: Sequence[ColumnElement[Any]],
) -> Select[Any]:
    occurred_at = _touchpoint.c.occurred_at
    member = _member(part.by)
    day = _utc_period(session, Grain.day) if part.daily else literal(None, Date)
    query = select(_touchpoint.c.moment_id, member, day, *measures).where(
        or_(*(and_(occurred_at >= low, occurred_at < high) for low, high in ranges))
    )
    if part.team is not None:
        query = query.where(_touchpoint.c.team == part.team)
    if part.channel is not None:
        query = query.where(_touchpoint.c.channel == part.channel)
    if part.moment_id is not None:
        query = query.where(_touchpoint.c.moment_id == part.moment_id)
    group = [_touchpoint.c.moment_id, *_grouping(part.by, member), *grouping]
    return query.group_by(*group, day) if part.daily else query.group_by(*group)
