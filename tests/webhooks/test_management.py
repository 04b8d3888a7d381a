"""Managing webhooks: change, pause, delete, ping, redeliver, rotate the secret; checked
against a real HTTP receiver on 127.0.0.1 with the Standard Webhooks reference verifier."""

import base64
import json
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import standardwebhooks
from sqlalchemy import func, select, update

from app.db import Database, utcnow
from app.keys.schemas import Scope
from app.webhooks import service
from app.webhooks.models import Webhook, WebhookDelivery
from tests.conftest import ClientFactory
from tests.payloads import touchpoint
from tests.webhooks.conftest import Receiver, _serving
from tests.webhooks.test_webhooks import (
    ALLOW_RECEIVERS,
    _deliver,
    _make_due,
    _register,
    _verified,
    _verified_the_old_way,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(**ALLOW_RECEIVERS) as opened:
        yield opened


async def _write(database_url: str, statement: Any) -> None:
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            await session.execute(statement)
    finally:
        await database.dispose()


async def _count_deliveries(database_url: str) -> int:
    database = Database(database_url)
    try:
        async with database.read_sessions() as session:
            return int(await session.scalar(select(func.count(WebhookDelivery.id))) or 0)
    finally:
        await database.dispose()


async def _complaint(client: httpx.AsyncClient, number: str) -> None:
    response = await client.post("/v1/touchpoints", json=touchpoint(id=number, complaint=True))
    assert response.status_code == 201, response.text


async def test_a_ping_is_delivered_signed_whatever_events_the_webhook_receives(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    response = await client.post(f"/v1/webhooks/{hook['id']}/ping")
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (queued["event"], queued["state"], queued["attempts"]) == ("ping", "pending", 0)

    assert await _deliver(database_url) == 1
    ((headers, body),) = receiver.received
    assert headers["x-mot-event"] == "ping"
    assert headers["webhook-id"] == queued["delivery_id"]
    payload = standardwebhooks.Webhook(hook["secret"]).verify(body, headers)
    assert payload["event"] == "ping"
    assert payload["data"] == {"webhook": hook["id"]}
    assert (await client.post("/v1/webhooks/999/ping")).status_code == 404


async def test_the_standard_signature_names_the_delivery_and_the_time_it_was_sent(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    await client.post(f"/v1/webhooks/{hook['id']}/ping")
    assert await _deliver(database_url) == 1
    ((headers, body),) = receiver.received
    verifier = standardwebhooks.Webhook(hook["secret"])
    verifier.verify(body, headers)
    # Another delivery id, or a replayed body under another time, does not verify.
    for name, value in (
        ("webhook-id", "another"),
        ("webhook-timestamp", str(int(headers["webhook-timestamp"]) - 1)),
    ):
        with pytest.raises(standardwebhooks.WebhookVerificationError):
            verifier.verify(body, {**headers, name: value})
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        verifier.verify(body.replace(b"ping", b"pong"), headers)


async def test_a_secret_issued_before_whsec_keeps_verifying(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    old_secret = secrets.token_urlsafe(32)  # how secrets were made before
    await _write(database_url, update(Webhook).values(secret=old_secret))
    await client.post(f"/v1/webhooks/{hook['id']}/ping")
    assert await _deliver(database_url) == 1
    ((headers, body),) = receiver.received
    assert _verified_the_old_way(old_secret, headers, body)
    # Its Standard Webhooks key is the secret's text: given as bytes, or base64 with `whsec_`.
    standardwebhooks.Webhook(old_secret.encode()).verify(body, headers)
    assert _verified("whsec_" + base64.b64encode(old_secret.encode()).decode(), headers, body)


async def test_a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    old = hook["secret"]
    response = await client.post(
        f"/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_hours": 2}
    )
    assert response.status_code == 200, response.text
    rotated = response.json()
    new = rotated["secret"]
    assert new.startswith("whsec_")
    assert new != old
    ends = rotated["previous_secret_expires_at"]
    assert ends is not None
    assert (await client.get(f"/v1/webhooks/{hook['id']}")).json()[
        "previous_secret_expires_at"
    ] == ends
    assert "secret" not in (await client.get(f"/v1/webhooks/{hook['id']}")).json()

    await client.post(f"/v1/webhooks/{hook['id']}/ping")
    assert await _deliver(database_url) == 1
    headers, body = receiver.received[-1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert _verified(new, headers, body)
    assert _verified(old, headers, body)
    # The deprecated header moves to the new secret at once.
    assert _verified_the_old_way(new, headers, body)
    assert not _verified_the_old_way(old, headers, body)

    # The overlap is over: the old secret signs no more.
    await _write(
        database_url,
        update(Webhook).values(previous_secret_expires_at=utcnow() - timedelta(seconds=1)),
    )
    assert (await client.get(f"/v1/webhooks/{hook['id']}")).json()[
        "previous_secret_expires_at"
    ] is None
    await client.post(f"/v1/webhooks/{hook['id']}/ping")
    assert await _deliver(database_url) == 1
    headers, body = receiver.received[-1]
    assert _verified(new, headers, body)
    assert not _verified(old, headers, body)


async def test_a_rotation_without_overlap_stops_the_old_secret_at_once(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    first = (await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret")).json()
    assert first["previous_secret_expires_at"] is not None  # 24 hours by default
    second = await client.post(
        f"/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_hours": 0}
    )
    assert second.json()["previous_secret_expires_at"] is None
    await client.post(f"/v1/webhooks/{hook['id']}/ping")
    assert await _deliver(database_url) == 1
    headers, body = receiver.received[-1]
    assert headers["webhook-signature"].count("v1,") == 1
    assert _verified(second.json()["secret"], headers, body)
    assert not _verified(first["secret"], headers, body)
    assert not _verified(hook["secret"], headers, body)
    refused = await client.post(
        f"/v1/webhooks/{hook['id']}/rotate-secret", json={"overlap_hours": -1}
    )
    assert refused.status_code == 422
    assert (await client.post("/v1/webhooks/999/rotate-secret")).status_code == 404


async def test_a_changed_url_is_checked_and_receives_what_follows(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    refused = await client.patch(f"/v1/webhooks/{hook['id']}", json={"url": "http://10.1.2.3/"})
    assert refused.status_code == 422
    assert refused.json()["details"][0]["type"] == "address_not_allowed"
    with _serving() as other:
        changed = await client.patch(f"/v1/webhooks/{hook['id']}", json={"url": other.url})
        assert changed.status_code == 200, changed.text
        assert changed.json()["url"] == other.url
        await _complaint(client, "u1")
        assert await _deliver(database_url) == 1
        assert len(other.received) == 1
    assert receiver.received == []


async def test_changed_events_decide_what_is_queued(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    changed = await client.patch(
        f"/v1/webhooks/{hook['id']}", json={"events": ["follow_up.status_changed"]}
    )
    assert changed.json()["events"] == ["follow_up.status_changed"]
    await _complaint(client, "e1")  # opens a follow-up: not subscribed any more
    assert await _count_deliveries(database_url) == 0
    invalid: list[dict[str, Any]] = [
        {"events": []},
        {"events": ["ping"]},
        {"paused": "maybe"},
        {"secret": "x"},
    ]
    for body in invalid:
        assert (await client.patch(f"/v1/webhooks/{hook['id']}", json=body)).status_code == 422
    assert (await client.patch("/v1/webhooks/999", json={"paused": True})).status_code == 404


async def test_a_paused_webhook_gets_nothing_queued_and_its_queue_waits(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    await _complaint(client, "p1")  # queued before the pause
    paused = await client.patch(f"/v1/webhooks/{hook['id']}", json={"paused": True})
    assert (paused.json()["paused"], paused.json()["active"]) == (True, False)
    await _complaint(client, "p2")  # happens while paused: not queued
    await client.post(f"/v1/webhooks/{hook['id']}/ping")  # queued, waits
    assert await _count_deliveries(database_url) == 2
    assert await _deliver(database_url) == 0
    assert receiver.received == []

    resumed = await client.patch(f"/v1/webhooks/{hook['id']}", json={"paused": False})
    assert resumed.json()["paused"] is False
    assert await _deliver(database_url) == 2
    events = [json.loads(body) for _headers, body in receiver.received]
    assert [event["event"] for event in events] == ["follow_up.opened", "ping"]
    assert events[0]["data"]["touchpoint"] == "p1"


async def test_a_deleted_webhook_goes_with_its_deliveries(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    kept = await _register(client, receiver.url)
    await _complaint(client, "d1")
    assert await _count_deliveries(database_url) == 2
    response = await client.delete(f"/v1/webhooks/{hook['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/v1/webhooks/{hook['id']}")).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{hook['id']}")).status_code == 404
    assert [w["id"] for w in (await client.get("/v1/webhooks")).json()] == [kept["id"]]
    assert await _count_deliveries(database_url) == 1
    assert await _deliver(database_url) == 1  # the other webhook's only
    # Its number is never given to another webhook.
    assert (await _register(client, receiver.url))["id"] > kept["id"]


async def test_deliveries_are_listed_newest_first_a_page_at_a_time(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    queued = [(await client.post(f"/v1/webhooks/{hook['id']}/ping")).json() for _ in range(5)]
    url = f"/v1/webhooks/{hook['id']}/deliveries"
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(url, params=params)).json()
        seen += [delivery["id"] for delivery in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [delivery["id"] for delivery in reversed(queued)]

    receiver.failures_left = 1
    assert await _deliver(database_url) == 5
    failed = (await client.get(url, params={"state": "pending"})).json()["data"]
    assert [d["last_status"] for d in failed] == [500]
    delivered = (await client.get(url, params={"state": "delivered"})).json()["data"]
    assert len(delivered) == 4
    assert (await client.get(url, params={"cursor": "forged"})).status_code == 422
    assert (await client.get(url, params={"state": "lost"})).status_code == 422
    assert (await client.get("/v1/webhooks/999/deliveries")).status_code == 404


async def test_a_failed_delivery_is_redelivered_under_the_same_id(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    receiver.failures_left = 2
    (await client.post(f"/v1/webhooks/{hook['id']}/ping")).json()
    # On its last attempt, which fails: given up.
    await _write(database_url, update(WebhookDelivery).values(attempts=service.MAX_ATTEMPTS - 1))
    assert await _deliver(database_url) == 1
    (failed,) = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"]
    assert (failed["state"], failed["attempts"]) == ("failed", service.MAX_ATTEMPTS)
    redeliver = f"/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver"

    # One more attempt: failing, the delivery is failed again.
    response = await client.post(redeliver)
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "pending"
    assert await _deliver(database_url) == 1
    again = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"][0]
    assert (again["state"], again["attempts"]) == ("failed", service.MAX_ATTEMPTS + 1)

    assert (await client.post(redeliver)).status_code == 202
    assert await _deliver(database_url) == 1
    done = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"][0]
    assert (done["state"], done["last_status"]) == ("delivered", 204)
    assert {headers["webhook-id"] for headers, _body in receiver.received} == {
        failed["delivery_id"]
    }
    assert all(_verified(hook["secret"], *received) for received in receiver.received)

    # Delivered (or still pending): nothing to redeliver.
    conflict = await client.post(redeliver)
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "conflict"
    other = await _register(client, receiver.url)
    elsewhere = f"/v1/webhooks/{other['id']}/deliveries/{failed['id']}/redeliver"
    assert (await client.post(elsewhere)).status_code == 404
    assert (
        await client.post(f"/v1/webhooks/{hook['id']}/deliveries/999/redeliver")
    ).status_code == 404


async def test_a_delivery_whose_payload_was_erased_is_not_redelivered(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    await client.post(f"/v1/webhooks/{hook['id']}/ping")
    await _write(
        database_url, update(WebhookDelivery).values(state="failed", payload={"erased": True})
    )
    (failed,) = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"]
    response = await client.post(f"/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver")
    assert response.status_code == 409
    await _make_due(database_url)
    assert await _deliver(database_url) == 0


async def test_managing_webhooks_needs_the_manage_scope(make_client: ClientFactory) -> None:
    async with make_client(scopes=(Scope.read,), **ALLOW_RECEIVERS) as reader:
        for method, path in (
            ("PATCH", "/v1/webhooks/1"),
            ("DELETE", "/v1/webhooks/1"),
            ("POST", "/v1/webhooks/1/ping"),
            ("GET", "/v1/webhooks/1/deliveries"),
            ("POST", "/v1/webhooks/1/deliveries/1/redeliver"),
            ("POST", "/v1/webhooks/1/rotate-secret"),
        ):
            response = await reader.request(method, path, json={})
            assert response.status_code == 403, (method, path)
