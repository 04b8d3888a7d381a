"""Counts of what answers said beyond their rating: the factors picked, whether any was,
and the minutes lost.

Kept like the rollups (`service`): writers append signed deltas in their own transaction,
the folder adds them to `DetailRollup` in the same run and under the same lock as the
rollup deltas, and readers add the deltas not folded yet. Per moment, UTC day and
sentiment, for the moment as a whole and by team and by channel (the dimensions the
insights filter on), days only: a detail is read for a window, never for a month alone.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import (
    Date,
    Integer,
    String,
    Table,
    bindparam,
    column,
    delete,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.bulk_write import write_rows
from app.db import utcnow
from app.rollups.models import DetailDelta, DetailRollup
from app.scales import SCALES

if TYPE_CHECKING:
    from app.rollups.service import Counted, Facts

_rollup = cast(Table, DetailRollup.__table__)
_delta = cast(Table, DetailDelta.__table__)


class Kind(StrEnum):
    factor = "factor"
    """`item` is the key of a factor picked."""
    said_why = "said_why"
    """The answer picked at least one factor; `item` is empty."""
    lost = "lost"
    """`item` is the minutes lost, in decimal."""


DetailKey = tuple[str, str, date, int, str, str, str]
"""(dimension, member, day, moment_id, sentiment, kind, item): a `DetailRollup` key."""
KEY_COLUMNS = ("dimension", "member", "day", "moment_id", "sentiment", "kind", "item")
DIMENSION_MEMBER_SQL = {"all": "''", "team": "team", "channel": "channel"}
"""SQL: the member of each dimension (the rollups' `Dimension` values) a delta counts for."""


class DetailRow(NamedTuple):
    """One row of `detail_delta`, in its column order."""

    recorded_at: datetime
    day: date
    moment_id: int
    team: str
    channel: str
    sentiment: str
    kind: str
    item: str
    answers: int


DELTA_COLUMNS = DetailRow._fields


def _details(facts: "Counted") -> Iterable[tuple[str, str]]:
    """(kind, item) of every detail a touchpoint's current answer counts for."""
    if facts.factors:
        yield Kind.said_why.value, ""
        for key in facts.factors:
            yield Kind.factor.value, key
    if facts.lost_minutes is not None:
        yield Kind.lost.value, str(facts.lost_minutes)


def added(facts: Iterable["Counted"], *, times: int = 1) -> list[DetailRow]:
    """Deltas that add the details of touchpoints' answers (`times=1`) or take them off
    (`times=-1`), summed per moment, day, sentiment and detail."""
    sums: Counter[tuple[date, int, str, str, str, str, str]] = Counter()
    for fact in facts:
        if fact.rating_scale is None or fact.rating_value is None:
            continue
        if not fact.factors and fact.lost_minutes is None:
            continue
        sentiment = SCALES[cast(Any, fact.rating_scale)].sentiment(fact.rating_value).value
        where = (fact.occurred_at.astimezone(UTC).date(), fact.moment_id, fact.team or "")
        for kind, item in _details(fact):
            sums[(*where, fact.channel, sentiment, kind, item)] += times
    now = utcnow()
    return [DetailRow(now, *key, answers) for key, answers in sums.items() if answers]


def replaced(before: "Facts", after: "Facts") -> list[DetailRow]:
    """Deltas that move a touchpoint's details from one answer to the next."""
    rows: Counter[tuple[date, int, str, str, str, str, str]] = Counter()
    for row in (*added([before], times=-1), *added([after])):
        rows[
            (row.day, row.moment_id, row.team, row.channel, row.sentiment, row.kind, row.item)
        ] += row.answers
    now = utcnow()
    return [DetailRow(now, *key, answers) for key, answers in rows.items() if answers]


async def record(session: AsyncSession, rows: Sequence[DetailRow]) -> None:
    """Append deltas in the session's transaction (PostgreSQL: by COPY)."""
    if rows:
        await write_rows(await session.connection(), _delta, DELTA_COLUMNS, rows)


# --- folding (called by `service.fold`, under its lock) ---

_KEYS = ", ".join(KEY_COLUMNS)
_DETAIL = "day, moment_id, sentiment, kind, item"
_MOVED = "day, moment_id, team, channel, sentiment, kind, item, answers"
_EXPANDED = " UNION ALL ".join(
    f"SELECT '{dimension}' AS dimension, {member} AS member, {_DETAIL}, sum(answers) AS answers "
    f"FROM moved GROUP BY {_DETAIL}" + ("" if dimension == "all" else f", {member}")
    for dimension, member in DIMENSION_MEMBER_SQL.items()
)
_UPSERT = (
    f"INSERT INTO detail_rollup ({_KEYS}, answers) "
    # WHERE keeps SQLite from reading ON CONFLICT as a join clause. Unordered, as the
    # counts' fold: no other writer of these rows runs meanwhile.
    f"SELECT * FROM ({_EXPANDED}) AS expanded WHERE true "
    f"ON CONFLICT ({_KEYS}) DO UPDATE SET answers = detail_rollup.answers + excluded.answers "
    f"RETURNING {_KEYS}, answers"
)
_FOLD_POSTGRES = text(
    f"WITH moved AS (DELETE FROM detail_delta RETURNING {_MOVED}), "
    f"folded AS ({_UPSERT}) SELECT {_KEYS} FROM folded WHERE answers = 0"
)
_FOLD_SQLITE = text(
    f"WITH moved AS (SELECT {_MOVED} FROM detail_delta WHERE id <= :last) {_UPSERT}"
)


async def fold(session: AsyncSession) -> None:
    """Move the committed deltas into `DetailRollup`; rows left at zero are deleted, as a
    recount would not write them."""
    if session.get_bind().dialect.name == "postgresql":
        emptied = [tuple(row) for row in (await session.execute(_FOLD_POSTGRES)).all()]
    else:
        last = await session.scalar(select(func.max(_delta.c.id)))
        if last is None:
            return
        folded = (await session.execute(_FOLD_SQLITE, {"last": last})).all()
        emptied = [tuple(row[:-1]) for row in folded if row[-1] == 0]
        await session.execute(delete(_delta).where(_delta.c.id <= last))
    if emptied:
        keys = tuple_(*(_rollup.c[name] for name in KEY_COLUMNS))
        await session.execute(delete(_rollup).where(keys.in_(emptied)))


async def discard_pending(session: AsyncSession) -> None:
    """Drop every delta not folded: for a rebuild that recounts everything."""
    await session.execute(delete(_delta))


# --- reading ---


@dataclass(slots=True)
class DetailTally:
    """What a moment's answers said beyond their ratings, in a window."""

    factors: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Answers per (sentiment, factor key) that picked the factor."""
    said_why: Counter[str] = field(default_factory=Counter)
    """Answers per sentiment that picked any factor."""
    lost: Counter[int] = field(default_factory=Counter)
    """Answers (of any sentiment) per minutes lost."""

    def add(self, *, sentiment: str, kind: str, item: str, answers: int) -> None:
        if kind == Kind.factor:
            self.factors[(sentiment, item)] += answers
        elif kind == Kind.said_why:
            self.said_why[sentiment] += answers
        elif kind == Kind.lost:
            self.lost[int(item)] += answers

    def add_answer(
        self, *, sentiment: str, factors: Sequence[str] | None, lost: int | None
    ) -> None:
        """Count one stored answer (read from a touchpoint)."""
        if factors:
            self.said_why[sentiment] += 1
            for key in factors:
                self.factors[(sentiment, key)] += 1
        if lost is not None:
            self.lost[lost] += 1


@cache
def _window(dimension: str, by_moment: bool, one_sentiment: bool) -> Any:
    moment = " AND moment_id = :moment_id" if by_moment else ""
    sentiment = " AND (kind = 'lost' OR sentiment = :sentiment)" if one_sentiment else ""
    days = f"day >= :first AND day < :last{moment}{sentiment}"
    member = DIMENSION_MEMBER_SQL[dimension]
    # Minutes lost are read whatever the answer's sentiment: summed over sentiments here,
    # they come back in a third of the rows.
    pieces = (
        "moment_id, CASE WHEN kind = 'lost' THEN '' ELSE sentiment END AS sentiment, kind, "
        "item, answers"
    )
    sql = (
        f"SELECT moment_id, sentiment, kind, item, sum(answers) AS answers FROM ("
        f"SELECT {pieces} FROM detail_rollup "
        f"WHERE dimension = :dimension AND member = :member AND {days} "
        f"UNION ALL SELECT {pieces} FROM detail_delta "
        f"WHERE {member} = :member AND {days}"
        ") AS pieces GROUP BY moment_id, sentiment, kind, item"
    )
    return (
        text(sql)
        .bindparams(bindparam("first", type_=Date), bindparam("last", type_=Date))
        .columns(
            column("moment_id", Integer),
            column("sentiment", String),
            column("kind", String),
            column("item", String),
            column("answers", Integer),
        )
    )


async def tallies(
    session: AsyncSession,
    *,
    first: date,
    last: date,
    into: dict[int, DetailTally],
    dimension: str = "all",
    member: str = "",
    moment_id: int | None = None,
    sentiment: str | None = None,
) -> None:
    """Add the details of the whole UTC days [first, last) of one member of a dimension
    (`all`: the moment as a whole) to `into`, per moment: rollups plus pending deltas, in
    one statement. With `sentiment`, only the factors of answers of that sentiment (and
    the minutes lost of all)."""
    params: dict[str, Any] = {"first": first, "last": last, "dimension": dimension}
    params["member"] = member
    if moment_id is not None:
        params["moment_id"] = moment_id
    if sentiment is not None:
        params["sentiment"] = sentiment
    statement = _window(dimension, moment_id is not None, sentiment is not None)
    rows = (await session.execute(statement, params)).all()
    for found_moment, found_sentiment, kind, item, answers in rows:
        if answers:
            tally = into.get(found_moment)
            if tally is None:
                tally = into[found_moment] = DetailTally()
            tally.add(sentiment=found_sentiment, kind=kind, item=item, answers=answers)


# --- the whole table, for rebuilds and checks ---


async def stored(session: AsyncSession) -> dict[DetailKey, int]:
    """What `DetailRollup` holds, without the pending deltas."""
    rows = await session.execute(select(*(_rollup.c[name] for name in (*KEY_COLUMNS, "answers"))))
    return {_key_of(row): int(row[-1]) for row in rows}


async def counted(session: AsyncSession) -> dict[DetailKey, int]:
    """What `DetailRollup` will hold once every pending delta is folded."""
    found = Counter(await stored(session))
    for row in await session.execute(select(*(_delta.c[name] for name in DELTA_COLUMNS))):
        delta = DetailRow(*row)
        detail = (delta.day, delta.moment_id, delta.sentiment, delta.kind, delta.item)
        for dimension, member in (("all", ""), ("team", delta.team), ("channel", delta.channel)):
            found[(dimension, member, *detail)] += delta.answers
    return {key: answers for key, answers in found.items() if answers}


def _key_of(row: Sequence[Any]) -> DetailKey:
    dimension, member, day, moment_id, sentiment, kind, item = row[: len(KEY_COLUMNS)]
    return (dimension, member, day, moment_id, sentiment, kind, item)
