"""Webhooks: registration, the outbox of deliveries, and sending them with retries.

A change that should be notified writes a delivery row in its own transaction (the
outbox): nothing is sent while the request runs, so a slow or failing receiver never
slows or fails an ingest. A background task claims due deliveries in a short transaction,
sends them with no transaction open, and records the outcome; failures are retried with
exponential backoff, then given up.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.db import Database, utcnow
from app.errors import NotFound
from app.webhooks.models import Webhook, WebhookDelivery
from app.webhooks.schemas import (
    DeliveryRead,
    EventType,
    WebhookCreate,
    WebhookCreated,
    WebhookDetail,
    WebhookRead,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(hours=1)
LEASE = timedelta(seconds=60)
"""A claimed delivery is not claimed again for this long, in case its sender died."""
SEND_TIMEOUT = 5.0
CLAIM_BATCH = 50
SIGNATURE_HEADER = "x-mot-signature"


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`; receivers recompute it, and
    check the time to refuse replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(attempts: int) -> timedelta:
    """Wait before attempt `attempts + 1`: 2, 4, 8... seconds, at most an hour."""
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


async def register(session: AsyncSession, *, data: WebhookCreate) -> WebhookCreated:
    webhook = Webhook(
        url=str(data.url),
        events=[event.value for event in data.events],
        secret=secrets.token_urlsafe(32),
        active=True,
        created_at=utcnow(),
    )
    session.add(webhook)
    await session.flush()
    return WebhookCreated.model_validate(webhook, from_attributes=True)


async def list_webhooks(session: AsyncSession) -> list[WebhookRead]:
    webhooks = await session.scalars(select(Webhook).order_by(Webhook.id))
    return [WebhookRead.model_validate(w, from_attributes=True) for w in webhooks]


async def get(session: AsyncSession, *, webhook_id: int) -> WebhookDetail:
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"No webhook {webhook_id}.")
    deliveries = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(50)
    )
    return WebhookDetail(
        **WebhookRead.model_validate(webhook, from_attributes=True).model_dump(),
        deliveries=[DeliveryRead.model_validate(d, from_attributes=True) for d in deliveries],
    )


async def enqueue(
    session: AsyncSession, *, event: EventType, payloads: Sequence[dict[str, Any]]
) -> None:
    """Queue one delivery per payload for every active webhook subscribed to `event`."""
    if not payloads:
        return
    webhooks = [
        webhook
        for webhook in await session.scalars(select(Webhook).where(Webhook.active))
        if event.value in webhook.events
    ]
    now = utcnow()
    session.add_all(
        WebhookDelivery(
            webhook_id=webhook.id,
            event=event.value,
            payload={"event": event.value, "at": now.isoformat(), "data": payload},
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for webhook in webhooks
        for payload in payloads
    )
    await session.flush()


@dataclass(frozen=True, slots=True)
class _Claimed:
    delivery_id: int
    event: str
    url: str
    secret: str
    body: bytes
    attempts: int


async def _claim(database: Database, *, now: datetime) -> list[_Claimed]:
    async with database.write_sessions() as session, session.begin():
        due = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.id)
            .limit(CLAIM_BATCH)
            .with_for_update(skip_locked=True)
        )
        ids = list(await session.scalars(due))
        if not ids:
            return []
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(next_attempt_at=now + LEASE, attempts=WebhookDelivery.attempts + 1)
        )
        rows = await session.execute(
            select(WebhookDelivery, Webhook.url, Webhook.secret)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.id.in_(ids))
            .order_by(WebhookDelivery.id)
        )
        return [
            _Claimed(
                delivery_id=delivery.id,
                event=delivery.event,
                url=url,
                secret=secret,
                body=json.dumps(delivery.payload, separators=(",", ":")).encode(),
                attempts=delivery.attempts,
            )
            for delivery, url, secret in rows.all()
        ]


async def _send(client: httpx.AsyncClient, claimed: _Claimed) -> tuple[int | None, str | None]:
    headers = {
        "content-type": "application/json",
        "x-mot-event": claimed.event,
        "x-mot-delivery": str(claimed.delivery_id),
        SIGNATURE_HEADER: signature(
            claimed.secret, timestamp=int(utcnow().timestamp()), body=claimed.body
        ),
    }
    try:
        response = await client.post(
            claimed.url, content=claimed.body, headers=headers, timeout=SEND_TIMEOUT
        )
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


async def deliver_due(database: Database, client: httpx.AsyncClient) -> int:
    """Send the deliveries that are due; returns how many were attempted."""
    claimed = await _claim(database, now=utcnow())
    for item in claimed:
        status, error = await _send(client, item)
        now = utcnow()
        values: dict[str, Any] = {"last_status": status, "last_error": error}
        if error is None:
            outcome = "delivered"
            values |= {"state": "delivered", "delivered_at": now}
        elif item.attempts >= MAX_ATTEMPTS:
            outcome = "failed"
            values |= {"state": "failed"}
        else:
            outcome = "retrying"
            values |= {"next_attempt_at": now + backoff(item.attempts)}
        async with database.write_sessions() as session, session.begin():
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == item.delivery_id)
                .values(**values)
            )
            metrics.count_on_commit(session, metrics.WEBHOOK_DELIVERIES.labels(outcome))
    return len(claimed)


DISPATCH_INTERVAL = 1.0


async def run_dispatcher(database: Database) -> None:
    """Send due deliveries until cancelled (the service's lifespan runs one per worker)."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        while True:
            try:
                sent = await deliver_due(database, client)
            except Exception:  # a database hiccup must not stop the loop
                logger.exception("webhook dispatch failed; retrying")
                sent = 0
            if not sent:
                await asyncio.sleep(DISPATCH_INTERVAL)
