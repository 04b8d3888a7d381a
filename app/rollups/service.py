"""Counting without hot rows: deltas appended by writers, folded in the background.

Writers call `record` with the deltas of what they changed (`added`, `rerated`), in their
own transaction. `fold` moves committed deltas into the rollups in one statement; only
one folder runs at a time (a PostgreSQL advisory lock; SQLite has a single writer anyway).
Readers (`reads`) add the rollups of a range of whole UTC days and
the deltas of those days not folded yet, in one snapshot: a figure never counts a change
twice or misses one, however far behind the folder is.
"""

import asyncio
import logging
import time as clock
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple, Protocol, cast

from sqlalchemy import (
    Select,
    Table,
    TextClause,
    delete,
    func,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.bulk_write import write_rows
from app.db import Database, utcnow
from app.rollups import details, epoch
from app.rollups.models import DetailDelta, MomentRollup, RollupDelta
from app.rollups.tally import COUNT_COLUMNS, RATING_KEYS, Tally, tally_at
from app.scales import SCALES

logger = logging.getLogger(__name__)


class Dimension(StrEnum):
    all = "all"
    team = "team"
    channel = "channel"
    agent = "agent"


class Grain(StrEnum):
    day = "day"
    month = "month"


def grains(dimension: Dimension) -> tuple[Grain, ...]:
    """The periods a dimension is counted in. Agents are many and only ever read for one
    moment at a time: their day rows are enough, and month rows would double what every
    fold writes for them."""
    return (Grain.day,) if dimension is Dimension.agent else (Grain.day, Grain.month)


RollupKey = tuple[str, str, date, int, str]
"""(dimension, grain, period, moment_id, member): the primary key of a rollup row."""
KEY_COLUMNS = ("dimension", "grain", "period", "moment_id", "member")
RATE_COLUMNS = ("responses", "negatives")
STORED_COLUMNS = (*COUNT_COLUMNS, *RATE_COLUMNS)
"""Every counter of a rollup row: the counts of a `Tally`, and two sums derived from them."""
Counters = tuple[int, ...]
"""A rollup row's counters, in `STORED_COLUMNS` order."""

_rollup = cast(Table, MomentRollup.__table__)
_delta = cast(Table, RollupDelta.__table__)
FOLD_LOCK = 0x6D6F74_01
"""The PostgreSQL advisory lock held by the one folder at work (any 64-bit number that
no other lock of the database uses)."""


# --- what writers record ---


class Counted(Protocol):
    """What the counts read of a touchpoint: its `Facts`, or the row just written, which
    names the same fields (a batch makes thousands: no object is built to count one)."""

    @property
    def moment_id(self) -> int: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def channel(self) -> str: ...
    @property
    def team(self) -> str | None: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def complaint(self) -> bool: ...
    @property
    def rating_scale(self) -> str | None: ...
    @property
    def rating_value(self) -> int | None: ...
    @property
    def factors(self) -> list[str] | None: ...
    @property
    def lost_minutes(self) -> int | None: ...


class Facts(NamedTuple):
    """What the counts need of one touchpoint (a tuple: a batch makes thousands)."""

    moment_id: int
    occurred_at: datetime
    channel: str
    team: str | None
    agent: str | None
    complaint: bool
    rating_scale: str | None
    rating_value: int | None
    factors: list[str] | None = None
    """Keys of the factors picked with the rating (counted in `details`)."""
    lost_minutes: int | None = None


class DeltaRow(NamedTuple):
    """One row of `rollup_delta`, in its column order."""

    recorded_at: datetime
    moment_id: int
    day: date
    team: str
    channel: str
    agent: str
    rating_scale: str | None
    rating_value: int | None
    touchpoints: int
    complaints: int
    ratings: int


DELTA_COLUMNS = DeltaRow._fields


def added(facts: Iterable[Counted], *, times: int = 1) -> list[DeltaRow]:
    """Deltas that add touchpoints (`times=1`) or take them off (`times=-1`), summed per
    moment, day, team, channel, agent and rating: one row per distinct combination."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for fact in facts:
        key = (
            fact.moment_id,
            fact.occurred_at.astimezone(UTC).date(),
            fact.team or "",
            fact.channel,
            fact.agent or "",
            fact.rating_scale,
            fact.rating_value,
        )
        cell = sums.get(key)
        if cell is None:
            cell = sums[key] = [0, 0, 0]
        cell[0] += times
        if fact.complaint:
            cell[1] += times
        if fact.rating_scale is not None:
            cell[2] += times
    now = utcnow()
    return [DeltaRow(now, *key, *counts) for key, counts in sums.items()]


def rerated(facts: Facts, *, previous: tuple[str, int] | None) -> list[DeltaRow]:
    """Deltas that move a touchpoint's rating from `previous` to the one in `facts`."""
    now, day = utcnow(), facts.occurred_at.astimezone(UTC).date()
    where = (facts.moment_id, day, facts.team or "", facts.channel, facts.agent or "")
    rows = []
    if previous is not None:
        rows.append(DeltaRow(now, *where, *previous, 0, 0, -1))
    if facts.rating_scale is not None and facts.rating_value is not None:
        rows.append(DeltaRow(now, *where, facts.rating_scale, facts.rating_value, 0, 0, 1))
    return rows


async def record(
    session: AsyncSession,
    rows: Sequence[DeltaRow],
    answer_details: Sequence[details.DetailRow] = (),
) -> None:
    """Append deltas (of the counts, and of the answers' details) in the session's
    transaction (PostgreSQL: by COPY)."""
    if rows:
        await write_rows(await session.connection(), _delta, DELTA_COLUMNS, rows)
    await details.record(session, answer_details)


# --- folding ---


def negative_rating_sql(scales: Collection[str]) -> str:
    """SQL: the delta's rating (`rating_scale`, `rating_value`), on one of these scales, is
    in its scale's negative band."""
    return (
        " OR ".join(
            f"(rating_scale = '{scale.name.value}' AND rating_value <= {scale.negative_max})"
            for scale in SCALES.values()
            if scale.name.value in scales
        )
        or "false"
    )


NEGATIVE_RATING_SQL = negative_rating_sql([scale.value for scale in SCALES])
"""SQL: the delta's rating (`rating_scale`, `rating_value`) is in its scale's negative band."""
DELTA_MEMBER_SQL = {
    Dimension.all: "''",
    Dimension.team: "team",
    Dimension.channel: "channel",
    Dimension.agent: "agent",
}
"""SQL: the member of each dimension a delta row counts for."""


DELTA_COUNTER_SQL = {
    "touchpoints": "touchpoints",
    "complaints": "complaints",
    **{
        key.column: f"CASE WHEN rating_scale = '{key.scale.value}' AND rating_value = {key.value} "
        "THEN ratings ELSE 0 END"
        for key in RATING_KEYS
    },
    "responses": "CASE WHEN rating_scale IS NOT NULL THEN ratings ELSE 0 END",
    "negatives": f"CASE WHEN {NEGATIVE_RATING_SQL} THEN ratings ELSE 0 END",
}
"""SQL: each rollup counter (`STORED_COLUMNS`) of one delta row: its rating is spread over
its column once."""


RATING_COLUMN_SCALE = {key.column: key.scale.value for key in RATING_KEYS}
"""The scale each rating counter belongs to, by column."""


def folded_counters(scales: Iterable[str]) -> tuple[str, ...]:
    """The rollup counters (`STORED_COLUMNS` order) that deltas rated on these scales (or
    not rated) can change: the others stay as they are, so a fold leaves them out."""
    return tuple(
        name
        for name in STORED_COLUMNS
        if name not in RATING_COLUMN_SCALE or RATING_COLUMN_SCALE[name] in scales
    )


def _pivoted(scales: Sequence[str], month_of_day: str) -> str:
    """Each delta of `moved` as the rollup counters its scales can change, and its month."""
    counters = folded_counters(scales)
    counter_sql = {
        **DELTA_COUNTER_SQL,
        "negatives": f"CASE WHEN {negative_rating_sql(scales)} THEN ratings ELSE 0 END",
    }
    columns = [
        "moment_id",
        "day",
        f"{month_of_day} AS month",
        "team",
        "channel",
        "agent",
        *(f"{counter_sql[name]} AS {name}" for name in counters),
    ]
    return f"SELECT {', '.join(columns)} FROM moved"


def _expanded(counters: Sequence[str]) -> str:
    """Deltas of `pivoted` summed into rollup rows: every dimension and its grains."""
    periods = {Grain.day: "day", Grain.month: "month"}
    sums = ", ".join(f"sum({name}) AS {name}" for name in counters)
    pieces = []
    for dimension, member in DELTA_MEMBER_SQL.items():
        for grain in grains(dimension):
            period = periods[grain]
            grouping = f"{period}, moment_id" + ("" if dimension is Dimension.all else ", member")
            pieces.append(
                f"SELECT '{dimension.value}' AS dimension, '{grain.value}' AS grain, "
                f"{period} AS period, moment_id, {member} AS member, {sums} "
                f"FROM pivoted GROUP BY {grouping}"
            )
    return " UNION ALL ".join(pieces)


def _upsert(counters: Sequence[str]) -> str:
    # WHERE keeps SQLite from reading ON CONFLICT as a join clause. No order: only the one
    # folder (or a rebuild, under the same lock) writes the rollups, so no other writer can
    # wait on rows locked in another order, and sorting the rows was a fifth of a fold.
    add = ", ".join(f"{name} = moment_rollup.{name} + excluded.{name}" for name in counters)
    return (
        f"INSERT INTO moment_rollup ({_KEYS}, {', '.join(counters)}) "
        "SELECT * FROM expanded WHERE true "
        f"ON CONFLICT ({_KEYS}) DO UPDATE SET {add} "
        f"RETURNING {_KEYS}, touchpoints"
    )


_KEYS = ", ".join(KEY_COLUMNS)
_MOVED = "moment_id, day, team, channel, agent, rating_scale, rating_value, touchpoints, " + (
    "complaints, ratings"
)


_MONTH_POSTGRES = "CAST(date_trunc('month', day) AS date)"
_MONTH_SQLITE = "date(day, 'start of month')"
"""SQL: the first day of a delta's month."""


def _scales_sql(scales: Sequence[str]) -> str:
    """SQL: the delta is not rated, or rated on one of these scales."""
    listed = ", ".join(f"'{scale}'" for scale in scales)
    return "rating_scale IS NULL" + (f" OR rating_scale IN ({listed})" if scales else "")


@cache
def _fold_statement(backend: str, scales: tuple[str, ...]) -> TextClause:
    """The fold of the deltas rated on `scales` (or not rated), which the folder found
    pending: it computes, sums and adds only the counters those can change (a deployment
    rates on one or two of the scales, and most of a fold's work was the sums of the
    others' columns, zero in every row).

    PostgreSQL: the DELETE sees exactly the committed deltas of its snapshot and the same
    statement adds exactly those; a delta committed meanwhile stays for the next fold, as
    does one rated on a scale this fold does not count. SQLite: the fold runs in a write
    transaction, which no other writer can share, so the deltas up to the highest id are
    exactly those it adds and then deletes.
    """
    counters = folded_counters(scales)
    if backend == "postgresql":
        return text(
            f"WITH moved AS (DELETE FROM rollup_delta WHERE {_scales_sql(scales)} "
            f"RETURNING {_MOVED}), "
            f"pivoted AS ({_pivoted(scales, _MONTH_POSTGRES)}), "
            f"expanded AS ({_expanded(counters)}), "
            f"folded AS ({_upsert(counters)}) "
            f"SELECT (SELECT count(*) FROM moved) AS moved, "
            f"{', '.join('folded.' + name for name in KEY_COLUMNS)} "
            "FROM (SELECT 1) AS one LEFT JOIN folded ON folded.touchpoints <= 0"
        )
    return text(
        f"WITH moved AS (SELECT {_MOVED} FROM rollup_delta WHERE id <= :last), "
        f"pivoted AS ({_pivoted(scales, _MONTH_SQLITE)}), "
        f"expanded AS ({_expanded(counters)}) "
        f"{_upsert(counters)}"
    )


async def _pending_scales(session: AsyncSession, ratings: Select[Any]) -> tuple[str, ...]:
    """The scales the pending deltas are rated on, as a fold statement names them."""
    found = set((await session.execute(ratings.distinct())).scalars())
    return tuple(name.value for name in SCALES if name.value in found)


async def _lock_folding(session: AsyncSession, *, wait: bool) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    if wait:
        await session.execute(select(func.pg_advisory_xact_lock(FOLD_LOCK)))
        return True
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(FOLD_LOCK))))


async def fold(session: AsyncSession) -> int | None:
    """Move the committed deltas into the rollups, in the session's transaction; returns how
    many were folded, or None when another folder is at work.

    Rollup rows left with no touchpoint (after an erasure) are deleted, as a rebuild would
    not write them.
    """
    if not await _lock_folding(session, wait=False):
        return None
    # Raised whatever moves: a fold of nothing changes no figure but costs one row write.
    await epoch.raise_epoch(session)
    await details.fold(session)
    emptied: list[tuple[Any, ...]] = []
    backend = session.get_bind().dialect.name
    if backend == "postgresql":
        scales = await _pending_scales(session, select(_delta.c.rating_scale))
        rows = (await session.execute(_fold_statement(backend, scales))).all()
        moved = int(rows[0][0])
        emptied = [tuple(row[1:]) for row in rows if row[1] is not None]
    else:
        last = await session.scalar(select(func.max(_delta.c.id)))
        if last is None:
            return 0
        moved = int(await session.scalar(select(func.count()).where(_delta.c.id <= last)) or 0)
        scales = await _pending_scales(
            session, select(_delta.c.rating_scale).where(_delta.c.id <= last)
        )
        folded = (await session.execute(_fold_statement(backend, scales), {"last": last})).all()
        emptied = [tuple(row[:-1]) for row in folded if row[-1] <= 0]
        await session.execute(delete(_delta).where(_delta.c.id <= last))
    if emptied:
        keys = tuple_(*(_rollup.c[name] for name in KEY_COLUMNS))
        await session.execute(delete(_rollup).where(keys.in_(emptied)))
    return moved


async def lock_for_rebuild(session: AsyncSession) -> None:
    """Hold off folders and writers of deltas until the session's transaction ends.

    A rebuild recounts from the touchpoints: a writer committing in between would be counted
    by the recount and again by its deltas. Writers already holding the table finish first.
    """
    await _lock_folding(session, wait=True)
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("LOCK TABLE rollup_delta, detail_delta IN EXCLUSIVE MODE"))


async def discard_pending(session: AsyncSession) -> None:
    """Drop every delta not folded: for a rebuild that recounts everything."""
    await epoch.raise_epoch(session)
    await session.execute(delete(_delta))
    await details.discard_pending(session)


@dataclass(frozen=True, slots=True)
class Pending:
    deltas: int
    oldest: datetime | None


_PENDING = union_all(
    select(_delta.c.recorded_at), select(cast(Table, DetailDelta.__table__).c.recorded_at)
).subquery()


async def pending(session: AsyncSession) -> Pending:
    """How many deltas (of the counts and of the answers' details) wait to be folded, and
    when the oldest of them was written. Both kinds count: a fold reads each table in a
    statement of its own, so a change committed between the two leaves its detail deltas
    for the next fold even when no count delta is left."""
    row = (await session.execute(select(func.count(), func.min(_PENDING.c.recorded_at)))).one()
    return Pending(int(row[0]), row[1])


async def fold_once(database: Database) -> int | None:
    """One fold in a transaction of its own, observed in the metrics.

    The backlog is observed just before the fold, when it is largest: that is the lag a
    reader's figures may have to make up for.
    """
    async with database.read_sessions() as session:
        backlog = await pending(session)
    age = 0.0 if backlog.oldest is None else max(0.0, (utcnow() - backlog.oldest).total_seconds())
    metrics.observe_pending(deltas=backlog.deltas, oldest_age=age)
    if backlog.deltas == 0:
        return 0
    started = clock.perf_counter()
    async with database.write_sessions() as session, session.begin():
        moved = await fold(session)
    if moved is not None:
        metrics.FOLD_DURATION.observe(clock.perf_counter() - started)
        metrics.DELTAS_FOLDED.inc(moved)
    return moved


async def run_folder(database: Database, *, interval: float) -> None:
    """Start a fold every `interval` seconds until cancelled; a failed fold is logged and
    retried (it changed nothing: a fold is one transaction).

    The interval counts from the start of a fold: under load a fold may take longer than
    the interval, and the deltas that came meanwhile are then folded at once rather than
    after another wait (which would only add to the lag readers' figures make up for).
    """
    while True:
        started = clock.monotonic()
        try:
            await fold_once(database)
        except Exception:
            logger.exception("folding the rollup deltas failed; retrying")
        await asyncio.sleep(max(0.0, interval - (clock.monotonic() - started)))


# --- the whole table, for rebuilds and checks ---


async def stored(session: AsyncSession) -> dict[RollupKey, Counters]:
    """What the rollups hold, without the pending deltas."""
    columns = [_rollup.c[name] for name in (*KEY_COLUMNS, *STORED_COLUMNS)]
    rows = await session.execute(select(*columns))
    return {_key_of(row): tuple(row[len(KEY_COLUMNS) :]) for row in rows}


async def counted(session: AsyncSession) -> dict[RollupKey, Counters]:
    """What the rollups will hold once every pending delta is folded: what readers see."""
    tallies: dict[RollupKey, Tally] = {
        key: Tally(counters[: len(COUNT_COLUMNS)])
        for key, counters in (await stored(session)).items()
    }
    for row in (await session.execute(select(*(_delta.c[name] for name in DELTA_COLUMNS)))).all():
        delta = DeltaRow(*row)
        members = {
            Dimension.all: "",
            Dimension.team: delta.team,
            Dimension.channel: delta.channel,
            Dimension.agent: delta.agent,
        }
        periods = {Grain.day: delta.day, Grain.month: delta.day.replace(day=1)}
        for dimension, member in members.items():
            for grain in grains(dimension):
                key = (dimension.value, grain.value, periods[grain], delta.moment_id, member)
                tally_at(tallies, key).add_counts(
                    touchpoints=delta.touchpoints,
                    complaints=delta.complaints,
                    scale=delta.rating_scale,
                    value=delta.rating_value,
                    ratings=delta.ratings,
                )
    return {
        key: (*tally.counts, tally.responses, tally.negatives)
        for key, tally in tallies.items()
        if tally.touchpoints > 0
    }


def _key_of(row: Sequence[Any]) -> RollupKey:
    dimension, grain, period, moment_id, member = row[: len(KEY_COLUMNS)]
    return (dimension, grain, period, moment_id, member)
