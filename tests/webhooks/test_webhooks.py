"""Webhooks against a real HTTP receiver on 127.0.0.1."""

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from app.db import Database, utcnow
from app.webhooks import service
from app.webhooks.models import WebhookDelivery
from tests.payloads import touchpoint

pytestmark = pytest.mark.anyio


@dataclass
class Receiver:
    url: str
    failures_left: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (the name http.server calls)
            body = self.rfile.read(int(self.headers["content-length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            failing = state.failures_left > 0
            state.failures_left -= 1
            self.send_response(500 if failing else 204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


async def _register(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhooks",
        json={"url": url, "events": ["rating.negative", "follow_up.opened"]},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _deliver(database_url: str) -> int:
    database = Database(database_url)
    try:
        async with httpx.AsyncClient() as http:
            return await service.deliver_due(database, http)
    finally:
        await database.dispose()


def _verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    parts = dict(part.split("=", 1) for part in headers["x-mot-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(parts["v1"], expected.hexdigest())


async def test_events_are_delivered_signed(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    negative = touchpoint(id="w1", rating={"scale": "csat5", "value": 1})
    assert (await client.post("/v1/touchpoints", json=negative)).status_code == 201

    assert await _deliver(database_url) == 2
    events = {headers["x-mot-event"]: json.loads(body) for headers, body in receiver.received}
    assert set(events) == {"rating.negative", "follow_up.opened"}
    assert events["rating.negative"]["data"] == {
        "touchpoint": "w1",
        "moment": "service-desk.first-voice",
        "scale": "csat5",
        "value": 1,
    }
    assert events["follow_up.opened"]["data"]["reason"] == "negative_rating"
    assert all(_verified(hook["secret"], h, b) for h, b in receiver.received)
    assert not _verified("another-secret", *receiver.received[0])

    detail = (await client.get(f"/v1/webhooks/{hook['id']}")).json()
    assert {(d["state"], d["attempts"], d["last_status"]) for d in detail["deliveries"]} == {
        ("delivered", 1, 204)
    }
    assert "secret" not in detail


async def test_a_failed_delivery_is_retried_later(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    receiver.failures_left = 1
    await client.post("/v1/touchpoints", json=touchpoint(id="w2", complaint=True))

    assert await _deliver(database_url) == 1
    (pending,) = (await client.get(f"/v1/webhooks/{hook['id']}")).json()["deliveries"]
    assert (pending["state"], pending["attempts"], pending["last_status"]) == ("pending", 1, 500)
    # Not due again yet: the backoff holds it back.
    assert await _deliver(database_url) == 0

    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
    finally:
        await database.dispose()
    assert await _deliver(database_url) == 1
    (done,) = (await client.get(f"/v1/webhooks/{hook['id']}")).json()["deliveries"]
    assert (done["state"], done["attempts"], done["last_status"]) == ("delivered", 2, 204)
    assert len(receiver.received) == 2


async def test_an_unreachable_receiver_never_fails_the_ingest(
    client: httpx.AsyncClient, database_url: str
) -> None:
    hook = await _register(client, "http://127.0.0.1:9/nothing-listens")
    response = await client.post(
        "/v1/touchpoints", json=touchpoint(id="w3", rating={"scale": "thumbs", "value": 0})
    )
    assert response.status_code == 201
    assert await _deliver(database_url) == 2
    deliveries = (await client.get(f"/v1/webhooks/{hook['id']}")).json()["deliveries"]
    assert all(d["state"] == "pending" and d["last_error"] for d in deliveries)


async def test_delivery_outcomes_are_counted(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    def counted(outcome: str) -> float:
        value = REGISTRY.get_sample_value("mot_webhook_deliveries_total", {"outcome": outcome})
        return value or 0.0

    outcomes = ("delivered", "retrying", "failed")
    before = [counted(outcome) for outcome in outcomes]
    await _register(client, receiver.url)
    receiver.failures_left = 2
    await client.post("/v1/touchpoints", json=touchpoint(id="w4", complaint=True))
    assert await _deliver(database_url) == 1  # fails; tried again later
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            # Due now, on its last attempt: it fails for good.
            await session.execute(
                update(WebhookDelivery).values(
                    next_attempt_at=utcnow(), attempts=service.MAX_ATTEMPTS - 1
                )
            )
    finally:
        await database.dispose()
    assert await _deliver(database_url) == 1
    await client.post("/v1/touchpoints", json=touchpoint(id="w5", complaint=True))
    assert await _deliver(database_url) == 1  # delivered at once

    added = [counted(outcome) - earlier for outcome, earlier in zip(outcomes, before, strict=True)]
    assert added == [1, 1, 1]


def test_backoff_doubles_and_is_capped() -> None:
    assert [service.backoff(n).total_seconds() for n in (1, 2, 3)] == [2, 4, 8]
    assert service.backoff(30).total_seconds() == 3600
