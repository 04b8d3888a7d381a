"""Ids posted by several requests at once are stored exactly once."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

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
            created = await bulk.insert_new(
                session, [_row("b-0", moment.id), _row("b-1", moment.id)]
            )
            assert set(created) == {"b-0", "b-1"}
            await session.commit()
        async with database.write_sessions() as session:
            rows = [_row(f"b-{i}", moment.id) for i in range(4)]
            assert set(await bulk.insert_new(session, rows)) == {"b-2", "b-3"}
            await session.commit()
        async with database.read_sessions() as session:
            stored = (await session.scalars(select(Touchpoint.external_id))).all()
        assert sorted(stored) == ["b-0", "b-1", "b-2", "b-3"]
    finally:
        await database.dispose()


def _row(external_id: str, moment_id: int) -> bulk.TouchpointRow:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "external_id": external_id,
        "content_hash": "0" * 64,
        "moment_id": moment_id,
        "channel": "call",
        "occurred_at": now,
        "received_at": now,
        "complaint": False,
    }
    return bulk.TouchpointRow(*(values.get(column) for column in bulk.COLUMNS))  # type: ignore[arg-type]


# Two requests that write the same new keys wait for each other's uncommitted rows. Had each
# written them in its own order (request order), one could hold a key the other waits for
# while it waits for a key the other holds: PostgreSQL then aborts one with "deadlock
# detected", a 500 for a post that did nothing wrong. The tests below stop one transaction
# half-way through its keys, let the other block on it, then complete the cycle.
# SQLite writers take the write lock when they begin, so they never interleave like this.


async def _until_a_session_waits_for_a_lock(database: Database) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 60
    while True:
        async with database.engine.connect() as connection:  # a fresh snapshot each time
            if await connection.scalar(waiting):
                return
        assert time.monotonic() < deadline, "the second request never waited for the first"
        await asyncio.sleep(0.02)


@pytest.fixture
async def interleaving_database(backend: str, database_url: str) -> AsyncIterator[Database]:
    """The test's database, where two writers can interleave: PostgreSQL only."""
    if backend != "postgresql":
        pytest.skip("SQLite writers never interleave")
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


async def test_requests_storing_the_same_ids_in_opposite_orders_never_deadlock(
    interleaving_database: Database,
) -> None:
    database = interleaving_database
    async with database.write_sessions() as session:
        moment = await moments_service.create_moment(
            session, data=MomentCreate(key="race.moment"), default_target=None
        )
        await session.commit()
    async with database.write_sessions() as first, database.write_sessions() as second:
        # `first` posts [d-1, d-2] and has written d-1 so far; `second` posts [d-2, d-1].
        assert set(await bulk.insert_new(first, [_row("d-1", moment.id)])) == {"d-1"}
        racing = asyncio.create_task(
            bulk.insert_new(second, [_row("d-2", moment.id), _row("d-1", moment.id)])
        )
        await _until_a_session_waits_for_a_lock(database)
        assert set(await bulk.insert_new(first, [_row("d-2", moment.id)])) == {"d-2"}
        await first.commit()
        assert await asyncio.wait_for(racing, timeout=60) == {}
        await second.commit()


async def _register(session: AsyncSession, keys: list[str]) -> set[str]:
    refs = await moments_service.resolve_keys(
        session, channels=dict.fromkeys(keys), register_unknown=True, default_target=None
    )
    return set(refs)


async def test_requests_registering_the_same_new_moments_in_opposite_orders_never_deadlock(
    interleaving_database: Database,
) -> None:
    database = interleaving_database
    async with database.write_sessions() as first, database.write_sessions() as second:
        # `first` names moments [m.a, m.b] and has registered m.a; `second`, [m.b, m.a].
        assert await _register(first, ["m.a"]) == {"m.a"}
        racing = asyncio.create_task(_register(second, ["m.b", "m.a"]))
        await _until_a_session_waits_for_a_lock(database)
        assert await _register(first, ["m.b"]) == {"m.b"}
        await first.commit()
        assert await asyncio.wait_for(racing, timeout=60) == {"m.a", "m.b"}
        await second.commit()
