"""Privacy: erasing a client on request, purging touchpoints past retention, the audit log.

Both remove touchpoints with everything that hangs off them: replaced ratings, survey
records, follow-ups and their steps, and the webhook notifications that name them. They
differ in the rollups: an erasure takes the client's touchpoints off the counts (no figure
may remember the client), a purge leaves the counts alone (they name no one, and rankings
over old periods must not change because raw data aged out).
"""

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from psycopg.errors import DeadlockDetected, LockNotAvailable
from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, CursorResult, Executable, and_, exists, func, or_, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, utcnow
from app.followups.models import FollowUp, FollowUpEvent
from app.followups.service import SETTLED
from app.idempotency import service as idempotency_service
from app.keys.models import ApiKey
from app.pagination import RowId, decode_cursor, encode_cursor
from app.privacy.models import AuditEntry
from app.privacy.schemas import AuditAction, AuditEntryRead, ErasureRead, RemovedCounts
from app.rollups import details as rollup_details
from app.rollups import service as rollups
from app.surveys.models import Survey
from app.touchpoints import bulk, partitions
from app.touchpoints import service as touchpoints_service
from app.touchpoints.models import RatingHistory, Touchpoint
from app.webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)

_CLIENT_REF = b"mot-client-ref-v1:"
ERASED_PAYLOAD: dict[str, Any] = {"erased": True}
"""What a sent webhook notification keeps of its payload once its subject is removed."""
PURGE_CHUNK = 1000
"""Touchpoints purged per transaction: large enough to go fast, small enough that no lock
is held for long and an interrupted purge loses little."""


def client_hash(client_ref: str, *, key: bytes) -> str:
    """Hex HMAC-SHA256 of a client ref under the service secret: how the audit log names a
    client. Keyed, so that refs cannot be tried against the log without the secret; with a
    purpose prefix of its own, so that it never equals the signature of a page token."""
    return hmac.new(key, _CLIENT_REF + client_ref.encode(), hashlib.sha256).hexdigest()


# --- removing touchpoints and everything about them ---


@dataclass(frozen=True, slots=True)
class _Kind:
    """Rows of one kind that go with the selected touchpoints, and how they go."""

    name: str
    model: Any
    rows: ColumnElement[bool]
    removal: Executable


def _kinds(which: ColumnElement[bool]) -> list[_Kind]:
    """Every kind of row about the touchpoints `which` selects, dependants first: each is
    found through rows removed after it."""
    touchpoint_ids = select(Touchpoint.id).where(which)
    follow_up_ids = select(FollowUp.id).where(FollowUp.touchpoint_id.in_(touchpoint_ids))
    payload = WebhookDelivery.payload
    concerning = or_(
        payload[("data", "touchpoint")]
        .as_string()
        .in_(select(Touchpoint.external_id).where(which)),
        payload[("data", "follow_up")].as_integer().in_(follow_up_ids),
    )
    # Not yet sent: deleted, so that no receiver learns of data that is gone. Sent (or
    # given up): the record of the delivery stays, its payload does not.
    pending = and_(concerning, WebhookDelivery.state == "pending")
    sent = and_(concerning, WebhookDelivery.state != "pending")
    owned = [
        ("follow_up_events", FollowUpEvent, FollowUpEvent.follow_up_id.in_(follow_up_ids)),
        ("follow_ups", FollowUp, FollowUp.touchpoint_id.in_(touchpoint_ids)),
        ("surveys", Survey, Survey.touchpoint_id.in_(touchpoint_ids)),
        ("rating_history", RatingHistory, RatingHistory.touchpoint_id.in_(touchpoint_ids)),
    ]
    return [
        _Kind(
            "webhook_deliveries",
            WebhookDelivery,
            pending,
            sql_delete(WebhookDelivery).where(pending),
        ),
        _Kind(
            "webhook_payloads_scrubbed",
            WebhookDelivery,
            sent,
            sql_update(WebhookDelivery).where(sent).values(payload=ERASED_PAYLOAD),
        ),
        *(_Kind(name, model, rows, sql_delete(model).where(rows)) for name, model, rows in owned),
        # Last, and saying what went: an erasure takes exactly these off the counts.
        _Kind(
            "touchpoints",
            Touchpoint,
            which,
            sql_delete(Touchpoint).where(which).returning(*touchpoints_service.FACT_COLUMNS),
        ),
    ]


async def _count(session: AsyncSession, model: Any, *conditions: ColumnElement[bool]) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
    )


async def _remove(
    session: AsyncSession,
    which: ColumnElement[bool],
    *,
    dry_run: bool = False,
    removed: list[rollups.Facts] | None = None,
    partition_drop: bool = False,
) -> RemovedCounts:
    """Delete the touchpoints `which` selects and everything about them; dry, count them.

    The counted facts of the touchpoints deleted are added to `removed`, if given: taken
    from the deletion itself, so that what is subtracted is exactly what was deleted.
    `partition_drop` leaves the touchpoints themselves (only counted) to the dropping of
    their partition, which follows in the same transaction.
    """
    counts = {"comments": await _count(session, Touchpoint, which, Touchpoint.comment.is_not(None))}
    if not dry_run:
        await bulk.forget(session, select(Touchpoint.external_id).where(which))
    for kind in _kinds(which):
        if dry_run or (partition_drop and kind.model is Touchpoint):
            counts[kind.name] = await _count(session, kind.model, kind.rows)
            continue
        result = await session.execute(kind.removal.execution_options(synchronize_session=False))
        if kind.model is not Touchpoint:
            counts[kind.name] = cast(CursorResult[Any], result).rowcount
            continue
        gone = [rollups.Facts(**row._asdict()) for row in result.all()]
        counts[kind.name] = len(gone)
        if removed is not None:
            removed.extend(gone)
    return RemovedCounts(**counts)


# --- erasure ---


async def erase_client(
    session: AsyncSession, *, client_ref: str, key: bytes, by: ApiKey
) -> ErasureRead:
    """Erase everything stored about one client, take it off the rollups, and record the
    erasure in the audit log under the ref's keyed hash.

    A client with nothing stored is erased all the same (zero counts, an audit entry), so
    that a request can be retried safely.
    """
    # The client's touchpoints are locked first and then named by number: every statement
    # below removes the same rows, however many of the client's touchpoints are committed
    # meanwhile (those are not erased; a retry erases them). A rating arriving meanwhile
    # waits, then finds its touchpoint gone.
    locked = await session.scalars(
        select(Touchpoint.id)
        .where(Touchpoint.client_ref == client_ref)
        .order_by(Touchpoint.id)
        .with_for_update()
    )
    facts: list[rollups.Facts] = []
    erased = await _remove(session, Touchpoint.id.in_(list(locked)), removed=facts)
    await rollups.record(
        session, rollups.added(facts, times=-1), rollup_details.added(facts, times=-1)
    )
    # Answers kept for retries quote the client (a touchpoint's ref, its comment).
    await idempotency_service.forget_mentioning(session, json.dumps(client_ref)[1:-1])
    hashed = client_hash(client_ref, key=key)
    entry = await _record(
        session, action=AuditAction.erasure, counts=erased, client_hash=hashed, by=by
    )
    return ErasureRead(erased=erased, client_hash=hashed, audit_entry=entry.id)


# --- retention ---


def retention_cutoff(now: datetime, *, days: int) -> datetime:
    """Touchpoints that occurred before this are past retention: UTC midnight `days` days
    ago. Whole days go, so a day's rollup row is either recountable or wholly kept, and
    every touchpoint is kept at least `days` days."""
    day = (now.astimezone(UTC) - timedelta(days=days)).date()
    return datetime.combine(day, time(0), tzinfo=UTC)


def _open_follow_up() -> ColumnElement[bool]:
    return exists().where(FollowUp.touchpoint_id == Touchpoint.id, FollowUp.status.not_in(SETTLED))


def _purgeable(occurred_before: datetime) -> ColumnElement[bool]:
    # A client with an open problem must always be able to see where it stands: its
    # touchpoint stays until the follow-up is resolved or closed.
    return and_(Touchpoint.occurred_at < occurred_before, ~_open_follow_up())


@dataclass(frozen=True, slots=True)
class PurgeReport:
    occurred_before: datetime
    removed: RemovedCounts
    kept_open: int
    """Touchpoints past retention kept because their follow-up is still open."""
    audit_entry: int | None
    """None for a dry run."""


async def purge(
    database: Database,
    *,
    occurred_before: datetime,
    chunk_size: int = PURGE_CHUNK,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PurgeReport:
    """Delete the touchpoints that occurred before `occurred_before` and everything about
    them, except those with an open follow-up; the rollups keep their counts.

    On PostgreSQL each month wholly past retention goes first, its partition dropped (a
    partition in use goes row by row instead). Then each chunk of `chunk_size`
    touchpoints is a transaction of its own. Each transaction also adds its counts to the
    purge's audit entry: whatever was committed is always on record. Dry,
    only counts what would go. `progress(deleted, total)` is told of the touchpoints
    deleted, at the start and after each chunk; the total is counted at the start
    (follow-ups settled since may add to it).
    """
    if dry_run:
        async with database.read_sessions() as session:
            removed = await _remove(session, _purgeable(occurred_before), dry_run=True)
            kept = await _kept_open(session, occurred_before)
        return PurgeReport(occurred_before, removed, kept, None)
    removed = RemovedCounts()
    entry_id: int | None = None
    total = 0
    async with database.read_sessions() as session:
        if progress is not None:
            total = await _count(session, Touchpoint, _purgeable(occurred_before))
            progress(0, total)
        past = [
            partition
            for partition in await partitions.monthly_partitions(session)
            if partition.end <= occurred_before
        ]
    for partition in past:
        try:
            async with database.write_sessions() as session, session.begin():
                chunk = await _purge_partition(session, partition)
                entry = await _add_to_purge_entry(
                    session, entry_id=entry_id, occurred_before=occurred_before, counts=chunk
                )
        except DBAPIError as error:
            if not isinstance(error.orig, LockNotAvailable | DeadlockDetected):
                raise
            logger.warning(
                "partition %s is busy: its touchpoints are purged row by row", partition.name
            )
            continue
        entry_id = entry
        removed = removed.plus(chunk)
        if progress is not None:
            total = max(total, removed.touchpoints)
            progress(removed.touchpoints, total)
    done = False
    while not done:
        async with database.write_sessions() as session, session.begin():
            chunk, done = await _purge_chunk(
                session, occurred_before=occurred_before, limit=chunk_size
            )
            entry_id = await _add_to_purge_entry(
                session, entry_id=entry_id, occurred_before=occurred_before, counts=chunk
            )
        removed = removed.plus(chunk)
        if progress is not None:
            total = max(total, removed.touchpoints)
            progress(removed.touchpoints, total)
    async with database.read_sessions() as session:
        kept = await _kept_open(session, occurred_before)
    return PurgeReport(occurred_before, removed, kept, entry_id)


async def _purge_partition(
    session: AsyncSession, partition: partitions.MonthPartition
) -> RemovedCounts:
    """Purge a month wholly past retention by dropping its partition, everything about its
    touchpoints deleted first; those with an open follow-up move to the default partition,
    to be purged row by row once it is settled."""
    await partitions.lock_for_drop(session, partition)
    in_month = and_(
        Touchpoint.occurred_at >= partition.start, Touchpoint.occurred_at < partition.end
    )
    # Locked, then read: a follow-up cannot reopen between the reading and the drop.
    statuses = await session.execute(
        select(FollowUp.touchpoint_id, FollowUp.status)
        .where(FollowUp.touchpoint_id.in_(select(Touchpoint.id).where(in_month)))
        .order_by(FollowUp.id)
        .with_for_update()
    )
    kept = sorted(touchpoint for touchpoint, status in statuses.all() if status not in SETTLED)
    which = and_(in_month, Touchpoint.id.not_in(kept)) if kept else in_month
    removed = await _remove(session, which, partition_drop=True)
    await partitions.drop(session, partition, keep=kept)
    return removed


async def _purge_chunk(
    session: AsyncSession, *, occurred_before: datetime, limit: int
) -> tuple[RemovedCounts, bool]:
    """Purge up to `limit` touchpoints, oldest first; True when none are left after them."""
    chosen = list(
        await session.scalars(
            select(Touchpoint.id)
            .where(_purgeable(occurred_before))
            .order_by(Touchpoint.occurred_at, Touchpoint.id)
            .limit(limit)
            .with_for_update()
        )
    )
    if not chosen:
        return RemovedCounts(), True
    # A follow-up reopened since the touchpoints were chosen keeps its touchpoint: the
    # follow-ups are locked, then their status read again.
    statuses = await session.execute(
        select(FollowUp.touchpoint_id, FollowUp.status)
        .where(FollowUp.touchpoint_id.in_(chosen))
        .order_by(FollowUp.id)
        .with_for_update()
    )
    reopened = {touchpoint for touchpoint, status in statuses.all() if status not in SETTLED}
    ids = [touchpoint for touchpoint in chosen if touchpoint not in reopened]
    removed = await _remove(session, Touchpoint.id.in_(ids)) if ids else RemovedCounts()
    return removed, len(chosen) < limit


async def _add_to_purge_entry(
    session: AsyncSession,
    *,
    entry_id: int | None,
    occurred_before: datetime,
    counts: RemovedCounts,
) -> int:
    if entry_id is None:
        entry = await _record(
            session, action=AuditAction.purge, counts=counts, occurred_before=occurred_before
        )
        return entry.id
    entry = await session.get_one(AuditEntry, entry_id, with_for_update=True)
    entry.counts = RemovedCounts.model_validate(entry.counts).plus(counts).model_dump()
    await session.flush()
    return entry.id


async def _kept_open(session: AsyncSession, occurred_before: datetime) -> int:
    return await _count(
        session, Touchpoint, Touchpoint.occurred_at < occurred_before, _open_follow_up()
    )


async def purged_until(session: AsyncSession) -> date | None:
    """The first UTC day no purge has touched; None if nothing was ever purged.

    Rollups of earlier days outlive their touchpoints, so a rebuild must not recount them.
    """
    latest = await session.scalar(
        select(func.max(AuditEntry.occurred_before)).where(
            AuditEntry.action == AuditAction.purge.value
        )
    )
    if latest is None:
        return None
    day = latest.astimezone(UTC).date()
    return day if latest.astimezone(UTC).time() == time(0) else day + timedelta(days=1)


# --- the audit log ---


async def _record(
    session: AsyncSession,
    *,
    action: AuditAction,
    counts: RemovedCounts,
    client_hash: str | None = None,
    by: ApiKey | None = None,
    occurred_before: datetime | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        at=utcnow(),
        action=action.value,
        client_hash=client_hash,
        key_id=by.id if by else None,
        key_prefix=by.prefix if by else None,
        occurred_before=occurred_before,
        counts=counts.model_dump(),
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_entries(
    session: AsyncSession,
    *,
    action: AuditAction | None,
    client_hash: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[AuditEntryRead], str | None]:
    """One page of the audit log, newest first; the cursor is the last entry's number."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if action is not None:
        query = query.where(AuditEntry.action == action.value)
    if client_hash is not None:
        query = query.where(AuditEntry.client_hash == client_hash)
    if cursor is not None:
        (after_id,) = decode_cursor(cursor, _position)
        query = query.where(AuditEntry.id < after_id)
    rows: Sequence[AuditEntry] = (await session.scalars(query.limit(limit + 1))).all()
    page = [AuditEntryRead.model_validate(row, from_attributes=True) for row in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    return page, encode_cursor(rows[limit - 1].id)


_position = TypeAdapter(tuple[RowId])
"""The log's sort key in its cursors: the entry's number."""
