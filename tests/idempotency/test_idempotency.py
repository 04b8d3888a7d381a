"""`Idempotency-Key`: a retry gets the first answer and stores nothing; another request
with the same key is refused; keys belong to their API key and last 24 hours."""

import asyncio
from datetime import timedelta

import httpx
import psycopg
import pytest
from sqlalchemy import func, select, update

from app.db import Database, utcnow
from app.idempotency import service
from app.idempotency.models import IdempotencyKey
from app.keys.models import ApiKey
from app.keys.schemas import Scope
from tests.conftest import ClientFactory, create_key
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio

KEY = {"Idempotency-Key": "2f1c7e9a-retry-me"}


async def _stored_touchpoints(client: httpx.AsyncClient) -> int:
    listed = await client.get("/v1/touchpoints", params={"limit": 500})
    return len(listed.json()["data"])


async def _kept(database_url: str) -> list[IdempotencyKey]:
    database = Database(database_url)
    try:
        async with database.read_sessions() as session:
            return list(await session.scalars(select(IdempotencyKey)))
    finally:
        await database.dispose()


async def test_a_retried_touchpoint_without_id_gets_the_first_answer_and_is_stored_once(
    client: httpx.AsyncClient,
) -> None:
    body = touchpoint(comment="Долго ждал ответа")
    first = await client.post("/v1/touchpoints", json=body, headers=KEY)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    retry = await client.post("/v1/touchpoints", json=body, headers=KEY)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["content-type"] == first.headers["content-type"]
    assert retry.json() == first.json()
    assert await _stored_touchpoints(client) == 1


async def test_a_retried_batch_without_ids_is_stored_once(client: httpx.AsyncClient) -> None:
    batch = {"touchpoints": [touchpoint(client_ref=f"c-{i}") for i in range(5)]}
    first = await client.post("/v1/touchpoints/batch", json=batch, headers=KEY)
    assert first.json()["accepted"] == 5
    retry = await client.post("/v1/touchpoints/batch", json=batch, headers=KEY)
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert await _stored_touchpoints(client) == 5
    # Without the header, the same batch is new work: ids are generated again.
    again = await client.post("/v1/touchpoints/batch", json=batch)
    assert again.json()["accepted"] == 5
    assert await _stored_touchpoints(client) == 10


async def test_the_same_key_with_another_body_is_a_409(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/touchpoints", json=touchpoint(), headers=KEY)).is_success
    other = await client.post("/v1/touchpoints", json=touchpoint(team="desk-night"), headers=KEY)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    # Nor on another route.
    elsewhere = await client.post(
        "/v1/moments", json={"key": "portal.first-link", "name": "Link"}, headers=KEY
    )
    assert elsewhere.json()["code"] == "idempotency_key_reused"
    assert await _stored_touchpoints(client) == 1


async def test_keys_of_different_api_keys_do_not_collide(
    client: httpx.AsyncClient, database_url: str
) -> None:
    database = Database(database_url)
    try:
        other_key = await create_key(database, Scope.ingest, name="telephony")
    finally:
        await database.dispose()
    body = touchpoint()
    mine = await client.post("/v1/touchpoints", json=body, headers=KEY)
    theirs = await client.post(
        "/v1/touchpoints",
        json=body,
        headers={**KEY, "Authorization": f"Bearer {other_key}"},
    )
    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert await _stored_touchpoints(client) == 2


async def test_a_key_expires_after_24_hours(client: httpx.AsyncClient, database_url: str) -> None:
    body = touchpoint()
    assert (await client.post("/v1/touchpoints", json=body, headers=KEY)).status_code == 201
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            older = utcnow() - service.KEPT_FOR - timedelta(seconds=1)
            await session.execute(update(IdempotencyKey).values(created_at=older))
    finally:
        await database.dispose()
    later = await client.post("/v1/touchpoints", json=body, headers=KEY)
    assert later.status_code == 201
    assert "idempotent-replayed" not in later.headers
    assert await _stored_touchpoints(client) == 2
    (kept,) = await _kept(database_url)  # the expired answer gave way to the new one
    assert kept.created_at > utcnow() - timedelta(minutes=1)


async def test_expired_keys_are_purged(client: httpx.AsyncClient, database_url: str) -> None:
    for number in range(3):
        headers = {"Idempotency-Key": f"k-{number}"}
        assert (await client.post("/v1/touchpoints", json=touchpoint(), headers=headers)).is_success
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            older = utcnow() - service.KEPT_FOR - timedelta(minutes=1)
            await session.execute(
                update(IdempotencyKey).where(IdempotencyKey.key != "k-2").values(created_at=older)
            )
        async with database.write_sessions() as session, session.begin():
            assert await service.purge_expired(session, now=utcnow()) == 2
    finally:
        await database.dispose()
    assert [kept.key for kept in await _kept(database_url)] == ["k-2"]


async def test_a_failed_request_leaves_no_record(
    client: httpx.AsyncClient, database_url: str
) -> None:
    refused = await client.post(
        "/v1/touchpoints", json=touchpoint(rating={"scale": "csat5", "value": 9}), headers=KEY
    )
    assert refused.status_code == 422
    assert await _kept(database_url) == []
    # The corrected request may use the same key: nothing was kept under it.
    fixed = await client.post("/v1/touchpoints", json=touchpoint(), headers=KEY)
    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers


async def test_a_retried_moment_creation_gets_its_201_again(client: httpx.AsyncClient) -> None:
    moment = {"key": "portal.first-link", "name": "First link"}
    first = await client.post("/v1/moments", json=moment, headers=KEY)
    assert first.status_code == 201
    retry = await client.post("/v1/moments", json=moment, headers=KEY)
    assert (retry.status_code, retry.headers["idempotent-replayed"]) == (201, "true")
    # Without the key a retry is told the moment exists.
    assert (await client.post("/v1/moments", json=moment)).status_code == 409


async def test_a_retried_late_rating_is_recorded_once(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/touchpoints", json=touchpoint(id="tp-1"))).is_success
    rating = {"scale": "csat5", "value": 2}
    first = await client.put("/v1/touchpoints/tp-1/rating", json=rating, headers=KEY)
    assert first.status_code == 200, first.text
    retry = await client.put("/v1/touchpoints/tp-1/rating", json=rating, headers=KEY)
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()


@pytest.mark.parametrize(
    "value",
    [b"k" * 256, b"caf\xe9", b"tab\there"],
    ids=["too-long", "not-ascii", "control-character"],
)
async def test_a_malformed_key_is_refused(client: httpx.AsyncClient, value: bytes) -> None:
    response = await client.post(
        "/v1/touchpoints", json=touchpoint(), headers={b"Idempotency-Key": value}
    )
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "header.Idempotency-Key"
    assert await _stored_touchpoints(client) == 0


async def test_simultaneous_requests_with_one_key_store_once(client: httpx.AsyncClient) -> None:
    body = touchpoint()
    answers = await asyncio.gather(
        *(client.post("/v1/touchpoints", json=body, headers=KEY) for _ in range(4))
    )
    # Each either ran, was replayed, or was told the key is busy; one ran.
    ran = [a for a in answers if a.status_code == 201 and "idempotent-replayed" not in a.headers]
    assert len(ran) == 1
    for answer in answers:
        assert answer.status_code == 201 or answer.json()["code"] == "idempotency_key_in_use"
    assert await _stored_touchpoints(client) == 1


async def test_a_key_held_by_a_request_in_flight_is_a_409(
    make_client: ClientFactory, database_url: str, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite runs one writing request at a time: the second waits instead")
    async with make_client() as client:
        # The holder: the same advisory lock, taken as a request in flight holds it.
        database = Database(database_url)
        try:
            async with database.read_sessions() as session:
                key_id = await session.scalar(select(func.max(ApiKey.id)))
        finally:
            await database.dispose()
        lock = service.lock_number(int(key_id or 0), KEY["Idempotency-Key"])
        with psycopg.connect(database_url) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            busy = await client.post("/v1/touchpoints", json=touchpoint(), headers=KEY)
            assert busy.status_code == 409
            assert busy.json()["code"] == "idempotency_key_in_use"
            holder.rollback()
        done = await client.post("/v1/touchpoints", json=touchpoint(), headers=KEY)
        assert done.status_code == 201
        assert await _stored_touchpoints(client) == 1


async def test_an_erasure_forgets_the_answers_that_quote_the_client(
    client: httpx.AsyncClient, database_url: str
) -> None:
    body = touchpoint(client_ref="c-erased", comment="Никто не перезвонил")
    assert (await client.post("/v1/touchpoints", json=body, headers=KEY)).status_code == 201
    other = {"Idempotency-Key": "someone-else"}
    assert (await client.post("/v1/touchpoints", json=touchpoint(), headers=other)).is_success
    assert (await client.delete("/v1/clients/c-erased")).status_code == 200
    assert [kept.key for kept in await _kept(database_url)] == ["someone-else"]
    # The retry is new work: the client's touchpoint is not given back from the kept answer.
    retry = await client.post("/v1/touchpoints", json=body, headers=KEY)
    assert "idempotent-replayed" not in retry.headers
