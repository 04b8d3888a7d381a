"""Monthly partitions of the touchpoints on PostgreSQL: created ahead, read only where a
window needs them, and an external id unique across them all. SQLite keeps one table."""

import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.db import Database
from app.touchpoints import partitions
from app.touchpoints import service as touchpoints_service
from tests.payloads import touchpoint
from tests.servers import MOT, command_environment

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    opened = Database(database_url)
    yield opened
    await opened.dispose()


@pytest.fixture
def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite keeps the touchpoints in one table")


async def _ensure(database: Database, *, today: date, months_ahead: int) -> list[str]:
    async with database.write_sessions() as session, session.begin():
        return await partitions.ensure(session, today=today, months_ahead=months_ahead)


async def _partition_of(database: Database, external_id: str) -> str:
    async with database.read_sessions() as session:
        name = await session.scalar(
            text("SELECT tableoid::regclass::text FROM touchpoint WHERE external_id = :id"),
            {"id": external_id},
        )
    return str(name)


async def test_partitions_ahead_are_created_once_and_take_their_rows_from_the_default_one(
    postgresql_only: None, client: httpx.AsyncClient, database: Database
) -> None:
    # Long ago: no partition, so the touchpoint lands in the default partition.
    posted = await client.post(
        "/v1/touchpoints", json=touchpoint(id="far", occurred_at="2001-02-15T10:00:00Z")
    )
    assert posted.status_code == 201, posted.text
    assert await _partition_of(database, "far") == "touchpoint_default"

    created = await _ensure(database, today=date(2001, 1, 20), months_ahead=2)

    assert created == ["touchpoint_y2001m01", "touchpoint_y2001m02", "touchpoint_y2001m03"]
    assert await _partition_of(database, "far") == "touchpoint_y2001m02"
    assert await _ensure(database, today=date(2001, 1, 20), months_ahead=2) == []
    read = await client.get("/v1/touchpoints/far")
    assert (read.status_code, read.json()["occurred_at"]) == (200, "2001-02-15T10:00:00Z")


async def test_the_migration_partitions_this_month_and_the_next_three(
    postgresql_only: None, database: Database
) -> None:
    async with database.read_sessions() as session:
        names = [partition.name for partition in await partitions.monthly_partitions(session)]
    today = datetime.now(UTC).date()
    assert names == [partition.name for partition in partitions.months_from(today, 4)]


async def test_an_id_is_unique_across_months_a_retry_is_a_duplicate_and_other_content_a_conflict(
    client: httpx.AsyncClient, database: Database
) -> None:
    first = touchpoint(id="same", occurred_at="2026-09-10T09:00:00Z")
    await _ensure(database, today=date(2026, 9, 1), months_ahead=0)

    assert (await client.post("/v1/touchpoints", json=first)).status_code == 201
    assert (await client.post("/v1/touchpoints", json=first)).status_code == 200
    elsewhen = await client.post(
        "/v1/touchpoints", json={**first, "occurred_at": "2001-05-01T09:00:00Z"}
    )
    batch = await client.post(
        "/v1/touchpoints/batch",
        json={
            "touchpoints": [
                {**first, "occurred_at": "2026-11-24T09:00:00Z"},
                touchpoint(id="fresh", occurred_at="2026-09-11T09:00:00Z"),
            ]
        },
    )

    assert elsewhen.status_code == 409, elsewhen.text
    assert elsewhen.json()["code"] == "conflict"
    result = batch.json()
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (1, 0, 1)
    assert result["errors"][0]["code"] == "conflict"
    async with database.read_sessions() as session:
        stored = await session.scalar(
            text("SELECT count(*) FROM touchpoint WHERE external_id = 'same'")
        )
    assert stored == 1


def _relations(plan: Any) -> set[str]:
    """Every table a JSON query plan reads."""
    found = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= _relations(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= _relations(value)
    return found


async def _tables_read(database: Database, occurred_from: str, occurred_to: str) -> set[str]:
    filters = touchpoints_service.TouchpointFilter(
        occurred_from=datetime.fromisoformat(occurred_from),
        occurred_to=datetime.fromisoformat(occurred_to),
    )
    query = touchpoints_service.list_query(filters, cursor=None, limit=50)
    async with database.read_sessions() as session:
        connection = await session.connection()
        compiled = query.compile(dialect=connection.dialect)
        result = await connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) {compiled.string}", compiled.params
        )
        plan = result.scalar_one()
    return _relations(plan if not isinstance(plan, str) else json.loads(plan))


async def test_a_window_reads_only_the_partitions_of_its_months(
    postgresql_only: None, database: Database
) -> None:
    await _ensure(database, today=date(2099, 1, 1), months_ahead=2)

    february = await _tables_read(
        database, "2099-02-01T00:00:00+00:00", "2099-03-01T00:00:00+00:00"
    )
    straddling = await _tables_read(
        database, "2099-01-20T00:00:00+00:00", "2099-02-10T00:00:00+00:00"
    )
    beyond = await _tables_read(database, "2099-03-20T00:00:00+00:00", "2099-05-01T00:00:00+00:00")

    assert february == {"touchpoint_y2099m02", "moment"}
    assert straddling == {"touchpoint_y2099m01", "touchpoint_y2099m02", "moment"}
    # April has no partition of its own: its touchpoints would be in the default one.
    assert beyond == {"touchpoint_y2099m03", "touchpoint_default", "moment"}


def test_the_ensure_command_creates_what_is_missing_and_lists_the_partitions(
    backend: str, database_url: str
) -> None:
    result = subprocess.run(
        [MOT, "partitions", "ensure", "--months", "4", "--json"],
        env=command_environment(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    if backend == "sqlite":
        assert answer == {"created": [], "partitions": []}
        return
    months = partitions.months_from(datetime.now(UTC).date(), 5)
    # The migration made four months; the fifth is new.
    assert answer == {
        "created": [months[-1].name],
        "partitions": [partition.name for partition in months],
    }
