"""Erasing a client: every row about it goes, nothing of anyone else, counts as if it had
never been seen, and an audit entry that names it only by a keyed hash."""

import hashlib
import hmac
from typing import Any

import httpx
import pytest

from app.config import DEVELOPMENT_SECRET
from app.db import Database
from app.insights import counts
from app.keys.schemas import Scope
from app.rollups import service as rollups
from tests.conftest import ClientFactory
from tests.privacy.history import (
    TABLES_ABOUT_TOUCHPOINTS,
    Rows,
    live,
    mark_delivered,
    mentioning,
    register_webhook,
    table_rows,
)

pytestmark = pytest.mark.anyio

ERASED_REF = "client-to-erase"
OTHER_REF = "client-to-keep"
NOTHING = {
    "touchpoints": 0,
    "comments": 0,
    "rating_history": 0,
    "surveys": 0,
    "follow_ups": 0,
    "follow_up_events": 0,
    "webhook_deliveries": 0,
    "webhook_payloads_scrubbed": 0,
}


async def _two_clients(client: httpx.AsyncClient) -> None:
    await register_webhook(client)
    # The same moment, day and team: the two clients share rollup rows.
    await live(client, client_ref=ERASED_REF, prefix="gone", day="2026-11-02")
    await live(client, client_ref=OTHER_REF, prefix="kept", day="2026-11-02")
    # A day and a team only the erased client has: their rollup rows must go.
    await live(client, client_ref=ERASED_REF, prefix="gone-later", day="2026-11-05", team="solo")


def _about_erased(rows: Rows) -> dict[str, list[dict[str, Any]]]:
    """The rows of `rows` that are about the erased client, table by table."""
    touchpoints = {r["id"] for r in rows["touchpoint"] if r["client_ref"] == ERASED_REF}
    external = {r["external_id"] for r in rows["touchpoint"] if r["id"] in touchpoints}
    follow_ups = {r["id"] for r in rows["follow_up"] if r["touchpoint_id"] in touchpoints}

    def about(table: str, row: dict[str, Any]) -> bool:
        if table == "touchpoint":
            return row["id"] in touchpoints
        if table == "follow_up_event":
            return row["follow_up_id"] in follow_ups
        if table == "webhook_delivery":
            data = row["payload"].get("data", {})
            return data.get("touchpoint") in external or data.get("follow_up") in follow_ups
        return row["touchpoint_id"] in touchpoints

    return {t: [r for r in rows[t] if about(t, r)] for t in TABLES_ABOUT_TOUCHPOINTS}


async def test_erasure_removes_every_row_of_the_client_and_nothing_of_another(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _two_clients(client)
    mark_delivered(database_url, touchpoint_id="gone-neg", event="follow_up.opened")
    before = table_rows(database_url)
    erased_before = _about_erased(before)
    assert all(erased_before.values())  # every kind of row exists for the erased client

    response = await client.delete(f"/v1/clients/{ERASED_REF}")

    assert response.status_code == 200, response.text
    assert response.json()["erased"] == {
        "touchpoints": 8,
        "comments": 2,
        "rating_history": 2,
        "surveys": 2,
        "follow_ups": 2,
        "follow_up_events": 4,
        # Three per bad experience (rating, opened, status changed); one was already sent.
        "webhook_deliveries": 5,
        "webhook_payloads_scrubbed": 1,
    }
    after = table_rows(database_url)
    for table in TABLES_ABOUT_TOUCHPOINTS:
        others = [row for row in before[table] if row not in erased_before[table]]
        if table == "webhook_delivery":
            # The delivery already sent stays on record, without its payload.
            (sent,) = [r for r in erased_before[table] if r["state"] == "delivered"]
            scrubbed = [r for r in after[table] if r["id"] == sent["id"]]
            assert scrubbed == [{**sent, "payload": {"erased": True}}]
            after[table] = [r for r in after[table] if r["id"] != sent["id"]]
        assert after[table] == others, table
    assert mentioning(after, ERASED_REF, "gone-") == []
    assert mentioning(after, OTHER_REF, "kept-") != []


async def test_rollups_after_an_erasure_equal_a_rebuild(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _two_clients(client)
    assert (await client.delete(f"/v1/clients/{ERASED_REF}")).status_code == 200

    database = Database(database_url)
    try:
        async with database.read_sessions() as session:
            stored = await rollups.counted(session)
            assert stored == await counts.recompute(session)
    finally:
        await database.dispose()
    assert {key[2].isoformat() for key in stored} == {"2026-11-01", "2026-11-02"}
    assert not [key for key in stored if key[4] == "solo"]


async def test_an_erased_client_has_no_journey_and_no_touchpoints(
    client: httpx.AsyncClient,
) -> None:
    await _two_clients(client)
    assert (await client.delete(f"/v1/clients/{ERASED_REF}")).status_code == 200

    assert (await client.get(f"/v1/clients/{ERASED_REF}/journey")).status_code == 404
    listed = await client.get("/v1/touchpoints", params={"client_ref": ERASED_REF})
    assert listed.json() == {"data": [], "next_cursor": None}
    follow_ups = (await client.get("/v1/follow-ups")).json()["data"]
    assert {f["touchpoint"] for f in follow_ups} == {"kept-neg"}
    assert len((await client.get(f"/v1/clients/{OTHER_REF}/journey")).json()["data"]) == 4


async def test_the_audit_entry_names_the_client_by_keyed_hash_only(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _two_clients(client)
    erased = (await client.delete(f"/v1/clients/{ERASED_REF}")).json()

    expected = hmac.new(
        DEVELOPMENT_SECRET.encode(), b"mot-client-ref-v1:" + ERASED_REF.encode(), hashlib.sha256
    ).hexdigest()
    assert erased["client_hash"] == expected
    (entry,) = table_rows(database_url)["audit_entry"]
    assert mentioning({"audit_entry": [entry]}, ERASED_REF) == []
    (key,) = table_rows(database_url)["api_key"]
    assert entry["client_hash"] == expected
    assert (entry["action"], entry["key_id"], entry["key_prefix"]) == (
        "erasure",
        key["id"],
        key["prefix"],
    )
    assert entry["counts"] == erased["erased"]
    assert entry["id"] == erased["audit_entry"]

    found = await client.get("/v1/audit", params={"client_ref": ERASED_REF})
    assert [e["id"] for e in found.json()["data"]] == [entry["id"]]
    assert found.json()["data"][0]["counts"]["touchpoints"] == 8
    never_erased = await client.get("/v1/audit", params={"client_ref": OTHER_REF})
    assert never_erased.json()["data"] == []


async def test_the_hash_depends_on_the_service_secret(make_client: ClientFactory) -> None:
    secrets = ("a" * 40, "b" * 40)
    hashes = []
    for secret in secrets:
        async with make_client(secret_key=secret) as client:
            hashes.append((await client.delete(f"/v1/clients/{ERASED_REF}")).json()["client_hash"])
    assert hashes[0] != hashes[1]


async def test_erasing_again_or_an_unknown_client_is_safe(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _two_clients(client)
    first = await client.delete(f"/v1/clients/{ERASED_REF}")
    rows = table_rows(database_url)

    again = await client.delete(f"/v1/clients/{ERASED_REF}")
    unknown = await client.delete("/v1/clients/never-seen")

    assert (again.status_code, unknown.status_code) == (200, 200)
    assert again.json()["erased"] == unknown.json()["erased"] == NOTHING
    after = table_rows(database_url)
    for table in (*TABLES_ABOUT_TOUCHPOINTS, "moment_rollup"):
        assert after[table] == rows[table], table
    # Every request is on record, the retry too.
    audit = (await client.get("/v1/audit")).json()["data"]
    assert [e["id"] for e in audit] == [
        unknown.json()["audit_entry"],
        again.json()["audit_entry"],
        first.json()["audit_entry"],
    ]


async def test_only_an_admin_key_may_erase_or_read_the_audit_log(
    client: httpx.AsyncClient, make_client: ClientFactory, database_url: str
) -> None:
    await _two_clients(client)
    before = table_rows(database_url)
    async with make_client(scopes=(Scope.ingest, Scope.read, Scope.manage)) as others:
        refused = await others.delete(f"/v1/clients/{ERASED_REF}")
        audit = await others.get("/v1/audit")

    assert (refused.status_code, audit.status_code) == (403, 403)
    assert refused.json()["details"][0]["type"] == "missing_scope"
    after = table_rows(database_url)
    for table in (*TABLES_ABOUT_TOUCHPOINTS, "moment_rollup", "audit_entry"):
        assert after[table] == before[table], table


async def test_the_audit_log_pages_newest_first(client: httpx.AsyncClient) -> None:
    for number in range(5):
        assert (await client.delete(f"/v1/clients/c-{number}")).status_code == 200

    first = (await client.get("/v1/audit", params={"limit": 3})).json()
    second = (await client.get("/v1/audit", params={"cursor": first["next_cursor"]})).json()

    numbers = [e["id"] for e in first["data"] + second["data"]]
    assert numbers == sorted(numbers, reverse=True)
    assert len(numbers) == 5
    assert second["next_cursor"] is None
    purges = (await client.get("/v1/audit", params={"action": "purge"})).json()
    assert purges["data"] == []
    bad = await client.get("/v1/audit", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
