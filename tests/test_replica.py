"""Reads from a streaming replica (`MOT_READ_DATABASE_URL`): figures and lists come from the
replica, reads of what the caller just wrote from the primary, and a replica down sends its
reads to the primary.

Which database answered is shown by pausing the replica's replay: a touchpoint posted then
is on the primary only, until the replay resumes.
"""

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app import migrate
from app.config import Settings
from app.keys.schemas import Scope
from app.main import create_app
from tests.conftest import create_key
from tests.payloads import touchpoint
from tests.postgres_processes import StreamingPair, streaming_pair
from tests.servers import free_port

pytestmark = pytest.mark.anyio

WINDOW = {"from": "2026-10-05T00:00:00Z", "to": "2026-10-12T00:00:00Z"}


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    with streaming_pair() as started:
        migrate.upgrade(started.primary_url)
        started.wait_until_replayed()
        yield started


@asynccontextmanager
async def api(primary_url: str, read_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(_env_file=None, database_url=primary_url, read_database_url=read_url)
    app = create_app(settings)
    try:
        key = await create_key(app.state.database, Scope.admin)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            yield client
    finally:
        await app.state.database.dispose()


async def _post(client: httpx.AsyncClient, moment: str, **fields: Any) -> str:
    body = touchpoint(moment=moment, occurred_at="2026-10-06T09:00:00Z", **fields)
    response = await client.post("/v1/touchpoints", json=body)
    assert response.status_code == 201, response.text
    identifier: str = response.json()["id"]
    return identifier


async def _counted(client: httpx.AsyncClient, moment: str) -> tuple[int, int]:
    """(touchpoints, negatives) of the moment in the window, as the weak spots give them."""
    response = await client.get("/v1/insights/weak-spots", params=WINDOW)
    assert response.status_code == 200, response.text
    items = {item["moment"]: item for item in response.json()["data"]}
    if moment not in items:
        return (0, 0)
    return (items[moment]["touchpoints"], items[moment]["negatives"])


async def _listed(client: httpx.AsyncClient, moment: str) -> int:
    response = await client.get("/v1/touchpoints", params={"moment": moment})
    assert response.status_code == 200, response.text
    return len(response.json()["data"])


async def test_figures_and_lists_come_from_the_replica_and_own_writes_from_the_primary(
    pair: StreamingPair,
) -> None:
    moment = "replica.routing"
    bad = {"rating": {"scale": "csat5", "value": 1}}
    async with api(pair.primary_url, pair.replica_url) as client:
        first = await _post(client, moment, **bad)
        # Read back at once, before any replica could have it: the primary answers.
        assert (await client.get(f"/v1/touchpoints/{first}")).status_code == 200
        pair.wait_until_replayed()
        assert await _counted(client, moment) == (1, 1)

        pair.pause_replay()
        try:
            second = await _post(client, moment, **bad)
            assert (await client.get(f"/v1/touchpoints/{second}")).status_code == 200
            follow_ups = await client.get("/v1/follow-ups", params={"moment": moment})
            # The replica has not applied the second touchpoint: figures and lists lag.
            assert await _counted(client, moment) == (1, 1)
            assert await _listed(client, moment) == 1
            assert len(follow_ups.json()["data"]) == 1
            pair.wait_until_received()
            lagging = (await client.get("/readyz")).json()
            assert lagging["replica"] == "ok"
            assert lagging["replica_lag_seconds"] > 0
        finally:
            pair.resume_replay()

        pair.wait_until_replayed()
        assert await _counted(client, moment) == (2, 2)
        assert await _listed(client, moment) == 2
        current = (await client.get("/readyz")).json()
        assert (current["status"], current["replica_lag_seconds"]) == ("ready", 0)


async def test_reads_go_to_the_primary_while_the_replica_does_not_answer(
    pair: StreamingPair, caplog: pytest.LogCaptureFixture
) -> None:
    moment = "replica.down"
    nobody_listens = f"postgresql://postgres@127.0.0.1:{free_port()}/mot"
    with caplog.at_level(logging.WARNING, logger="app.db"):
        async with api(pair.primary_url, nobody_listens) as client:
            await _post(client, moment, rating={"scale": "csat5", "value": 2})
            assert await _counted(client, moment) == (1, 1)
            assert await _listed(client, moment) == 1
            ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["replica"] == "unreachable"
    warnings = [record for record in caplog.records if "read replica" in record.message]
    # One warning, then the primary answers without trying the replica for a while.
    assert len(warnings) == 1


def test_a_replica_needs_postgresql_for_both() -> None:
    with pytest.raises(ValueError, match="needs a PostgreSQL MOT_DATABASE_URL"):
        Settings(
            _env_file=None,
            database_url="sqlite:///mot.db",
            read_database_url="postgresql://replica/mot",
        )
    with pytest.raises(ValueError, match="must be a PostgreSQL URL"):
        Settings(
            _env_file=None,
            database_url="postgresql://primary/mot",
            read_database_url="sqlite:///mot.db",
        )
    empty = Settings(_env_file=None, database_url="sqlite:///mot.db", read_database_url=" ")
    assert empty.read_database_url is None
