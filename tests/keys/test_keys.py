"""Managing keys over the API: shown once, stored as a hash, revocable, last use noted."""

import asyncio
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from app.config import Settings
from app.db import Database, utcnow
from app.keys import service
from app.keys.models import ApiKey
from tests.conftest import ClientFactory

pytestmark = pytest.mark.anyio


async def _create(client: httpx.AsyncClient, name: str, *scopes: str) -> dict[str, object]:
    response = await client.post("/v1/keys", json={"name": name, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(
    client: httpx.AsyncClient, database_url: str
) -> None:
    created = await _create(client, "telephony", "ingest", "read")
    key = str(created["key"])
    assert key.startswith("mot_")
    assert created["prefix"] == key[:12]
    assert created["scopes"] == ["ingest", "read"]

    listed = (await client.get("/v1/keys")).json()
    assert [k["name"] for k in listed] == ["tests", "telephony"]
    assert all("key" not in k for k in listed)

    database = Database(database_url)
    try:
        async with database.read_sessions() as session:
            stored = (await session.scalars(select(ApiKey))).all()
    finally:
        await database.dispose()
    assert all(key not in (row.secret_hash, row.prefix) for row in stored)
    assert service.hash_key(key) in {row.secret_hash for row in stored}


async def test_a_revoked_key_stops_working_at_once(client: httpx.AsyncClient) -> None:
    created = await _create(client, "portal", "read")
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert (await client.get("/v1/moments", headers=headers)).status_code == 200

    revoked = await client.delete(f"/v1/keys/{created['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert (await client.get("/v1/moments", headers=headers)).status_code == 401
    # Revoking again changes nothing; the list hides it unless asked.
    assert (await client.delete(f"/v1/keys/{created['id']}")).status_code == 200
    assert "portal" not in [k["name"] for k in (await client.get("/v1/keys")).json()]
    everything = (await client.get("/v1/keys", params={"include_revoked": True})).json()
    assert "portal" in [k["name"] for k in everything]


async def test_the_last_admin_key_cannot_be_revoked(client: httpx.AsyncClient) -> None:
    own = (await client.get("/v1/keys")).json()[0]
    refused = await client.delete(f"/v1/keys/{own['id']}")
    assert refused.status_code == 409
    assert "last active admin key" in refused.json()["message"]

    await _create(client, "second admin", "admin")
    assert (await client.delete(f"/v1/keys/{own['id']}")).status_code == 200


async def test_revoking_an_unknown_key_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/keys/999")
    assert response.status_code == 404


async def test_a_key_revoked_elsewhere_stops_working_once_the_trusted_copy_is_old(
    make_client: ClientFactory,
) -> None:
    # Two replicas on one database: the key is revoked through the first while the second
    # holds a copy it trusts for `api_key_cache_seconds`.
    async with make_client() as first, make_client(api_key_cache_seconds=0.5) as second:
        created = await _create(first, "portal", "read")
        headers = {"Authorization": f"Bearer {created['key']}"}
        assert (await second.get("/v1/moments", headers=headers)).status_code == 200
        assert (await first.delete(f"/v1/keys/{created['id']}")).status_code == 200
        assert (await first.get("/v1/moments", headers=headers)).status_code == 401
        assert (await second.get("/v1/moments", headers=headers)).status_code == 200
        await asyncio.sleep(0.6)
        refused = await second.get("/v1/moments", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["details"][0]["type"] == "invalid_api_key"


async def test_the_last_use_is_noted_at_most_once_a_minute(
    make_client: ClientFactory, database_url: str
) -> None:
    async with make_client(api_key_cache_seconds=0) as client:
        await _the_last_use_is_noted_at_most_once_a_minute(client, database_url)


async def _the_last_use_is_noted_at_most_once_a_minute(
    client: httpx.AsyncClient, database_url: str
) -> None:
    created = await _create(client, "analyst", "read")
    assert created["last_used_at"] is None
    headers = {"Authorization": f"Bearer {created['key']}"}

    async def used_at() -> str | None:
        listed = {k["name"]: k for k in (await client.get("/v1/keys")).json()}
        value: str | None = listed["analyst"]["last_used_at"]
        return value

    await client.get("/v1/moments", headers=headers)
    first = await used_at()
    assert first is not None
    await client.get("/v1/moments", headers=headers)
    assert await used_at() == first

    # Once the noted use is over a minute old, the next use is noted again.
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            await session.execute(
                update(ApiKey)
                .where(ApiKey.name == "analyst")
                .values(last_used_at=utcnow() - timedelta(minutes=2))
            )
    finally:
        await database.dispose()
    await client.get("/v1/moments", headers=headers)
    assert (await used_at() or "") > first


async def test_a_new_key_needs_a_known_scope_and_a_name(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/keys", json={"name": "", "scopes": ["everything"]})
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["details"]}
    assert {"body.name", "body.scopes.0"} <= fields


async def test_bootstrap_creates_the_first_admin_key_only_once(database_url: str) -> None:
    database = Database(database_url)
    try:
        given = "an-operator-chosen-key-of-sufficient-length"
        first = await service.bootstrap(database, key=given)
        assert first is not None
        assert (first.key, first.scopes) == (given, ["admin"])
        assert await service.bootstrap(database, key=None) is None
        async with database.read_sessions() as session:
            assert await service.authenticate(session, key_hash=service.hash_key(given)) is not None
    finally:
        await database.dispose()


@pytest.mark.parametrize("given", [None, "an-operator-chosen-key-of-sufficient-length"])
async def test_replicas_bootstrapping_at_once_create_one_key(
    database_url: str, given: str | None
) -> None:
    # Each replica has its own engine; all find the database without keys at the same time.
    replicas = [Database(database_url) for _ in range(6)]
    try:
        created = await asyncio.gather(
            *(service.bootstrap(replica, key=given) for replica in replicas)
        )
        async with replicas[0].read_sessions() as session:
            stored = (await session.scalars(select(ApiKey))).all()
    finally:
        for replica in replicas:
            await replica.dispose()
    assert len([key for key in created if key is not None]) == 1
    assert len(stored) == 1


def test_a_short_bootstrap_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Settings(_env_file=None, bootstrap_api_key=SecretStr("short"))
