"""Webhooks against a real HTTP receiver on 127.0.0.1."""

import asyncio
import hashlib
import hmac
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
import standardwebhooks
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from app.db import Database, utcnow
from app.webhooks import service
from app.webhooks.addresses import AllowList
from app.webhooks.models import WebhookDelivery
from tests.conftest import ClientFactory
from tests.payloads import touchpoint
from tests.webhooks.conftest import Receiver

pytestmark = pytest.mark.anyio

# The receivers of these tests listen on 127.0.0.1, which webhooks may not reach by default.
ALLOW_RECEIVERS = {"webhook_allow_hosts": "127.0.0.1"}
ALLOWED = AllowList(networks=[ip_network("127.0.0.1")])


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(**ALLOW_RECEIVERS) as opened:
        yield opened


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
            return await service.deliver_due(database, http, allowed=ALLOWED)
    finally:
        await database.dispose()


async def _make_due(database_url: str) -> None:
    """Every delivery due now, as if its backoff had passed."""
    database = Database(database_url)
    try:
        async with database.write_sessions() as session, session.begin():
            await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow()))
    finally:
        await database.dispose()


def _verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Checked as a Standard Webhooks receiver checks, with the reference verifier."""
    try:
        standardwebhooks.Webhook(secret).verify(body, headers)
    except standardwebhooks.WebhookVerificationError:
        return False
    return True


def _verified_the_old_way(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Checked as receivers written before Standard Webhooks check the deprecated header."""
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
    assert hook["secret"].startswith("whsec_")
    assert all(_verified(hook["secret"], h, b) for h, b in receiver.received)
    assert not _verified(service.new_secret(), *receiver.received[0])
    # The deprecated headers are still sent, for one release.
    assert all(_verified_the_old_way(hook["secret"], h, b) for h, b in receiver.received)
    assert all(h["x-mot-delivery"] == h["webhook-id"] for h, _b in receiver.received)

    detail = (await client.get(f"/v1/webhooks/{hook['id']}")).json()
    assert {(d["state"], d["attempts"], d["last_status"]) for d in detail["deliveries"]} == {
        ("delivered", 1, 204)
    }
    assert "secret" not in detail


async def test_a_failed_delivery_is_retried_later(
    client: httpx.AsyncClient,
    database_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The longest wait the jitter may draw: a wait drawn near zero would be due at once.
    monkeypatch.setattr(service, "backoff", service.backoff_ceiling)
    hook = await _register(client, receiver.url)
    receiver.failures_left = 1
    await client.post("/v1/touchpoints", json=touchpoint(id="w2", complaint=True))

    assert await _deliver(database_url) == 1
    (pending,) = (await client.get(f"/v1/webhooks/{hook['id']}")).json()["deliveries"]
    assert (pending["state"], pending["attempts"], pending["last_status"]) == ("pending", 1, 500)
    # Not due again yet: the backoff holds it back.
    assert await _deliver(database_url) == 0

    await _make_due(database_url)
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


def test_backoff_ceiling_doubles_and_is_capped() -> None:
    assert [service.backoff_ceiling(n).total_seconds() for n in (1, 2, 3)] == [2, 4, 8]
    assert service.backoff_ceiling(30).total_seconds() == 3600
    assert service.backoff_ceiling(10_000).total_seconds() == 3600


@pytest.mark.parametrize("attempts", [1, 3, 6, 12, 40])
def test_backoff_is_drawn_uniformly_between_nothing_and_the_ceiling(attempts: int) -> None:
    rng = random.Random(attempts)
    ceiling = service.backoff_ceiling(attempts).total_seconds()
    waits = [service.backoff(attempts, rng=rng).total_seconds() for _ in range(2000)]
    assert all(0 <= wait <= ceiling for wait in waits)
    # Full jitter: the whole range is used, not a band around the ceiling.
    assert min(waits) < 0.01 * ceiling
    assert max(waits) > 0.99 * ceiling
    assert statistics.fmean(waits) == pytest.approx(ceiling / 2, rel=0.05)


class _Extreme(random.Random):
    """A random source that always draws one end of the range."""

    def __init__(self, *, high: bool) -> None:
        super().__init__()
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def test_backoff_reaches_both_ends_of_its_range() -> None:
    assert service.backoff(3, rng=_Extreme(high=True)) == timedelta(seconds=8)
    assert service.backoff(3, rng=_Extreme(high=False)) == timedelta(0)


async def test_a_retry_waits_what_the_jitter_draws(
    client: httpx.AsyncClient,
    database_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A wait of nothing drawn: the retry is due at once, which the ceiling alone never is.
    monkeypatch.setattr(service, "_jitter", _Extreme(high=False))
    receiver.failures_left = 1
    await _register(client, receiver.url)
    await client.post("/v1/touchpoints", json=touchpoint(id="j1", complaint=True))
    # The retry is due at once, yet waits for the next round of sending: one round sends
    # each delivery once, however short the waits it draws.
    assert await _deliver(database_url) == 1
    assert await _deliver(database_url) == 1
    assert len(receiver.received) == 2


async def test_two_senders_deliver_each_notification_once_to_a_slow_receiver(
    client: httpx.AsyncClient,
    database_url: str,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The lease is shortened so that a test can outlast it: one slow answer fits in a lease,
    # the whole queue does not.
    monkeypatch.setattr(service, "LEASE", timedelta(seconds=2))
    receiver.delay = 0.6
    notifications = 8
    await _register(client, receiver.url)
    for number in range(notifications):
        await client.post("/v1/touchpoints", json=touchpoint(id=f"s{number}", complaint=True))

    async def pending(database: Database) -> int:
        async with database.read_sessions() as session:
            query = select(func.count()).where(WebhookDelivery.state == "pending")
            return int(await session.scalar(query) or 0)

    async def sender() -> None:
        database = Database(database_url)
        deadline = time.monotonic() + 60
        try:
            async with httpx.AsyncClient() as http:
                while await pending(database) and time.monotonic() < deadline:
                    if not await service.deliver_due(database, http, allowed=ALLOWED):
                        await asyncio.sleep(0.05)
        finally:
            await database.dispose()

    await asyncio.gather(sender(), sender())
    received = Counter(headers["x-mot-delivery"] for headers, _body in receiver.received)
    assert len(received) == notifications
    assert set(received.values()) == {1}, "some notifications arrived more than once"


async def test_a_retry_carries_the_same_delivery_id(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    receiver.failures_left = 1
    hook = await _register(client, receiver.url)
    await client.post("/v1/touchpoints", json=touchpoint(id="r1", complaint=True))
    assert await _deliver(database_url) == 1
    await _make_due(database_url)
    assert await _deliver(database_url) == 1
    (delivery,) = (await client.get(f"/v1/webhooks/{hook['id']}")).json()["deliveries"]

    first, retry = (headers["x-mot-delivery"] for headers, _body in receiver.received)
    assert first == retry == delivery["delivery_id"]
    # Unique beyond this database's row numbers, which SQLite may hand out again.
    assert len(delivery["delivery_id"]) == 36


async def test_a_sender_whose_lease_ran_out_keeps_the_outcome_of_the_one_that_took_over(
    client: httpx.AsyncClient, database_url: str, receiver: Receiver
) -> None:
    hook = await _register(client, receiver.url)
    await client.post("/v1/touchpoints", json=touchpoint(id="l1", complaint=True))
    database = Database(database_url)
    try:
        stalled = await service._claim(database, now=utcnow())
        assert stalled is not None
        # The stalled sender's lease runs out: another one claims the delivery.
        later = utcnow() + service.LEASE + timedelta(seconds=1)
        taken_over = await service._claim(database, now=later)
        assert taken_over is not None
        assert taken_over.delivery_id == stalled.delivery_id
        # The stalled sender wakes up with a failure: it must neither cut short the lease
        # of the one now sending (a third sender would send again) nor undo its outcome.
        await service._record(database, stalled, service._Outcome(None, "timed out"))
        assert await service._claim(database, now=later + timedelta(seconds=10)) is None
        await service._record(database, taken_over, service._Outcome(204, None))
        await service._record(database, stalled, service._Outcome(None, "timed out"))
    finally:
        await database.dispose()
    (delivery,) = (await client.get(f"/v1/webhooks/{hook['id']}")).json()["deliveries"]
    assert (delivery["state"], delivery["attempts"], delivery["last_error"]) == (
        "delivered",
        2,
        None,
    )
