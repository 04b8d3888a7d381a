"""The rollups always equal a recount from the touchpoints, whatever was written."""

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from app.db import Database
from app.insights import counts
from app.rollups import service as rollups
from app.rollups.models import MomentRollup
from app.rollups.reads import split_days

pytestmark = pytest.mark.anyio

SCALE_VALUES = {
    "csat5": (1, 5),
    "nps11": (0, 10),
    "ces7": (1, 7),
    "smiley4": (1, 4),
    "thumbs": (0, 1),
}
START = datetime(2026, 9, 28, tzinfo=UTC)

ratings = st.one_of(
    st.none(),
    st.sampled_from(sorted(SCALE_VALUES)).flatmap(
        lambda scale: st.integers(*SCALE_VALUES[scale]).map(
            lambda value: {"scale": scale, "value": value}
        )
    ),
)


@st.composite
def touchpoints(draw: st.DrawFn) -> dict[str, Any]:
    # Around the end of a month, in several time zones, so day and month edges differ
    # between local and UTC time; ids from a small pool so that retries and reuse happen.
    offset = timezone(timedelta(hours=draw(st.sampled_from([-5, 0, 3, 14]))))
    occurred = START + timedelta(minutes=draw(st.integers(0, 60 * 24 * 8)))
    body: dict[str, Any] = {
        "id": f"t{draw(st.integers(0, 40))}",
        "moment": draw(st.sampled_from(["m.one", "m.two", "m.three"])),
        "channel": draw(st.sampled_from(["call", "email", "chat"])),
        "occurred_at": occurred.astimezone(offset).isoformat(),
        "complaint": draw(st.booleans()),
    }
    team = draw(st.sampled_from([None, "red", "blue"]))
    if team is not None:
        body["team"] = team
    rating = draw(ratings)
    if rating is not None:
        body["rating"] = rating
    return body


operations = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.lists(touchpoints(), min_size=1, max_size=12)),
        st.tuples(st.just("rate"), st.tuples(st.integers(0, 40), ratings.filter(bool))),
    ),
    min_size=1,
    max_size=8,
)


async def _rollups_match_touchpoints(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.read_sessions() as session:
            assert await rollups.counted(session) == await counts.recompute(session)
    finally:
        await database.dispose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=operations)
async def test_rollups_equal_a_recount_after_ingests_and_ratings(
    client: httpx.AsyncClient, database_url: str, steps: list[tuple[str, Any]]
) -> None:
    # The database is shared by all examples: the property must hold after any history.
    for kind, payload in steps:
        if kind == "batch":
            response = await client.post("/v1/touchpoints/batch", json={"touchpoints": payload})
            assert response.status_code == 200
        else:
            number, rating = payload
            response = await client.put(f"/v1/touchpoints/t{number}/rating", json=rating)
            assert response.status_code in (200, 404)
    await _rollups_match_touchpoints(database_url)


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
