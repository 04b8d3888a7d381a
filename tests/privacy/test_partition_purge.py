"""Retention on PostgreSQL's monthly partitions: a month wholly past retention is dropped
at once, with everything about its touchpoints, except the touchpoints whose follow-up is
still open; the rollups keep their counts, and a purged id may be posted again."""

from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import text

from app.db import Database
from app.privacy import service
from app.rollups import service as rollups
from app.touchpoints import partitions
from tests.payloads import touchpoint
from tests.privacy.history import live, mentioning, move, register_webhook, table_rows
from tests.privacy.test_retention import PURGED

pytestmark = pytest.mark.anyio

CUTOFF = datetime(2026, 10, 1, tzinfo=UTC)
NEW = {"new-neg", "new-rerated", "new-surveyed", "new-plain"}


@pytest.fixture
def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite keeps the touchpoints in one table")


async def _where(database: Database) -> dict[str, str]:
    """The partition of each stored touchpoint, and the ids of the key table."""
    async with database.read_sessions() as session:
        rows = await session.execute(
            text(
                "SELECT touchpoint_key.external_id, touchpoint.tableoid::regclass::text "
                "FROM touchpoint_key FULL JOIN touchpoint USING (external_id)"
            )
        )
        return {external_id: str(partition) for external_id, partition in rows.all()}


async def test_a_month_past_retention_is_dropped_but_touchpoints_with_open_follow_ups_stay(
    postgresql_only: None, client: httpx.AsyncClient, database_url: str
) -> None:
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            await partitions.ensure(session, today=date(2026, 9, 1), months_ahead=1)
        await register_webhook(client)
        # September, wholly past retention: `old-neg`'s follow-up is open (acknowledged),
        # `settled-neg`'s resolved. October is not: it stays whole.
        await live(client, client_ref="c-old", prefix="old", day="2026-09-10")
        await live(client, client_ref="c-settled", prefix="settled", day="2026-09-12")
        await move(client, "settled-neg", "resolved")
        await live(client, client_ref="c-new", prefix="new", day="2026-10-20")
        # Long ago, in the default partition: purged row by row.
        posted = await client.post(
            "/v1/touchpoints", json=touchpoint(id="ancient", occurred_at="2001-03-01T09:00:00Z")
        )
        assert posted.status_code == 201, posted.text
        async with database.read_sessions() as session:
            counts = await rollups.counted(session)

        report = await service.purge(database, occurred_before=CUTOFF, chunk_size=2)

        assert report.removed.model_dump() == {**PURGED, "touchpoints": PURGED["touchpoints"] + 1}
        assert report.kept_open == 1
        async with database.read_sessions() as session:
            months = [p.name for p in await partitions.monthly_partitions(session)]
            assert await rollups.counted(session) == counts
        assert "touchpoint_y2026m09" not in months
        assert "touchpoint_y2026m10" in months
        # Every touchpoint left has its key, and no key outlives its touchpoint.
        assert await _where(database) == {
            "old-neg": "touchpoint_default",
            **{external_id: "touchpoint_y2026m10" for external_id in NEW},
        }
        left = table_rows(database_url)
        gone = ("settled-", "old-rerated", "old-surveyed", "old-plain", "ancient")
        assert mentioning(left, *gone) == []
        follow_ups = (await client.get("/v1/follow-ups")).json()["data"]
        assert [f["touchpoint"] for f in follow_ups] == ["new-neg", "old-neg"]
        assert (await client.get("/v1/touchpoints/old-neg")).status_code == 200
        audit = (await client.get("/v1/audit", params={"action": "purge"})).json()["data"]
        assert [entry["counts"] for entry in audit] == [report.removed.model_dump()]

        # Once resolved, the kept touchpoint goes with the next purge, from the default
        # partition; a purged id may be posted again.
        await move(client, "old-neg", "resolved")
        again = await service.purge(database, occurred_before=CUTOFF)
        reposted = await client.post(
            "/v1/touchpoints",
            json=touchpoint(id="settled-plain", occurred_at="2026-10-02T08:00:00Z"),
        )
    finally:
        await database.dispose()

    assert (again.removed.touchpoints, again.removed.follow_ups, again.kept_open) == (1, 1, 0)
    assert reposted.status_code == 201, reposted.text


async def test_a_month_whose_partition_is_in_use_is_purged_row_by_row(
    postgresql_only: None, client: httpx.AsyncClient, database_url: str
) -> None:
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            await partitions.ensure(session, today=date(2026, 9, 1), months_ahead=0)
        batch = [
            touchpoint(id=f"sept-{day}", occurred_at=f"2026-09-0{day}T09:00:00Z") for day in (3, 4)
        ]
        posted = await client.post("/v1/touchpoints/batch", json={"touchpoints": batch})
        assert posted.json()["accepted"] == 2, posted.text
        # A writer that keeps the partition open: it cannot be dropped meanwhile.
        async with database.engine.connect() as writer:
            await writer.execute(text("LOCK TABLE touchpoint_y2026m09 IN ROW EXCLUSIVE MODE"))
            report = await service.purge(database, occurred_before=CUTOFF)
            await writer.rollback()
        async with database.read_sessions() as session:
            months = [p.name for p in await partitions.monthly_partitions(session)]
        left = await _where(database)
    finally:
        await database.dispose()

    assert report.removed.touchpoints == 2
    assert "touchpoint_y2026m09" in months
    assert left == {}
