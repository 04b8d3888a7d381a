"""The rollups always equal a recount from the touchpoints, whatever was written."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.insights import counts
from app.moments.models import Moment
from app.rollups import details as rollup_details
from app.rollups import service as rollups
from app.rollups.models import MomentRollup
from app.rollups.reads import split_days
from app.scales import SCALES, ScaleName
from app.touchpoints.models import Touchpoint

pytestmark = pytest.mark.anyio

SCALE_VALUES = {
    "csat5": (1, 5),
    "nps11": (0, 10),
    "ces7": (1, 7),
    "smiley4": (1, 4),
    "thumbs": (0, 1),
}
START = datetime(2026, 9, 28, tzinfo=UTC)
IDS = 40
CLIENTS = 4
# Windows over the touchpoints' eight days: whole UTC days across the end of September
# (read from the rollups and pending deltas alone), and one whose bounds fall inside days
# (the edges read from the touchpoints). The previous windows are checked too.
WHOLE_DAYS = ("2026-09-30T00:00:00Z", "2026-10-04T00:00:00Z")
PARTIAL_DAYS = ("2026-09-29T06:00:00Z", "2026-10-04T13:00:00Z")

# Factors every channel's defaults offer, per sentiment: any answer may pick some.
COMMON_FACTORS = {
    "negative": ["not-solved", "had-to-repeat", "unclear-answer"],
    "neutral": ["took-long", "partly-solved"],
    "positive": ["solved", "quick", "friendly"],
}


@st.composite
def _rating(draw: st.DrawFn) -> dict[str, Any]:
    scale = draw(st.sampled_from(sorted(SCALE_VALUES)))
    value = draw(st.integers(*SCALE_VALUES[scale]))
    rating: dict[str, Any] = {"scale": scale, "value": value}
    sentiment = SCALES[ScaleName(scale)].sentiment(value).value
    picked = draw(st.lists(st.sampled_from(COMMON_FACTORS[sentiment]), unique=True, max_size=2))
    if picked:
        rating["factors"] = picked
    lost = draw(st.one_of(st.none(), st.integers(0, 6).map(lambda tens: tens * 10)))
    if lost is not None:
        rating["lost_minutes"] = lost
    return rating


ratings = st.one_of(st.none(), _rating())


@st.composite
def touchpoints(draw: st.DrawFn) -> dict[str, Any]:
    # Around the end of a month, in several time zones, so day and month edges differ
    # between local and UTC time; ids and clients from small pools so that retries, reuse
    # and erasures of several touchpoints at once happen.
    offset = timezone(timedelta(hours=draw(st.sampled_from([-5, 0, 3, 14]))))
    occurred = START + timedelta(minutes=draw(st.integers(0, 60 * 24 * 8)))
    body: dict[str, Any] = {
        "id": f"t{draw(st.integers(0, IDS))}",
        "moment": draw(st.sampled_from(["m.one", "m.two", "m.three"])),
        "channel": draw(st.sampled_from(["call", "email", "chat"])),
        "occurred_at": occurred.astimezone(offset).isoformat(),
        "complaint": draw(st.booleans()),
    }
    for field, values in (("team", ["red", "blue"]), ("client_ref", _clients())):
        value = draw(st.sampled_from([None, *values]))
        if value is not None:
            body[field] = value
    rating = draw(ratings)
    if rating is not None:
        body["rating"] = rating
    return body


def _clients() -> list[str]:
    return [f"c{number}" for number in range(CLIENTS)]


ids = st.integers(0, IDS)
picks = st.integers(0, 10)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.lists(touchpoints(), min_size=1, max_size=12)),
        st.tuples(st.just("rate"), st.tuples(ids, ratings.filter(bool))),
        # A survey issued for a touchpoint and answered with one click at once.
        st.tuples(st.just("survey"), st.tuples(ids, st.sampled_from(sorted(SCALE_VALUES)), picks)),
        # A link issued earlier answered again: its touchpoint may be erased by now.
        st.tuples(st.just("answer"), st.tuples(st.integers(0, 20), picks)),
        st.tuples(st.just("erase"), st.sampled_from(_clients())),
        st.tuples(st.just("fold"), st.none()),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The test's database, opened once for all examples (statements compile once)."""
    opened = Database(database_url)
    try:
        yield opened
    finally:
        await opened.dispose()


def _path(url: str) -> str:
    return url.removeprefix("http://test")


async def _answer(client: httpx.AsyncClient, links: list[str], pick: int) -> None:
    response = await client.get(_path(links[pick % len(links)]))
    # Gone: the touchpoint was erased since the link was issued.
    assert response.status_code in (200, 410), response.text


async def _apply(
    client: httpx.AsyncClient, database: Database, issued: list[list[str]], step: tuple[str, Any]
) -> None:
    """Carry out one operation through the API (or, for a fold, as the folder does)."""
    kind, payload = step
    if kind == "batch":
        response = await client.post("/v1/touchpoints/batch", json={"touchpoints": payload})
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["accepted"] + result["duplicates"] + result["rejected"] == len(payload)
    elif kind == "rate":
        number, rating = payload
        response = await client.put(f"/v1/touchpoints/t{number}/rating", json=rating)
        assert response.status_code in (200, 404), response.text
    elif kind == "survey":
        number, scale, pick = payload
        response = await client.post(f"/v1/touchpoints/t{number}/survey", json={"scale": scale})
        assert response.status_code in (201, 404), response.text
        if response.status_code == 201:
            issued.append([link["url"] for link in response.json()["links"]])
            await _answer(client, issued[-1], pick)
    elif kind == "answer":
        which, pick = payload
        if issued:
            await _answer(client, issued[which % len(issued)], pick)
    elif kind == "erase":
        response = await client.delete(f"/v1/clients/{payload}")
        assert response.status_code == 200, response.text
    else:
        async with database.write_sessions() as session, session.begin():
            assert await rollups.fold(session) is not None


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _figures_of_touchpoints(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[str, tuple[int, int, int, int]]:
    """(touchpoints, responses, negatives, complaints) per moment in [start, end), counted
    from the touchpoints themselves."""
    rows = await session.execute(
        select(
            Moment.key,
            func.count(),
            func.count(Touchpoint.rating_scale),
            func.sum(case((Touchpoint.sentiment == "negative", 1), else_=0)),
            func.sum(case((Touchpoint.complaint, 1), else_=0)),
        )
        .join(Moment, Moment.id == Touchpoint.moment_id)
        .where(Touchpoint.occurred_at >= start, Touchpoint.occurred_at < end)
        .group_by(Moment.key)
    )
    return {key: (int(n), int(r), int(k), int(c)) for key, n, r, k, c in rows}


def _sums(figures: dict[str, tuple[int, int, int, int]]) -> tuple[int, int, int]:
    """Touchpoints, responses and complaints of every moment together."""
    return (
        sum(f[0] for f in figures.values()),
        sum(f[1] for f in figures.values()),
        sum(f[3] for f in figures.values()),
    )


def _headline(headline: dict[str, Any]) -> tuple[int, int, int]:
    return headline["touchpoints"], headline["responses"], headline["complaints"]


async def _check_counts(client: httpx.AsyncClient, database: Database) -> None:
    """The rollups as readers see them equal a recount, and so does an overview of whole
    days (read from the rollups and pending deltas alone), in the window and before it."""
    whole = (_at(WHOLE_DAYS[0]), _at(WHOLE_DAYS[1]))
    previous = (whole[0] - (whole[1] - whole[0]), whole[0])
    async with database.read_sessions() as session:
        assert await rollups.counted(session) == await counts.recompute(session)
        assert await rollup_details.counted(session) == await counts.recompute_details(session)
        expected = [await _figures_of_touchpoints(session, *span) for span in (whole, previous)]
    overview = await client.get(
        "/v1/insights/overview", params={"from": WHOLE_DAYS[0], "to": WHOLE_DAYS[1]}
    )
    assert overview.status_code == 200, overview.text
    assert _headline(overview.json()["current"]) == _sums(expected[0])
    assert _headline(overview.json()["previous"]) == _sums(expected[1])


async def _check_weak_spots(client: httpx.AsyncClient, database: Database) -> None:
    """Each moment's figures in a window whose bounds fall inside days equal a count of its
    touchpoints: the edges are read from them, the days between from the counts."""
    async with database.read_sessions() as session:
        expected = await _figures_of_touchpoints(
            session, _at(PARTIAL_DAYS[0]), _at(PARTIAL_DAYS[1])
        )
    spots = await client.get(
        "/v1/insights/weak-spots", params={"from": PARTIAL_DAYS[0], "to": PARTIAL_DAYS[1]}
    )
    assert spots.status_code == 200, spots.text
    ranked = spots.json()["data"] + spots.json()["insufficient_data"]
    assert {
        s["moment"]: (s["touchpoints"], s["responses"], s["negatives"], s["complaints"])
        for s in ranked
    } == expected
    async with database.read_sessions() as session:
        lost = await _lost_times_of_touchpoints(session, _at(PARTIAL_DAYS[0]), _at(PARTIAL_DAYS[1]))
    assert {
        s["moment"]: (s["lost_time"]["responses"], round(s["lost_time"]["mean_minutes"], 9))
        for s in ranked
        if s["lost_time"] is not None
    } == lost


async def _lost_times_of_touchpoints(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[str, tuple[int, float]]:
    """(answers giving lost time, their mean minutes) per moment, from the touchpoints."""
    rows = await session.execute(
        select(Moment.key, func.count(), func.avg(Touchpoint.lost_minutes))
        .join(Moment, Moment.id == Touchpoint.moment_id)
        .where(
            Touchpoint.occurred_at >= start,
            Touchpoint.occurred_at < end,
            Touchpoint.lost_minutes.is_not(None),
        )
        .group_by(Moment.key)
    )
    return {key: (int(n), round(float(mean), 9)) for key, n, mean in rows}


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=operations)
async def test_rollups_and_figures_equal_a_recount_after_every_write(
    client: httpx.AsyncClient, database: Database, steps: list[tuple[str, Any]]
) -> None:
    # The database is shared by all examples: the property must hold after any history,
    # and after every step of it, folded or not.
    issued: list[list[str]] = []
    for step in steps:
        await _apply(client, database, issued, step)
        await _check_counts(client, database)
    await _check_weak_spots(client, database)


async def test_rebuild_restores_rollups_that_drifted(
    client: httpx.AsyncClient, database_url: str
) -> None:
    body = {
        "moment": "m.one",
        "channel": "call",
        "occurred_at": "2026-10-31T23:30:00-02:00",
        "team": "red",
        "rating": {"scale": "csat5", "value": 2},
    }
    assert (await client.post("/v1/touchpoints", json=body)).status_code == 201
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            await rollups.fold(session)
            await session.execute(update(MomentRollup).values(touchpoints=99))
        async with database.write_sessions() as session, session.begin():
            assert await counts.rebuild(session) == 7
        async with database.read_sessions() as session:
            stored = await rollups.stored(session)
    finally:
        await database.dispose()
    # 23:30 at -02:00 is 01:30 UTC on November 1st: the UTC day and month count.
    assert {(k[0], k[1], k[2].isoformat(), k[4]) for k in stored} == {
        ("all", "day", "2026-11-01", ""),
        ("all", "month", "2026-11-01", ""),
        ("team", "day", "2026-11-01", "red"),
        ("team", "month", "2026-11-01", "red"),
        ("channel", "day", "2026-11-01", "call"),
        ("channel", "month", "2026-11-01", "call"),
        ("agent", "day", "2026-11-01", ""),
    }
    counters = [dict(zip(rollups.STORED_COLUMNS, row, strict=True)) for row in stored.values()]
    assert all(c["touchpoints"] == 1 and c["csat5_2"] == 1 for c in counters)
    assert all(c["responses"] == 1 and c["negatives"] == 1 for c in counters)


def _days(ranges: tuple[tuple[date, date], ...]) -> list[tuple[str, str]]:
    return [(a.isoformat(), b.isoformat()) for a, b in ranges]


def test_whole_days_split_into_months_and_days() -> None:
    ranges = split_days(date(2026, 8, 31), date(2026, 11, 3))
    assert _days(ranges.months) == [("2026-09-01", "2026-11-01")]
    assert _days(ranges.days) == [("2026-08-31", "2026-09-01"), ("2026-11-01", "2026-11-03")]
    assert ranges.minus_days == ()


def test_whole_months_are_not_used_when_days_are_asked_for() -> None:
    ranges = split_days(date(2026, 9, 1), date(2026, 11, 1), months=False)
    assert ranges.months == ()
    assert _days(ranges.days) == [("2026-09-01", "2026-11-01")]


def test_a_mostly_covered_month_is_read_as_the_month_minus_the_days_outside() -> None:
    ranges = split_days(date(2026, 10, 25), date(2026, 11, 23))
    assert _days(ranges.days) == [("2026-10-25", "2026-11-01")]
    assert _days(ranges.months) == [("2026-11-01", "2026-12-01")]
    assert _days(ranges.minus_days) == [("2026-11-23", "2026-12-01")]


def test_an_empty_range_of_days_reads_nothing() -> None:
    ranges = split_days(date(2026, 11, 3), date(2026, 11, 3))
    assert (ranges.months, ranges.days, ranges.minus_days) == ((), (), ())


async def test_a_fold_leaves_deltas_of_scales_it_did_not_find_for_the_next(
    client: httpx.AsyncClient, backend: str, database_url: str
) -> None:
    # On PostgreSQL the folder asks which scales are pending, then folds in a later snapshot:
    # deltas committed in between may be rated on a scale the fold does not count.
    if backend != "postgresql":
        pytest.skip("SQLite folds in its write transaction: nothing commits in between")
    for number, (scale, value) in enumerate([("csat5", 2), ("nps11", 9)]):
        body = {
            "id": f"s{number}",
            "moment": "m.one",
            "channel": "call",
            "occurred_at": "2026-10-01T10:00:00Z",
            "rating": {"scale": scale, "value": value},
        }
        assert (await client.post("/v1/touchpoints", json=body)).status_code == 201
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            statement = rollups._fold_statement("postgresql", ("csat5",))
            assert (await session.execute(statement)).all()[0][0] == 1
        async with database.read_sessions() as session:
            assert (await rollups.pending(session)).deltas == 1
            everything = await rollups.counted(session)
            stored = await rollups.stored(session)
        moment_day = next(counters for key, counters in stored.items() if key[:2] == ("all", "day"))
        folded = dict(zip(rollups.STORED_COLUMNS, moment_day, strict=True))
        assert (folded["touchpoints"], folded["csat5_2"], folded["nps11_9"]) == (1, 1, 0)
        async with database.write_sessions() as session, session.begin():
            assert await rollups.fold(session) == 1
        async with database.read_sessions() as session:
            assert (await rollups.pending(session)).deltas == 0
            assert await rollups.stored(session) == everything
    finally:
        await database.dispose()
