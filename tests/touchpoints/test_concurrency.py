"""Ids posted by several requests at once are stored exactly once."""

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from app.db import Database
from app.moments import service as moments_service
from app.moments.schemas import MomentCreate
from app.touchpoints import bulk
from app.touchpoints.models import Touchpoint
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


async def test_overlapping_concurrent_batches_store_each_id_once(
    client: httpx.AsyncClient,
) -> None:
    # Six requests, each overlapping its neighbours by half of its ids.
    batches = [
        [touchpoint(id=f"o-{i:03d}") for i in range(start, start + 40)]
        for start in range(0, 120, 20)
    ]
    responses = await asyncio.gather(
        *(client.post("/v1/touchpoints/batch", json={"touchpoints": b}) for b in batches)
    )
    assert all(r.status_code == 200 for r in responses)
    results = [r.json() for r in responses]
    assert sum(r["accepted"] for r in results) == 140
    assert sum(r["duplicates"] for r in results) == 240 - 140
    assert all(r["rejected"] == 0 for r in results)
    listed = (await client.get("/v1/touchpoints", params={"limit": 500})).json()["data"]
    assert sorted(tp["id"] for tp in listed) == [f"o-{i:03d}" for i in range(140)]


async def test_bulk_insert_skips_rows_that_another_request_stored(database_url: str) -> None:
    """The fallback path: the direct insert meets stored ids and must skip exactly those."""
    database = Database(database_url)
    try:
        async with database.write_sessions() as session:
            moment = await moments_service.create_moment(
                session, data=MomentCreate(key="race.moment"), default_target=None
            )
            assert await bulk.insert_new(
                session, [_row("b-0", moment.id), _row("b-1", moment.id)]
            ) == {
                "b-0",
                "b-1",
            }
            await session.commit()
        async with database.write_sessions() as session:
            rows = [_row(f"b-{i}", moment.id) for i in range(4)]
            assert await bulk.insert_new(session, rows) == {"b-2", "b-3"}
            await session.commit()
        async with database.read_sessions() as session:
            stored = (await session.scalars(select(Touchpoint.external_id))).all()
        assert sorted(stored) == ["b-0", "b-1", "b-2", "b-3"]
    finally:
        await database.dispose()


def _row(external_id: str, moment_id: int) -> tuple[object, ...]:
    now = datetime.now(UTC)
    values = {
        "external_id": external_id,
        "content_hash": "0" * 64,
        "moment_id": moment_id,
        "channel": "call",
        "occurred_at": now,
        "received_at": now,
        "complaint": False,
    }
    return tuple(values.get(column) for column in bulk.COLUMNS)
