"""API keys: creation (the only moment a key is seen), lookup by hash, revocation."""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, utcnow
from app.errors import Conflict, NotFound
from app.keys.models import ApiKey
from app.keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Scope

KEY_MARK = "mot_"
PREFIX_LENGTH = 12
MIN_KEY_LENGTH = 32
# Writing the last-used time on every request would turn every read into a write; once a
# minute is precise enough to tell a live key from a forgotten one.
LAST_USED_PRECISION = timedelta(minutes=1)
BOOTSTRAP_LOCK = 0x6D6F74_02
"""The PostgreSQL advisory lock held while deciding whether to create the first key."""


def generate_key() -> str:
    """A new key: a recognisable mark and 256 bits of randomness."""
    return KEY_MARK + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """SHA-256 of the key.

    A slow password hash is not needed: generated keys carry 256 random bits and operator
    supplied ones at least 32 characters, far beyond guessing; a fast hash keeps the lookup
    one indexed query per request.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def grants(key: ApiKey, scope: Scope) -> bool:
    """Whether the key may act in `scope`; `admin` may do everything."""
    return Scope.admin in key.scopes or scope in key.scopes


async def create(
    session: AsyncSession, *, data: ApiKeyCreate, key: str | None = None
) -> ApiKeyCreated:
    """Store a new key (generated unless given) and return it, in clear, this once."""
    key = key or generate_key()
    row = ApiKey(
        name=data.name,
        prefix=key[:PREFIX_LENGTH],
        secret_hash=hash_key(key),
        scopes=sorted(set(data.scopes)),
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return ApiKeyCreated(
        **ApiKeyRead.model_validate(row, from_attributes=True).model_dump(), key=key
    )


async def authenticate(session: AsyncSession, *, key_hash: str) -> ApiKey | None:
    """The active key whose value has this hash (`hash_key`), if any."""
    return await session.scalar(
        select(ApiKey).where(ApiKey.secret_hash == key_hash, ApiKey.revoked_at.is_(None))
    )


async def active(session: AsyncSession, key_id: int) -> ApiKey | None:
    """The key with this id, unless it was revoked."""
    return await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    )


async def record_use(database: Database, *, key_id: int, now: datetime) -> None:
    """Note that the key was used, unless that was already noted within the last minute.

    In a transaction of its own, so that a read-only request stays read-only until then and
    a failed request still counts as a use.
    """
    async with database.write_sessions() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(
                    ApiKey.last_used_at.is_(None),
                    ApiKey.last_used_at < now - LAST_USED_PRECISION,
                ),
            )
            .values(last_used_at=now)
        )


def needs_use_recorded(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or last_used_at < now - LAST_USED_PRECISION


async def list_keys(session: AsyncSession, *, include_revoked: bool) -> list[ApiKeyRead]:
    """Every key, oldest first; revoked ones only when asked."""
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    rows = await session.scalars(query)
    return [ApiKeyRead.model_validate(row, from_attributes=True) for row in rows]


async def revoke(session: AsyncSession, *, key_id: int) -> ApiKeyRead:
    """Revoke a key for good; refused for the last active admin key (it would lock everyone
    out of key management)."""
    row = await session.get(ApiKey, key_id, with_for_update=True)
    if row is None:
        raise NotFound(f"No API key {key_id}.")
    if row.revoked_at is None:
        if Scope.admin in row.scopes and await _active_admins(session) <= 1:
            raise Conflict(
                "This is the last active admin key; create another admin key before revoking it."
            )
        row.revoked_at = utcnow()
        await session.flush()
    return ApiKeyRead.model_validate(row, from_attributes=True)


async def _active_admins(session: AsyncSession) -> int:
    active = await session.scalars(select(ApiKey.scopes).where(ApiKey.revoked_at.is_(None)))
    return sum(1 for scopes in active if Scope.admin in scopes)


async def has_any(session: AsyncSession) -> bool:
    """Whether any key, active or revoked, was ever created."""
    return bool(await session.scalar(select(func.count()).select_from(ApiKey)))


async def bootstrap(database: Database, *, key: str | None) -> ApiKeyCreated | None:
    """On a database without keys, create the first admin key (the given one, else a new
    one) so that a fresh install can be used at once; None when keys already exist."""
    async with database.write_sessions() as session, session.begin():
        # Replicas starting together would each find no key and each create one (the same
        # configured key: one of them fails on its hash and exits). One at a time, the
        # others find the first key. SQLite's write transactions are one at a time already.
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(select(func.pg_advisory_xact_lock(BOOTSTRAP_LOCK)))
        if await has_any(session):
            return None
        return await create(
            session, data=ApiKeyCreate(name="bootstrap", scopes=[Scope.admin]), key=key
        )
