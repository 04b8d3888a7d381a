"""Idempotency keys (Stripe's semantics): the same key and the same request within a day
get the first answer again, and nothing is stored anew; the same key with another request
is refused.

A key belongs to the API key that sent it. While a request holds a key, a second request
with it cannot run alongside: on PostgreSQL it is refused at once (a transaction-scoped
advisory lock, taken without waiting); on SQLite a writing request holds the database's
write lock from its first statement, so the second waits and then finds the first answer.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.idempotency.models import IdempotencyKey

KEPT_FOR = timedelta(hours=24)
"""How long an answer is kept for retries (Stripe keeps them as long)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A request's hold on an idempotency key, until its transaction ends."""

    api_key_id: int
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    media_type: str | None
    body: str


def fingerprint(*, method: str, path: str, query: str, body: bytes) -> str:
    """SHA-256 of what makes two requests the same: method, path, query and body."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode()):
        digest.update(part + b"\n")
    digest.update(body)
    return digest.hexdigest()


def lock_number(api_key_id: int, key: str) -> int:
    """The advisory lock of one key of one API key: a signed 64-bit number."""
    digest = hashlib.sha256(f"idempotency:{api_key_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def try_hold(session: AsyncSession, claim: Claim) -> bool:
    """Take the key for this transaction; False if another request holds it now."""
    if session.get_bind().dialect.name != "postgresql":
        return True  # the write transaction has begun: it holds SQLite's write lock
    held = await session.scalar(
        select(func.pg_try_advisory_xact_lock(lock_number(claim.api_key_id, claim.key)))
    )
    return bool(held)


async def find(session: AsyncSession, claim: Claim, *, now: datetime) -> IdempotencyKey | None:
    """The answer kept for the key, if any and younger than `KEPT_FOR`; an older one is
    deleted on the way, so that the key starts afresh."""
    stored = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.api_key_id == claim.api_key_id, IdempotencyKey.key == claim.key
        )
    )
    if stored is not None and stored.created_at <= now - KEPT_FOR:
        await session.delete(stored)
        await session.flush()
        return None
    return stored


async def remember(
    session: AsyncSession, claim: Claim, *, answer: StoredAnswer, now: datetime
) -> None:
    """Keep the answer for the key, in the request's own transaction."""
    session.add(
        IdempotencyKey(
            api_key_id=claim.api_key_id,
            key=claim.key,
            fingerprint=claim.fingerprint,
            status_code=answer.status_code,
            media_type=answer.media_type,
            body=answer.body,
            created_at=now,
        )
    )
    await session.flush()


async def purge_expired(session: AsyncSession, *, now: datetime) -> int:
    """Delete the answers older than `KEPT_FOR`; returns how many."""
    gone = await session.scalars(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at <= now - KEPT_FOR)
        .returning(IdempotencyKey.id)
    )
    return len(gone.all())


async def forget_mentioning(session: AsyncSession, text: str) -> int:
    """Delete the answers whose body mentions `text` (an erased client's ref): a kept
    answer must not give back what an erasure removed. Matching more than the client's
    answers only costs those requests their protection against a retry."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    gone = await session.scalars(
        delete(IdempotencyKey)
        .where(IdempotencyKey.body.like(f"%{escaped}%", escape="\\"))
        .returning(IdempotencyKey.id)
    )
    return len(gone.all())
