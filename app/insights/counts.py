"""Counts of a window, and recounts of the rollups, from the touchpoints' side.

A window is read as whole UTC days from the rollups and their pending deltas (`rollups`)
and, only where a bound falls inside a day, that partial day from the touchpoints. A slice
the rollups do not break down (team and channel together, or a team's agents) is read
from the touchpoints alone. The callers read in one snapshot (see `app.db`).
"""

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    Table,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import UtcDateTime
from app.rollups import details as rollup_details
from app.rollups import epoch, reads
from app.rollups import service as rollups
from app.rollups.details import DetailKey, DetailTally
from app.rollups.models import DetailRollup, MomentRollup
from app.rollups.reads import CellKey, Slice
from app.rollups.service import Counters, Dimension, Grain, RollupKey, grains
from app.rollups.tally import RATING_KEYS, Tally, tally_at
from app.scales import Sentiment
from app.touchpoints.models import Touchpoint

_rollup = cast(Table, MomentRollup.__table__)
_detail_rollup = cast(Table, DetailRollup.__table__)
_touchpoint = cast(Table, Touchpoint.__table__)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _whole_days(start: datetime, end: datetime) -> tuple[date, date] | None:
    """The whole UTC days inside [start, end), as [first, last); None if there are none."""
    first = start.date() if start.time() == time(0) else start.date() + timedelta(days=1)
    last = end.date()  # exclusive: end's own day is at most partly inside
    return (first, last) if first < last else None


def _edges(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) that are not whole UTC days."""
    days = _whole_days(start, end)
    if days is None:
        return [(start, end)] if start < end else []
    edges = []
    if start < _midnight(days[0]):
        edges.append((start, _midnight(days[0])))
    if _midnight(days[1]) < end:
        edges.append((_midnight(days[1]), end))
    return edges


def _utc(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    return start.astimezone(UTC), end.astimezone(UTC)


async def tallies(
    session: AsyncSession, *, start: datetime, end: datetime, part: Slice
) -> dict[CellKey, Tally]:
    """Counts in [start, end) per (moment, member of the breakdown, day if daily)."""
    return (await window_tallies(session, windows=[(start, end)], part=part))[0]


async def window_tallies(
    session: AsyncSession, *, windows: Sequence[tuple[datetime, datetime]], part: Slice
) -> list[dict[CellKey, Tally]]:
    """`tallies` of each window [start, end), their whole days read in one statement."""
    windows = [_utc(start, end) for start, end in windows]
    found: list[dict[CellKey, Tally]] = [{} for _ in windows]
    raw = [[(start, end)] if start < end else [] for start, end in windows]
    if part.rollup_dimension() is not None:
        raw = [_edges(start, end) for start, end in windows]
        days = [_whole_days(start, end) for start, end in windows]
        counted = [(i, whole) for i, whole in enumerate(days) if whole is not None]
        if counted:
            await reads.tallies(
                session,
                windows=[whole for _, whole in counted],
                part=part,
                into=[found[i] for i, _ in counted],
            )
    for ranges, into in zip(raw, found, strict=True):
        if ranges:
            await _add_raw(session, ranges, part, into)
    # Periods taken away can leave members with nothing in the window.
    return [{key: tally for key, tally in cells.items() if not tally.is_empty()} for cells in found]


async def _add_raw(
    session: AsyncSession,
    ranges: Sequence[tuple[datetime, datetime]],
    part: Slice,
    into: dict[CellKey, Tally],
) -> None:
    """Add the counts of the touchpoints in `ranges` (parts of days) to `into`."""
    # Grouped by rating rather than counted per rating column: far cheaper to compute.
    rating = [_touchpoint.c.rating_scale, _touchpoint.c.rating_value, _touchpoint.c.complaint]
    query = _raw_query(session, ranges, part, [*rating, func.count()], rating)
    for row in (await session.execute(query)).all():
        scale, value, complaint, count = row[3:]
        tally_at(into, (row[0], row[1], row[2])).add_touchpoint(
            complaint=complaint, scale=scale, value=value, times=count
        )


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
    ranking, so the database sums the whole days and drops the members under the minimum;
    partial edge days, where there are any, are added before the minimum is applied.
    """
    start, end = _utc(start, end)
    raw = [(start, end)] if start < end else []
    days = _whole_days(start, end)
    found: dict[tuple[int, str], tuple[int, int]] = {}
    if part.rollup_dimension() is not None:
        raw = _edges(start, end)
        if days is not None:
            found = await reads.response_counts(
                session,
                first=days[0],
                last=days[1],
                part=part,
                min_responses=0 if raw else min_responses,
            )
    if not raw:
        return found
    counts = [func.count(_touchpoint.c.rating_scale), func.sum(case((_is_negative(), 1), else_=0))]
    for row in (await session.execute(_raw_query(session, raw, part, counts, []))).all():
        responses, negatives = found.get((row[0], row[1]), (0, 0))
        found[(row[0], row[1])] = (responses + int(row[3]), negatives + int(row[4] or 0))
    return {key: value for key, value in found.items() if value[0] >= min_responses}


async def details(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    part: Slice,
    sentiment: Sentiment | None = None,
) -> dict[int, DetailTally]:
    """What the answers in [start, end) said beyond their ratings, per moment; with
    `sentiment`, the factors of answers of that sentiment at least (all the minutes lost).

    Whole UTC days come from the detail rollups and their pending deltas (of the moment as
    a whole, or of one team or channel); the edges of the window, and a slice by team and
    channel together, from the touchpoints that carry details.
    """
    start, end = _utc(start, end)
    found: dict[int, DetailTally] = {}
    raw = [(start, end)] if start < end else []
    filters = ((Dimension.team, part.team), (Dimension.channel, part.channel))
    named = [(dimension, member) for dimension, member in filters if member is not None]
    if len(named) <= 1:
        dimension, member = named[0] if named else (Dimension.all, "")
        raw = _edges(start, end)
        days = _whole_days(start, end)
        if days is not None:
            await rollup_details.tallies(
                session,
                first=days[0],
                last=days[1],
                into=found,
                dimension=dimension.value,
                member=member,
                moment_id=part.moment_id,
                sentiment=None if sentiment is None else sentiment.value,
            )
    if raw:
        occurred_at = _touchpoint.c.occurred_at
        query = select(
            _touchpoint.c.moment_id,
            _touchpoint.c.sentiment,
            _touchpoint.c.factors,
            _touchpoint.c.lost_minutes,
        ).where(
            or_(*(and_(occurred_at >= low, occurred_at < high) for low, high in raw)),
            _touchpoint.c.sentiment.is_not(None),
            or_(_touchpoint.c.factors.is_not(None), _touchpoint.c.lost_minutes.is_not(None)),
        )
        for name in ("team", "channel", "moment_id"):
            value = getattr(part, name)
            if value is not None:
                query = query.where(_touchpoint.c[name] == value)
        for row in (await session.execute(query)).all():
            tally = found.get(row.moment_id)
            if tally is None:
                tally = found[row.moment_id] = DetailTally()
            tally.add_answer(sentiment=row.sentiment, factors=row.factors, lost=row.lost_minutes)
    return found


# --- expressions over the touchpoints ---


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


# --- recounting the rollups from the touchpoints ---


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


def _detail_recount(session: AsyncSession, since: date | None = None) -> str:
    """SQL: the rows `DetailRollup` should hold (from `since` on), counted afresh from the
    touchpoints, in its column order."""
    if _is_postgres(session):
        day = "CAST(timezone('UTC', occurred_at) AS date)"
        picked = "CROSS JOIN LATERAL jsonb_array_elements_text(touchpoint.factors) AS f(key)"
        key = "f.key"
    else:
        day = "date(occurred_at)"
        picked = ", json_each(touchpoint.factors) AS f"
        key = "f.value"
    rated = "sentiment IS NOT NULL" + ("" if since is None else " AND occurred_at >= :since")
    answered = [
        f"SELECT {day} AS day, moment_id, team, channel, sentiment, 'factor' AS kind, "
        f"{key} AS item FROM touchpoint {picked} WHERE {rated} AND touchpoint.factors IS NOT NULL",
        f"SELECT {day} AS day, moment_id, team, channel, sentiment, 'said_why' AS kind, "
        f"'' AS item FROM touchpoint WHERE {rated} AND factors IS NOT NULL",
        f"SELECT {day} AS day, moment_id, team, channel, sentiment, 'lost' AS kind, "
        f"CAST(lost_minutes AS TEXT) AS item FROM touchpoint "
        f"WHERE {rated} AND lost_minutes IS NOT NULL",
    ]
    detail = "day, moment_id, sentiment, kind, item"
    members = {"all": "''", "team": "coalesce(team, '')", "channel": "channel"}
    return " UNION ALL ".join(
        f"SELECT '{dimension}' AS dimension, {member} AS member, {detail}, count(*) AS answers "
        f"FROM ({' UNION ALL '.join(answered)}) AS answered GROUP BY {detail}"
        + ("" if dimension == "all" else f", {member}")
        for dimension, member in members.items()
    )


async def recompute_details(session: AsyncSession) -> dict[DetailKey, int]:
    """What the detail rollups should hold, counted afresh from the touchpoints."""
    rows = await session.execute(
        text(_detail_recount(session)).columns(
            column("dimension"),
            column("member"),
            column("day", Date),
            *(column(name) for name in ("moment_id", "sentiment", "kind", "item", "answers")),
        )
    )
    return {(row[0], row[1], row[2], row[3], row[4], row[5], row[6]): int(row[7]) for row in rows}


_DETAIL_COLUMNS = "(dimension, member, day, moment_id, sentiment, kind, item, answers)"


async def _rebuild_details(session: AsyncSession, since: date | None) -> None:
    """Recount the detail rollups (from `since` on; earlier days are kept, as for the
    rollups). The caller holds the folders and writers off."""
    if since is None:
        await session.execute(delete(_detail_rollup))
        await session.execute(
            text(f"INSERT INTO detail_rollup {_DETAIL_COLUMNS} {_detail_recount(session)}")
        )
        return
    await session.execute(delete(_detail_rollup).where(_detail_rollup.c.day >= since))
    recount = text(
        f"INSERT INTO detail_rollup {_DETAIL_COLUMNS} {_detail_recount(session, since)}"
    ).bindparams(bindparam("since", type_=UtcDateTime))
    await session.execute(recount, {"since": _midnight(since)})


async def recompute(session: AsyncSession) -> dict[RollupKey, Counters]:
    """What the rollups should hold, counted afresh from the touchpoints."""
    expected: dict[RollupKey, Counters] = {}
    for dimension in Dimension:
        for grain in grains(dimension):
            for row in await session.execute(_recount(session, dimension, grain)):
                key = row[: len(rollups.KEY_COLUMNS)]
                expected[(key[0], key[1], key[2], key[3], key[4])] = tuple(
                    row[len(rollups.KEY_COLUMNS) :]
                )
    return expected


async def rebuild(
    session: AsyncSession,
    *,
    since: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Replace rollup rows by a recount from the touchpoints; returns the rows there are.

    Folders and writers of count deltas wait until the rebuild commits, so that no change
    is counted by the recount and again by its delta. `since` (a UTC day) keeps the rows of
    earlier periods as they are: touchpoints before it may have been purged, and their
    counts must outlive them. Pending deltas are folded first, so those earlier rows are
    complete; days from `since` on are recounted from the touchpoints; months from the one
    holding `since` on are summed from their day rows, so a month that straddles `since`
    keeps the counts of its purged days.

    `progress(done, total)` is told of the recount statements at the start and as each ends.
    """
    steps = sum(len(grains(d)) for d in Dimension) if since is None else len(Dimension) + 1
    done = 0

    def _stepped(count: int = 1) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, steps)

    _stepped(0)

    await rollups.lock_for_rebuild(session)
    await epoch.raise_epoch(session)
    columns = [*rollups.KEY_COLUMNS, *rollups.STORED_COLUMNS]
    if since is None:
        await rollups.discard_pending(session)
        await session.execute(delete(_rollup))
        for dimension in Dimension:
            for grain in grains(dimension):
                recount = _recount(session, dimension, grain)
                await session.execute(_rollup.insert().from_select(columns, recount))
                _stepped()
    else:
        await rollups.fold(session)
        first_month = since.replace(day=1)
        await session.execute(
            delete(_rollup).where(
                or_(
                    and_(_rollup.c.grain == Grain.day.value, _rollup.c.period >= since),
                    and_(_rollup.c.grain == Grain.month.value, _rollup.c.period >= first_month),
                )
            )
        )
        for dimension in Dimension:
            recount = _recount(session, dimension, Grain.day).where(
                _touchpoint.c.occurred_at >= _midnight(since)
            )
            await session.execute(_rollup.insert().from_select(columns, recount))
            _stepped()
        await session.execute(
            _rollup.insert().from_select(columns, _months_from_days(session, first_month))
        )
        _stepped()
    await _rebuild_details(session, since)
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
            *(func.sum(_rollup.c[name]).label(name) for name in rollups.STORED_COLUMNS),
        )
        .where(
            _rollup.c.grain == Grain.day.value,
            _rollup.c.dimension != Dimension.agent.value,
            day >= first_month,
        )
        .group_by(*keys, month)
    )
