"""Webhooks: registration, the outbox of deliveries, and sending them with retries.

A change that should be notified writes a delivery row in its own transaction (the
outbox): nothing is sent while the request runs, so a slow or failing receiver never
slows or fails an ingest. A background task in every worker claims one due delivery at a
time in a short transaction (a lease: its next attempt is pushed past the longest a send
may take), sends it with no transaction open, and records the outcome; failures are
retried with exponential backoff, then given up.

Delivery is at least once: a sender that dies after the receiver answered, or a receiver
that answers too late, gets the notification sent again. Every attempt carries the same
`X-Mot-Delivery` id, on which receivers drop repeats.
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
from typing import Any, cast

import httpx
from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils import uuid7

from app import metrics
from app.db import Database, utcnow
from app.errors import ErrorDetail, NotFound, ValidationFailed
from app.webhooks.addresses import AddressRefused, AllowList, checked_addresses
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
SEND_TIMEOUT = 5.0
"""Longest wait for each step of a send: connecting, writing, each read."""
SEND_DEADLINE = 15.0
"""Longest a whole send may take, resolution included: a receiver that trickles its
answer a byte at a time is cut off here, so a send always ends within its lease."""
LEASE = timedelta(seconds=60)
"""A claimed delivery is not claimed again for this long, in case its sender died; well
past `SEND_DEADLINE`, so that no other sender takes over a delivery still being sent."""
CLAIM_BATCH = 50
"""Most deliveries one call of `deliver_due` sends, each claimed just before it is sent."""
SIGNATURE_HEADER = "x-mot-signature"
DELIVERY_HEADER = "x-mot-delivery"


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`; receivers recompute it, and
    check the time to refuse replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(attempts: int) -> timedelta:
    """Wait before attempt `attempts + 1`: 2, 4, 8... seconds, at most an hour."""
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


async def register(
    session: AsyncSession, *, data: WebhookCreate, allowed: AllowList
) -> WebhookCreated:
    """Register a webhook whose URL reaches a public address (or one `allowed` lists)."""
    url = httpx.URL(str(data.url))
    try:
        await checked_addresses(_host(url), _port(url), allowed=allowed)
    except AddressRefused as refused:
        detail = ErrorDetail(field="url", message=str(refused), type=refused.code)
        raise ValidationFailed(
            "Webhooks are sent to public addresses only.", details=[detail]
        ) from None
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
            delivery_id=str(uuid7()),
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
    id: int
    delivery_id: str
    event: str
    url: str
    secret: str
    body: bytes
    attempts: int
    """The attempt this is: the lease's token, since every claim counts one more."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None
    error: str | None
    """A short reason, never the receiver's answer nor the details of a network error."""


async def _claim(database: Database, *, now: datetime) -> _Claimed | None:
    """Lease the oldest due delivery to this sender, or None when none is due.

    One at a time: a lease taken for a batch would run out while the batch is still being
    sent, and another sender would send the rest again.
    """
    async with database.write_sessions() as session, session.begin():
        # PostgreSQL: a delivery another sender is claiming is skipped, not waited for.
        # SQLite: the write transaction already admits one claim at a time.
        due = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        number = await session.scalar(due)
        if number is None:
            return None
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == number)
            .values(next_attempt_at=now + LEASE, attempts=WebhookDelivery.attempts + 1)
        )
        delivery, url, secret = (
            await session.execute(
                select(WebhookDelivery, Webhook.url, Webhook.secret)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.id == number)
            )
        ).one()
        return _Claimed(
            id=delivery.id,
            delivery_id=delivery.delivery_id,
            event=delivery.event,
            url=url,
            secret=secret,
            body=json.dumps(delivery.payload, separators=(",", ":")).encode(),
            attempts=delivery.attempts,
        )


def _host(url: httpx.URL) -> str:
    # The encoded form (IDNA) is what the resolver and the certificate know.
    return url.raw_host.decode("ascii")


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _reason(error: Exception) -> str:
    """What a failed attempt stores: the kind of failure only. The exception's text may
    name addresses and system errors of the network the service runs in."""
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.ConnectError):
        return "connection failed"
    if isinstance(error, httpx.RemoteProtocolError):
        return "invalid response"
    return "request failed"


async def _send(client: httpx.AsyncClient, claimed: _Claimed, *, allowed: AllowList) -> _Outcome:
    url = httpx.URL(claimed.url)
    host = _host(url)
    headers = {
        "content-type": "application/json",
        "x-mot-event": claimed.event,
        DELIVERY_HEADER: claimed.delivery_id,
        SIGNATURE_HEADER: signature(
            claimed.secret, timestamp=int(utcnow().timestamp()), body=claimed.body
        ),
        # The request goes to the address checked below, under the name of the URL.
        "host": url.netloc.decode("ascii"),
        # A connection is never reused: it was opened to an address checked for one name,
        # and its TLS session was verified for that name only.
        "connection": "close",
    }
    try:
        async with asyncio.timeout(SEND_DEADLINE):
            address, *_others = await checked_addresses(host, _port(url), allowed=allowed)
            extensions = {"sni_hostname": host} if url.scheme == "https" else {}
            # Streamed, and closed unread: only the status is kept, never the answer.
            async with client.stream(
                "POST",
                url.copy_with(host=str(address)),
                content=claimed.body,
                headers=headers,
                timeout=SEND_TIMEOUT,
                extensions=extensions,
                follow_redirects=False,
            ) as response:
                status = response.status_code
    except AddressRefused as refused:
        return _Outcome(None, refused.reason)
    except (TimeoutError, httpx.HTTPError) as error:
        return _Outcome(None, _reason(error))
    return _Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")


async def _record(database: Database, claimed: _Claimed, outcome: _Outcome) -> None:
    now = utcnow()
    values: dict[str, Any] = {"last_status": outcome.status, "last_error": outcome.error}
    if outcome.error is None:
        result = "delivered"
        values |= {"state": "delivered", "delivered_at": now}
    elif claimed.attempts >= MAX_ATTEMPTS:
        result = "failed"
        values |= {"state": "failed"}
    else:
        result = "retrying"
        values |= {"next_attempt_at": now + backoff(claimed.attempts)}
    async with database.write_sessions() as session, session.begin():
        updated = await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == claimed.id,
                # Still this sender's lease: no other sender has claimed it since.
                WebhookDelivery.attempts == claimed.attempts,
                WebhookDelivery.state == "pending",
            )
            .values(**values)
        )
        if cast(CursorResult[Any], updated).rowcount == 0:
            # Its lease ran out (a stalled process) and another sender took it over, or an
            # erasure removed it: that sender's outcome, or none, is the one kept.
            logger.warning("webhook delivery %s: lease lost while sending", claimed.id)
            return
        metrics.count_on_commit(session, metrics.WEBHOOK_DELIVERIES.labels(result))


async def deliver_due(database: Database, client: httpx.AsyncClient, *, allowed: AllowList) -> int:
    """Send the deliveries that are due, each under a lease of its own taken just before it
    is sent; returns how many were attempted."""
    attempted = 0
    while attempted < CLAIM_BATCH:
        claimed = await _claim(database, now=utcnow())
        if claimed is None:
            break
        await _record(database, claimed, await _send(client, claimed, allowed=allowed))
        attempted += 1
    return attempted


DISPATCH_INTERVAL = 1.0


async def run_dispatcher(database: Database, *, allowed: AllowList) -> None:
    """Send due deliveries until cancelled (the service's lifespan runs one per worker)."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        while True:
            try:
                sent = await deliver_due(database, client, allowed=allowed)
            except Exception:  # a database hiccup must not stop the loop
                logger.exception("webhook dispatch failed; retrying")
                sent = 0
            if not sent:
                await asyncio.sleep(DISPATCH_INTERVAL)
