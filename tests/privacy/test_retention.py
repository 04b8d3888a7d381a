"""Retention: `mot purge` deletes raw touchpoints past the retention period with everything
about them, keeps those with an open follow-up, and leaves the rollups (and so the
rankings of old periods) as they were, through rebuilds too."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, update

from app.db import Database, sync_url
from app.privacy import service
from app.privacy.service import PurgeReport
from app.rollups import service as rollups
from app.rollups.models import MomentRollup
from tests.insights.builders import get_json
from tests.payloads import touchpoint
from tests.privacy.history import (
    TABLES_ABOUT_TOUCHPOINTS,
    live,
    mentioning,
    move,
    register_webhook,
    table_rows,
)

pytestmark = pytest.mark.anyio

MOT = str(Path(sys.executable).with_name("mot"))
CUTOFF = datetime(2026, 10, 15, tzinfo=UTC)
OCTOBER = {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
PURGED = {
    "touchpoints": 7,
    "comments": 1,
    "rating_history": 2,
    "surveys": 2,
    "follow_ups": 1,
    "follow_up_events": 3,
    "webhook_deliveries": 4,
    "webhook_payloads_scrubbed": 0,
}


async def _history(client: httpx.AsyncClient) -> None:
    """Before the cutoff: `old-*` (its follow-up acknowledged, so still open) and
    `settled-*` (its follow-up resolved); after it, in the same month: `new-*`."""
    await register_webhook(client)
    await live(client, client_ref="c-old", prefix="old", day="2026-10-10")
    await live(client, client_ref="c-settled", prefix="settled", day="2026-10-12")
    await move(client, "settled-neg", "resolved")
    await live(client, client_ref="c-new", prefix="new", day="2026-10-20")


async def _purge(database_url: str, **options: Any) -> PurgeReport:
    database = Database(database_url)
    try:
        return await service.purge(database, occurred_before=CUTOFF, **options)
    finally:
        await database.dispose()


async def _stored_rollups(database_url: str) -> dict[rollups.RollupKey, rollups.Counters]:
    database = Database(database_url)
    try:
        async with database.read_sessions() as session:
            return await rollups.counted(session)
    finally:
        await database.dispose()


def _touchpoint_ids(database_url: str) -> set[str]:
    return {row["external_id"] for row in table_rows(database_url)["touchpoint"]}


def _run(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if k != "MOT_RETENTION_DAYS"}
    environment = {**inherited, "MOT_DATABASE_URL": database_url, **env}
    return subprocess.run(
        [MOT, *args], env=environment, capture_output=True, text=True, timeout=120, check=False
    )


async def test_purge_deletes_old_touchpoints_but_keeps_recent_ones_and_open_follow_ups(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _history(client)

    report = await _purge(database_url)

    assert report.removed.model_dump() == PURGED
    assert report.kept_open == 1
    new = {"new-neg", "new-rerated", "new-surveyed", "new-plain"}
    assert _touchpoint_ids(database_url) == {"old-neg", *new}
    left = table_rows(database_url)
    assert mentioning(left, "settled-", "old-rerated", "old-surveyed", "old-plain") == []
    # The client with an open problem can still follow it.
    assert [f["touchpoint"] for f in (await client.get("/v1/follow-ups")).json()["data"]] == [
        "new-neg",
        "old-neg",
    ]

    # Once resolved, it goes with the next purge.
    await move(client, "old-neg", "resolved")
    again = await _purge(database_url)
    assert (again.removed.touchpoints, again.removed.follow_ups, again.kept_open) == (1, 1, 0)
    assert _touchpoint_ids(database_url) == new


async def test_purge_leaves_the_rollups_and_the_ranking_of_purged_days_as_they_were(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _history(client)
    counts = await _stored_rollups(database_url)
    ranking = await get_json(client, "/v1/insights/weak-spots", OCTOBER)

    await _purge(database_url)

    assert await _stored_rollups(database_url) == counts
    after = await get_json(client, "/v1/insights/weak-spots", OCTOBER)
    assert after == ranking
    # The purged touchpoints are still counted: 12 in October, 5 of them left.
    (item,) = after["data"] + after["insufficient_data"]
    assert (item["touchpoints"], len(_touchpoint_ids(database_url))) == (12, 5)


async def test_rebuild_after_a_purge_keeps_the_counts_of_purged_days(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _history(client)
    counts = await _stored_rollups(database_url)
    await _purge(database_url)
    # Drift in the days still recountable, which the rebuild must repair.
    engine = create_engine(sync_url(database_url))
    with engine.begin() as connection:
        connection.execute(
            update(MomentRollup).where(MomentRollup.period >= CUTOFF.date()).values(touchpoints=99)
        )
    engine.dispose()

    result = _run("rollups", "rebuild", database_url=database_url)

    assert result.returncode == 0, result.stderr
    assert "(days before 2026-10-15 kept: purged)" in result.stdout
    # October straddles the cutoff: its month row keeps the purged days and recounts the rest.
    assert await _stored_rollups(database_url) == counts


async def test_a_dry_run_counts_what_a_purge_would_delete_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _history(client)
    before = table_rows(database_url)

    dry = await _purge(database_url, dry_run=True)

    assert table_rows(database_url) == before
    assert (dry.audit_entry, dry.kept_open) == (None, 1)
    assert dry.removed == (await _purge(database_url)).removed


async def test_a_purge_in_chunks_is_recorded_as_one_audit_entry(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _history(client)

    report = await _purge(database_url, chunk_size=2)

    assert report.removed.model_dump() == PURGED
    audit = (await client.get("/v1/audit", params={"action": "purge"})).json()["data"]
    assert audit == [
        {
            "id": report.audit_entry,
            "at": audit[0]["at"],
            "action": "purge",
            "client_hash": None,
            "key_id": None,
            "key_prefix": None,
            "occurred_before": "2026-10-15T00:00:00Z",
            "counts": PURGED,
        }
    ]
    rows = table_rows(database_url)
    assert len(rows["audit_entry"]) == 1
    for table in TABLES_ABOUT_TOUCHPOINTS:
        assert not mentioning({table: rows[table]}, "settled-"), table


def test_the_retention_cutoff_is_utc_midnight_that_many_days_ago() -> None:
    now = datetime.fromisoformat("2026-11-23T02:00:00+03:00")  # 22nd, 23:00 UTC
    assert service.retention_cutoff(now, days=30) == datetime(2026, 10, 23, tzinfo=UTC)


async def test_the_purge_command_deletes_what_is_past_retention_and_says_what(
    client: httpx.AsyncClient, database_url: str
) -> None:
    now = datetime.now(UTC)
    items = [
        touchpoint(id="ancient", occurred_at=(now - timedelta(days=100)).isoformat()),
        touchpoint(id="recent", occurred_at=(now - timedelta(days=1)).isoformat()),
    ]
    await client.post("/v1/touchpoints/batch", json={"touchpoints": items})

    unset = _run("purge", database_url=database_url)
    dry = _run("purge", "--dry-run", database_url=database_url, MOT_RETENTION_DAYS="30")
    assert _touchpoint_ids(database_url) == {"ancient", "recent"}
    done = _run("purge", database_url=database_url, MOT_RETENTION_DAYS="30")

    assert unset.returncode == dry.returncode == done.returncode == 0, done.stderr
    assert "MOT_RETENTION_DAYS is not set" in unset.stdout
    cutoff = service.retention_cutoff(now, days=30).isoformat()
    assert f"occurred before {cutoff} (retention 30 days): would delete" in dry.stdout
    assert "  touchpoints: 1\n" in dry.stdout
    assert "audit entry" not in dry.stdout
    assert "(retention 30 days): deleted" in done.stdout
    assert "  touchpoints: 1\n" in done.stdout
    assert "audit entry 1" in done.stdout
    assert _touchpoint_ids(database_url) == {"recent"}
