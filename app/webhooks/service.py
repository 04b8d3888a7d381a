"""Webhooks: registration and management, the outbox of deliveries, and sending them with
retries.

A change that should be notified writes a delivery row in its own transaction (the
outbox): nothing is sent while the request runs, so a slow or failing receiver never
slows or fails an ingest. A background task in every worker claims one due delivery at a
time in a short transaction (a lease: its next attempt is pushed past the longest a send
may take), sends it with no transaction open, and records the outcome; failures are
retried with exponential backoff and full jitter, then given up.

Delivery is at least once: a sender that dies after the receiver answered, or a receiver
that answers too late, gets the notification sent again. Every attempt carries the same
`webhook-id` (and, for one more release, `X-Mot-Delivery`), on which receivers drop
repeats. Notifications are signed as Standard Webhooks specifies
(https://www.standardwebhooks.com), so that its verifiers, in every language, check them.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
from pydantic import TypeAdapter
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils import uuid7

from app import metrics
from app.db import Database, utcnow
from app.errors import Conflict, ErrorDetail, NotFound, ValidationFailed
from app.pagination import RowId, decode_cursor, encode_cursor
from app.webhooks.addresses import AddressRefused, AllowList, checked_addresses
from app.webhooks.models import Webhook, WebhookDelivery
from app.webhooks.schemas import (
    PING,
    DeliveryRead,
    DeliveryState,
    EventType,
    WebhookCreate,
    WebhookCreated,
    WebhookDetail,
    WebhookRead,
    WebhookUpdate,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
"""Attempts of a notification before it is given up; a redelivery is one attempt more."""
MOST_ATTEMPTS_EVER = 1000
"""Attempts after which a delivery is not redelivered again: far beyond any real use, and
well within the column's range."""
BACKOFF_BASE = timedelta(seconds=1)
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
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SIGNATURE_HEADER = "x-mot-signature"
"""Deprecated: mot's own signature, sent for one more release beside the standard one."""
DELIVERY_HEADER = "x-mot-delivery"
"""Deprecated: the same value as `webhook-id`, sent for one more release."""
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32

_jitter = random.SystemRandom()


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` and a base64 key."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: the key a `whsec_` secret encodes; the text itself of a
    secret issued before they took that form, so that its receivers keep verifying."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def standard_signature(
    keys: Sequence[bytes], *, message_id: str, timestamp: int, body: bytes
) -> str:
    """The `webhook-signature` header: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`
    under each key, space-separated (several while a rotated secret still signs)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for key in keys
    )


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    """Deprecated `X-Mot-Signature`: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
    under the text of the secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff_ceiling(attempts: int) -> timedelta:
    """The longest wait before attempt `attempts + 1`: 2, 4, 8... seconds, at most an hour."""
    # The exponent is bounded first: 2**attempts would otherwise grow without need.
    exponent = min(attempts, 32)
    return min(BACKOFF_BASE * (1 << exponent), MAX_BACKOFF)


def backoff(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Wait before attempt `attempts + 1`: uniform between nothing and `backoff_ceiling`
    ("full jitter", https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/),
    so that the notifications a receiver's outage held back do not all come back at once."""
    ceiling = backoff_ceiling(attempts).total_seconds()
    return timedelta(seconds=(rng or _jitter).uniform(0, ceiling))


async def _checked_url(url: str, *, allowed: AllowList) -> None:
    parsed = httpx.URL(url)
    try:
        await checked_addresses(_host(parsed), _port(parsed), allowed=allowed)
    except AddressRefused as refused:
        detail = ErrorDetail(field="url", message=str(refused), type=refused.code)
        raise ValidationFailed(
            "Webhooks are sent to public addresses only.", details=[detail]
        ) from None


def _read(webhook: Webhook, *, now: datetime) -> WebhookRead:
    overlap_ends = webhook.previous_secret_expires_at
    return WebhookRead(
        id=webhook.id,
        url=webhook.url,
        events=[EventType(event) for event in webhook.events],
        paused=not webhook.active,
        active=webhook.active,
        previous_secret_expires_at=overlap_ends
        if webhook.previous_secret is not None and overlap_ends is not None and overlap_ends > now
        else None,
        created_at=webhook.created_at,
    )


def _created(webhook: Webhook) -> WebhookCreated:
    return WebhookCreated(**_read(webhook, now=utcnow()).model_dump(), secret=webhook.secret)


async def register(
    session: AsyncSession, *, data: WebhookCreate, allowed: AllowList
) -> WebhookCreated:
    """Register a webhook whose URL reaches a public address (or one `allowed` lists)."""
    await _checked_url(str(data.url), allowed=allowed)
    webhook = Webhook(
        url=str(data.url),
        events=[event.value for event in data.events],
        secret=new_secret(),
        active=True,
        created_at=utcnow(),
    )
    session.add(webhook)
    await session.flush()
    return _created(webhook)


async def _locked(session: AsyncSession, webhook_id: int) -> Webhook:
    webhook = await session.get(Webhook, webhook_id, with_for_update=True)
    if webhook is None:
        raise NotFound(f"No webhook {webhook_id}.")
    return webhook


async def update_webhook(
    session: AsyncSession, *, webhook_id: int, data: WebhookUpdate, allowed: AllowList
) -> WebhookRead:
    """Change a webhook's URL (checked like at registration), events or pause."""
    webhook = await _locked(session, webhook_id)
    if data.url is not None:
        await _checked_url(str(data.url), allowed=allowed)
        webhook.url = str(data.url)
    if data.events is not None:
        webhook.events = [event.value for event in data.events]
    if data.paused is not None:
        webhook.active = not data.paused
    await session.flush()
    return _read(webhook, now=utcnow())


async def delete_webhook(session: AsyncSession, *, webhook_id: int) -> None:
    """Delete a webhook with its deliveries: those not sent yet never will be."""
    await _locked(session, webhook_id)
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    await session.execute(delete(Webhook).where(Webhook.id == webhook_id))


async def rotate_secret(
    session: AsyncSession, *, webhook_id: int, overlap: timedelta
) -> WebhookCreated:
    """Give a webhook a new secret; the one it replaces keeps signing beside it for
    `overlap`. A secret replaced by an earlier rotation stops signing at once."""
    webhook = await _locked(session, webhook_id)
    now = utcnow()
    if overlap > timedelta(0):
        webhook.previous_secret = webhook.secret
        webhook.previous_secret_expires_at = now + overlap
    else:
        webhook.previous_secret = None
        webhook.previous_secret_expires_at = None
    webhook.secret = new_secret()
    await session.flush()
    return _created(webhook)


async def list_webhooks(session: AsyncSession) -> list[WebhookRead]:
    webhooks = await session.scalars(select(Webhook).order_by(Webhook.id))
    now = utcnow()
    return [_read(webhook, now=now) for webhook in webhooks]


async def _webhook(session: AsyncSession, webhook_id: int) -> Webhook:
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound(f"No webhook {webhook_id}.")
    return webhook


async def get(session: AsyncSession, *, webhook_id: int) -> WebhookDetail:
    webhook = await _webhook(session, webhook_id)
    deliveries = await session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(50)
    )
    return WebhookDetail(
        **_read(webhook, now=utcnow()).model_dump(),
        deliveries=[DeliveryRead.model_validate(d, from_attributes=True) for d in deliveries],
    )


async def list_deliveries(
    session: AsyncSession,
    *,
    webhook_id: int,
    state: DeliveryState | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeliveryRead], str | None]:
    """A page of a webhook's deliveries, newest first, and the cursor of the next page."""
    await _webhook(session, webhook_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
    )
    if state is not None:
        query = query.where(WebhookDelivery.state == state.value)
    if cursor is not None:
        (after,) = decode_cursor(cursor, _position)
        query = query.where(WebhookDelivery.id < after)
    rows = list(await session.scalars(query.limit(limit + 1)))
    page = [DeliveryRead.model_validate(row, from_attributes=True) for row in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    return page, encode_cursor(rows[limit - 1].id)


_position = TypeAdapter(tuple[RowId])
"""A delivery list's sort key in its cursors: the delivery's number."""


def _delivery(
    webhook_id: int, *, event: str, data: dict[str, Any], now: datetime
) -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=str(uuid7()),
        webhook_id=webhook_id,
        event=event,
        payload={"event": event, "at": now.isoformat(), "data": data},
        state=DeliveryState.pending.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


async def enqueue(
    session: AsyncSession, *, event: EventType, payloads: Sequence[dict[str, Any]]
) -> None:
    """Queue one delivery per payload for every active webhook subscribed to `event`.

    A paused webhook gets nothing queued: resuming it does not bring back a flood of
    notifications about what happened meanwhile."""
    if not payloads:
        return
    webhooks = [
        webhook
        for webhook in await session.scalars(select(Webhook).where(Webhook.active))
        if event.value in webhook.events
    ]
    now = utcnow()
    session.add_all(
        _delivery(webhook.id, event=event.value, data=payload, now=now)
        for webhook in webhooks
        for payload in payloads
    )
    await session.flush()


async def ping(session: AsyncSession, *, webhook_id: int) -> DeliveryRead:
    """Queue a test notification (event `ping`) to a webhook, whatever events it receives;
    a paused webhook gets it once resumed."""
    webhook = await _webhook(session, webhook_id)
    delivery = _delivery(webhook.id, event=PING, data={"webhook": webhook.id}, now=utcnow())
    session.add(delivery)
    await session.flush()
    return DeliveryRead.model_validate(delivery, from_attributes=True)


async def redeliver(session: AsyncSession, *, webhook_id: int, number: int) -> DeliveryRead:
    """Queue a failed delivery again for one more attempt, under the same `webhook-id`, so
    that a receiver which did get it after all drops the repeat."""
    delivery = await session.scalar(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == number, WebhookDelivery.webhook_id == webhook_id)
        .with_for_update()
    )
    if delivery is None:
        raise NotFound(f"No delivery {number} of webhook {webhook_id}.")
    if delivery.state != DeliveryState.failed.value:
        raise Conflict(f"Delivery {number} is {delivery.state}: only a failed one is redelivered.")
    if delivery.payload.get("erased") is True:
        raise Conflict(f"Delivery {number} is about erased data: it is not sent again.")
    if delivery.attempts >= MOST_ATTEMPTS_EVER:
        raise Conflict(f"Delivery {number} was attempted {delivery.attempts} times already.")
    delivery.state = DeliveryState.pending.value
    delivery.next_attempt_at = utcnow()
    await session.flush()
    return DeliveryRead.model_validate(delivery, from_attributes=True)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    delivery_id: str
    event: str
    url: str
    secret: str
    keys: tuple[bytes, ...]
    """Every key that signs: the current secret's, and the replaced one's during its overlap."""
    body: bytes
    attempts: int
    """The attempt this is: the lease's token, since every claim counts one more."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None
    error: str | None
    """A short reason, never the receiver's answer nor the details of a network error."""


async def _claim(
    database: Database, *, now: datetime, due_by: datetime | None = None
) -> _Claimed | None:
    """Lease the oldest delivery due by `due_by` (by default `now`) to this sender, or None
    when none is due.

    One at a time: a lease taken for a batch would run out while the batch is still being
    sent, and another sender would send the rest again.
    """
    async with database.write_sessions() as session, session.begin():
        # PostgreSQL: a delivery another sender is claiming is skipped, not waited for.
        # SQLite: the write transaction already admits one claim at a time.
        due = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.state == "pending",
                WebhookDelivery.next_attempt_at <= (due_by or now),
                # A paused webhook's deliveries wait until it is resumed.
                WebhookDelivery.webhook_id.in_(select(Webhook.id).where(Webhook.active)),
            )
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
        delivery, webhook = (
            await session.execute(
                select(WebhookDelivery, Webhook)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.id == number)
            )
        ).one()
        keys = [signing_key(webhook.secret)]
        overlap_ends = webhook.previous_secret_expires_at
        if webhook.previous_secret is not None and overlap_ends is not None and overlap_ends > now:
            keys.append(signing_key(webhook.previous_secret))
        return _Claimed(
            id=delivery.id,
            delivery_id=delivery.delivery_id,
            event=delivery.event,
            url=webhook.url,
            secret=webhook.secret,
            keys=tuple(keys),
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
    timestamp = int(utcnow().timestamp())
    headers = {
        "content-type": "application/json",
        "x-mot-event": claimed.event,
        ID_HEADER: claimed.delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: standard_signature(
            claimed.keys, message_id=claimed.delivery_id, timestamp=timestamp, body=claimed.body
        ),
        DELIVERY_HEADER: claimed.delivery_id,
        SIGNATURE_HEADER: signature(claimed.secret, timestamp=timestamp, body=claimed.body),
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
    is sent; returns how many were attempted.

    Only what was due when the pass began: a failure whose jittered wait is a few
    milliseconds is retried by the next pass, not again and again by this one.
    """
    pass_began = utcnow()
    attempted = 0
    while attempted < CLAIM_BATCH:
        claimed = await _claim(database, now=utcnow(), due_by=pass_began)
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
