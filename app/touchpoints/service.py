"""Touchpoints: idempotent ingestion (single and batch), reading, and late ratings."""

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from uuid_utils import uuid7

from app import metrics
from app.db import utcnow
from app.errors import ErrorDetail, NotFound, ValidationFailed, details_from_validation_error
from app.followups import service as followups_service
from app.followups.targets import Targets
from app.followups.workflow import FollowUpReason
from app.inputs import Timestamp, with_nul_check
from app.moments import factors as moment_factors
from app.moments import service as moments_service
from app.moments.models import Moment
from app.pagination import RowId, decode_cursor, encode_cursor
from app.rollups import details as rollup_details
from app.rollups import service as rollups
from app.scales import Sentiment, normalise
from app.touchpoints import bulk
from app.touchpoints.bulk import TouchpointRow
from app.touchpoints.models import RatingHistory, Touchpoint
from app.touchpoints.schemas import (
    BatchItemError,
    ItemStatus,
    PastRating,
    RatingRead,
    RatingUpdate,
    TouchpointCreate,
    TouchpointDetail,
    TouchpointRead,
)
from app.webhooks import service as webhooks_service
from app.webhooks.schemas import EventType

_create_adapter = TypeAdapter(TouchpointCreate)
_batch_adapter = TypeAdapter(list[TouchpointCreate])
_checked_adapter: TypeAdapter[TouchpointCreate] = TypeAdapter(with_nul_check(TouchpointCreate))


@dataclass(frozen=True, slots=True)
class _Candidate:
    index: int
    external_id: str
    content_hash: str
    item: TouchpointCreate


class ItemOutcome(NamedTuple):
    position: int
    external_id: str
    status: ItemStatus


@dataclass(slots=True)
class IngestReport:
    results: list[ItemOutcome] = field(default_factory=list)
    errors: list[BatchItemError] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(outcome.status is ItemStatus.created for outcome in self.results)

    @property
    def duplicates(self) -> int:
        return len(self.results) - self.created

    def as_json(self) -> bytes:
        """The batch response (schema: `BatchResult`), rendered directly.

        A batch answers for up to thousands of items: building and validating a model
        object per item would cost more than storing them.
        """
        body = {
            "accepted": self.created,
            "duplicates": self.duplicates,
            "rejected": len(self.errors),
            "items": [
                {"index": position, "id": external_id, "status": status.value}
                for position, external_id, status in sorted(self.results)
            ],
            "errors": [
                error.model_dump(mode="json")
                for error in sorted(self.errors, key=lambda error: error.index)
            ],
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(item: TouchpointCreate) -> str:
    """Fingerprint of what the caller posted, to tell a retry from a different post.

    The validated item serialises canonically: fields in schema order, timestamps in
    UTC and attributes sorted by key.
    """
    return hashlib.sha256(item.model_dump_json(exclude={"id"}).encode()).hexdigest()


def _factor_errors(
    picked: Sequence[str], sentiment: Sentiment, offers: dict[str, Sentiment], *, at: str
) -> list[ErrorDetail]:
    """What is wrong with the factors an answer picked, relative to the item: keys the
    moment does not offer, or offers with answers of another sentiment."""
    return [
        ErrorDetail(
            field=f"{at}.{list(picked).index(key)}",
            message=f"'{key}': {reason}",
            type="unknown_factor" if reason == moment_factors.NOT_OFFERED else "other_sentiment",
        )
        for key, reason in moment_factors.misfits(picked, sentiment, offers)
    ]


def validate_items(
    raw_items: Sequence[Any], *, may_hold_nul: bool = True
) -> tuple[list[tuple[int, TouchpointCreate]], IngestReport]:
    """Validate raw batch items; invalid ones are reported one by one, the others kept.

    `may_hold_nul=False` says that the caller found no NUL character in the whole body:
    the items are then validated without a NUL check on each field, and in one call
    unless some item is invalid.
    """
    report = IngestReport()
    if not may_hold_nul:
        try:
            return list(enumerate(_batch_adapter.validate_python(raw_items))), report
        except ValidationError:
            pass  # item by item, to keep the good ones and report each bad one
    adapter = _checked_adapter if may_hold_nul else _create_adapter
    valid: list[tuple[int, TouchpointCreate]] = []
    for index, raw in enumerate(raw_items):
        try:
            valid.append((index, adapter.validate_python(raw)))
        except ValidationError as error:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            report.errors.append(
                BatchItemError(
                    index=index,
                    id=raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None,
                    code="validation_failed",
                    message="The item is not a valid touchpoint.",
                    details=details_from_validation_error(error),
                )
            )
    return valid, report


async def ingest(
    session: AsyncSession,
    *,
    items: Sequence[tuple[int, TouchpointCreate]],
    register_unknown_moments: bool,
    default_target: float | None,
    follow_up_targets: Targets,
    report: IngestReport | None = None,
) -> IngestReport:
    """Store new touchpoints, recognise retries, and report every item's outcome.

    An item whose id is already stored with the same content is a duplicate (stored
    nothing); with different content it is refused as a conflict. Good items are stored
    whatever happens to the others.
    """
    report = report if report is not None else IngestReport()
    candidates = _deduplicate_within_request(items, report)
    stored_hashes = await bulk.stored_hashes(session, [c.external_id for c in candidates])
    fresh = [c for c in candidates if c.external_id not in stored_hashes]
    _classify_stored(candidates, stored_hashes, report)

    channels: dict[str, str | None] = {}
    for candidate in fresh:
        if channels.get(candidate.item.moment) is None:
            channels[candidate.item.moment] = candidate.item.channel
    moments = await moments_service.resolve_keys(
        session,
        channels=channels,
        register_unknown=register_unknown_moments,
        default_target=default_target,
    )
    received_at = utcnow()
    rows = []
    staged: list[_Candidate] = []
    for candidate in fresh:
        moment = moments.get(candidate.item.moment)
        if moment is None:
            report.errors.append(_unknown_moment_error(candidate))
            continue
        rating = candidate.item.rating
        if rating is not None and rating.factors:
            sentiment = normalise(rating.scale, rating.value).sentiment
            offers = moment.offered_factors()
            wrong = _factor_errors(rating.factors, sentiment, offers, at="rating.factors")
            if wrong:
                report.errors.append(_factor_error(candidate, wrong))
                continue
        rows.append(
            stored_row(
                candidate.item,
                external_id=candidate.external_id,
                content_hash=candidate.content_hash,
                moment_id=moment.id,
                default_channel=moment.channel,
                received_at=received_at,
            )
        )
        staged.append(candidate)

    created = await bulk.insert_new(session, rows)
    stored = [row for row in rows if row.external_id in created]
    await rollups.record(session, rollups.added(stored), rollup_details.added(stored))
    moment_keys = {moment.id: key for key, moment in moments.items()}
    await webhooks_service.enqueue(
        session,
        event=EventType.rating_negative,
        payloads=[
            _negative_rating(
                row.external_id, moment_keys[row.moment_id], row.rating_scale, row.rating_value
            )
            for row in stored
            if _is_negative(row)
        ],
    )
    await followups_service.open_for(
        session,
        [bad for row in stored if (bad := _bad(row, created[row.external_id]))],
        targets=follow_up_targets,
    )
    report.results.extend(
        _result(c, ItemStatus.created) for c in staged if c.external_id in created
    )
    # Ids a concurrent request stored between our check and our insert.
    raced = [c for c in staged if c.external_id not in created]
    if raced:
        hashes = await bulk.stored_hashes(session, [c.external_id for c in raced])
        _classify_stored(raced, hashes, report)
    _count_outcomes(session, report)
    return report


def _count_outcomes(session: AsyncSession, report: IngestReport) -> None:
    """Stored touchpoints count once their transaction commits; the other outcomes store
    nothing and count at once (a refused single post rolls back, and was still refused)."""
    counter = metrics.TOUCHPOINTS_INGESTED
    metrics.count_on_commit(session, counter.labels("created"), report.created)
    refused = Counter("conflict" if e.code == "conflict" else "invalid" for e in report.errors)
    for outcome, count in [("duplicate", report.duplicates), *refused.items()]:
        if count:
            counter.labels(outcome).inc(count)


def _classify_stored(
    candidates: Sequence[_Candidate], stored_hashes: dict[str, str], report: IngestReport
) -> None:
    """Report candidates whose id is already stored: a retry, or a conflicting reuse."""
    for candidate in candidates:
        stored = stored_hashes.get(candidate.external_id)
        if stored is None:
            continue
        if stored == candidate.content_hash:
            report.results.append(_result(candidate, ItemStatus.duplicate))
        else:
            report.errors.append(_conflict_error(candidate))


def _deduplicate_within_request(
    items: Sequence[tuple[int, TouchpointCreate]], report: IngestReport
) -> list[_Candidate]:
    first_by_id: dict[str, _Candidate] = {}
    candidates = []
    for index, item in items:
        candidate = _Candidate(index, item.id or str(uuid7()), content_hash(item), item)
        earlier = first_by_id.get(candidate.external_id)
        if earlier is None:
            first_by_id[candidate.external_id] = candidate
            candidates.append(candidate)
        elif earlier.content_hash == candidate.content_hash:
            report.results.append(_result(candidate, ItemStatus.duplicate))
        else:
            report.errors.append(_conflict_error(candidate))
    return candidates


def stored_row(
    item: TouchpointCreate,
    *,
    external_id: str,
    content_hash: str,
    moment_id: int,
    default_channel: str,
    received_at: datetime,
) -> TouchpointRow:
    """The row a validated item is stored as."""
    rating = normalise(item.rating.scale, item.rating.value) if item.rating else None
    return TouchpointRow(
        external_id,
        content_hash,
        moment_id,
        item.channel or default_channel,
        item.occurred_at or received_at,
        received_at,
        item.client_ref,
        item.team,
        item.agent,
        item.source,
        rating.scale.value if rating else None,
        rating.value if rating else None,
        rating.score if rating else None,
        rating.sentiment.value if rating else None,
        received_at if rating else None,
        item.comment,
        item.complaint,
        item.attributes,
        (item.rating.factors or None) if item.rating else None,
        item.rating.lost_minutes if item.rating else None,
    )


FACT_COLUMNS = (
    Touchpoint.moment_id,
    Touchpoint.occurred_at,
    Touchpoint.channel,
    Touchpoint.team,
    Touchpoint.agent,
    Touchpoint.complaint,
    Touchpoint.rating_scale,
    Touchpoint.rating_value,
    Touchpoint.factors,
    Touchpoint.lost_minutes,
)
"""The columns of a stored touchpoint that the counts need, in `rollups.Facts` order."""


def facts_of(touchpoint: Touchpoint) -> rollups.Facts:
    """What the counts need of a stored (loaded) touchpoint."""
    return rollups.Facts(*(getattr(touchpoint, column.key) for column in FACT_COLUMNS))


def _is_negative(row: TouchpointRow) -> bool:
    # The member itself: it equals its text, and `.value` is a descriptor call per item.
    return row.sentiment == Sentiment.negative


def _negative_rating(
    external_id: str, moment: str | None, scale: str | None, value: int | None
) -> dict[str, Any]:
    """The data of a `rating.negative` webhook event."""
    return {"touchpoint": external_id, "moment": moment, "scale": scale, "value": value}


def _bad(row: TouchpointRow, row_id: int | None) -> followups_service.BadExperience | None:
    """A stored row that calls for a follow-up: a complaint, or a negative rating."""
    if row.complaint:
        reason = FollowUpReason.complaint
    elif _is_negative(row):
        reason = FollowUpReason.negative_rating
    else:
        return None
    stored = (
        None
        if row_id is None
        else followups_service.StoredTouchpoint(row_id, row.moment_id, row.team)
    )
    return followups_service.BadExperience(row.external_id, reason, stored)


def _result(candidate: _Candidate, status: ItemStatus) -> ItemOutcome:
    return ItemOutcome(candidate.index, candidate.external_id, status)


def _conflict_error(candidate: _Candidate) -> BatchItemError:
    return BatchItemError(
        index=candidate.index,
        id=candidate.external_id,
        code="conflict",
        message=f"Touchpoint '{candidate.external_id}' was already posted with different "
        "content; an id may be reused only to retry the same post.",
        details=[
            ErrorDetail(field="id", message="already used for other content", type="conflict")
        ],
    )


def _factor_error(candidate: _Candidate, details: list[ErrorDetail]) -> BatchItemError:
    return BatchItemError(
        index=candidate.index,
        id=candidate.external_id,
        code="validation_failed",
        message="The rating picks factors its moment does not offer with answers of its "
        "sentiment: " + "; ".join(detail.message for detail in details) + ".",
        details=details,
    )


def _unknown_moment_error(candidate: _Candidate) -> BatchItemError:
    key = candidate.item.moment
    return BatchItemError(
        index=candidate.index,
        id=candidate.external_id,
        code="validation_failed",
        message=f"Unknown moment '{key}': catalogue it with POST /v1/moments first "
        "(automatic registration is switched off).",
        details=[ErrorDetail(field="moment", message="unknown moment", type="unknown_moment")],
    )


def _read_query() -> Select[Touchpoint, str]:
    return select(Touchpoint, Moment.key).join(Moment, Touchpoint.moment_id == Moment.id)


def to_read(touchpoint: Touchpoint, moment_key: str) -> TouchpointRead:
    return TouchpointRead(**_read_fields(touchpoint, moment_key))


def _read_fields(touchpoint: Touchpoint, moment_key: str) -> dict[str, Any]:
    rating = None
    if touchpoint.rating_scale is not None:
        rating = RatingRead.model_validate(
            {
                "scale": touchpoint.rating_scale,
                "value": touchpoint.rating_value,
                "score": touchpoint.score,
                "sentiment": touchpoint.sentiment,
                "rated_at": touchpoint.rated_at,
                "factors": touchpoint.factors,
                "lost_minutes": touchpoint.lost_minutes,
            }
        )
    return {
        "id": touchpoint.external_id,
        "moment": moment_key,
        "channel": touchpoint.channel,
        "occurred_at": touchpoint.occurred_at,
        "received_at": touchpoint.received_at,
        "client_ref": touchpoint.client_ref,
        "team": touchpoint.team,
        "agent": touchpoint.agent,
        "source": touchpoint.source,
        "rating": rating,
        "comment": touchpoint.comment,
        "complaint": touchpoint.complaint,
        "attributes": touchpoint.attributes,
    }


async def get_touchpoint(session: AsyncSession, *, external_id: str) -> TouchpointDetail:
    """One touchpoint with its rating history."""
    query = (
        _read_query()
        .where(Touchpoint.external_id == external_id)
        .options(selectinload(Touchpoint.rating_history))
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise NotFound(f"No touchpoint with id '{external_id}'.")
    touchpoint, moment_key = row
    history = [
        PastRating.model_validate(past, from_attributes=True) for past in touchpoint.rating_history
    ]
    return TouchpointDetail(**_read_fields(touchpoint, moment_key), rating_history=history)


@dataclass(frozen=True, slots=True)
class TouchpointFilter:
    moment: str | None = None
    channel: str | None = None
    team: str | None = None
    client_ref: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    has_rating: bool | None = None
    sentiment: Sentiment | None = None


async def list_touchpoints(
    session: AsyncSession,
    *,
    filters: TouchpointFilter,
    cursor: str | None,
    limit: int,
    oldest_first: bool = False,
) -> tuple[list[TouchpointRead], str | None]:
    """One page, newest (or oldest) first; the cursor is the (occurred_at, id) of its last row."""
    query = list_query(filters, cursor=cursor, limit=limit, oldest_first=oldest_first)
    rows = (await session.execute(query)).all()
    page = [to_read(touchpoint, key) for touchpoint, key in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = rows[limit - 1][0]
    return page, encode_cursor(last.occurred_at.isoformat(), last.id)


def list_query(
    filters: TouchpointFilter, *, cursor: str | None, limit: int, oldest_first: bool = False
) -> Select[Touchpoint, str]:
    """The statement of one page of `list_touchpoints`, with one row more to tell whether
    another page follows."""
    if oldest_first:
        query = _read_query().order_by(Touchpoint.occurred_at, Touchpoint.id)
    else:
        query = _read_query().order_by(Touchpoint.occurred_at.desc(), Touchpoint.id.desc())
    if filters.moment is not None:
        query = query.where(Moment.key == filters.moment)
    if filters.channel is not None:
        query = query.where(Touchpoint.channel == filters.channel)
    if filters.team is not None:
        query = query.where(Touchpoint.team == filters.team)
    if filters.client_ref is not None:
        query = query.where(Touchpoint.client_ref == filters.client_ref)
    if filters.occurred_from is not None:
        query = query.where(Touchpoint.occurred_at >= filters.occurred_from)
    if filters.occurred_to is not None:
        query = query.where(Touchpoint.occurred_at < filters.occurred_to)
    if filters.has_rating is not None:
        rated = Touchpoint.rating_scale.is_not(None)
        query = query.where(rated if filters.has_rating else ~rated)
    if filters.sentiment is not None:
        query = query.where(Touchpoint.sentiment == filters.sentiment.value)
    if cursor is not None:
        position = decode_cursor(cursor, _position)
        key = tuple_(Touchpoint.occurred_at, Touchpoint.id)
        query = query.where(key > position if oldest_first else key < position)
    return query.limit(limit + 1)


_position = TypeAdapter(tuple[Timestamp, RowId])
"""A list's sort key in its cursors: `occurred_at` and the row's number."""


async def rate(
    session: AsyncSession, *, external_id: str, rating: RatingUpdate, follow_up_targets: Targets
) -> TouchpointDetail:
    """Record a (late) rating, with the factors picked and the minutes lost if given; the
    answer it replaces goes to the history, its factors and lost time with it.

    Repeating the current answer changes nothing, so the call is safe to retry. Factors
    must be offered by the touchpoint's moment for the answer's sentiment (422 otherwise).
    """
    touchpoint = await session.scalar(
        select(Touchpoint).where(Touchpoint.external_id == external_id).with_for_update()
    )
    if touchpoint is None:
        raise NotFound(f"No touchpoint with id '{external_id}'.")
    new = normalise(rating.scale, rating.value)
    picked = rating.factors or None
    if picked:
        moment = (
            await session.execute(
                select(Moment.factors, Moment.channel).where(Moment.id == touchpoint.moment_id)
            )
        ).one()
        offers = moment_factors.offered(moment.factors, channel=moment.channel)
        wrong = _factor_errors(picked, new.sentiment, offers, at="body.factors")
        if wrong:
            raise ValidationFailed(
                "The rating picks factors its moment does not offer with answers of its sentiment.",
                details=wrong,
            )
    answer = (new.scale.value, new.value, picked, rating.lost_minutes)
    current = (
        touchpoint.rating_scale,
        touchpoint.rating_value,
        touchpoint.factors,
        touchpoint.lost_minutes,
    )
    unchanged = current == answer
    if not unchanged:
        now = utcnow()
        before = facts_of(touchpoint)
        previous = None
        if touchpoint.rating_scale is not None and touchpoint.rating_value is not None:
            previous = (touchpoint.rating_scale, touchpoint.rating_value)
            session.add(_history_entry(touchpoint, replaced_at=now))
        touchpoint.rating_scale = new.scale.value
        touchpoint.rating_value = new.value
        touchpoint.score = new.score
        touchpoint.sentiment = new.sentiment.value
        touchpoint.rated_at = rating.rated_at or now
        touchpoint.factors = picked
        touchpoint.lost_minutes = rating.lost_minutes
        await session.flush()
        after = facts_of(touchpoint)
        await rollups.record(
            session,
            rollups.rerated(after, previous=previous),
            rollup_details.replaced(before, after),
        )
        # A new answer, not the same one told again with other details: only then is it
        # news to the webhooks and the follow-ups.
        if new.sentiment is Sentiment.negative and current[:2] != answer[:2]:
            moment_key = await session.scalar(
                select(Moment.key).where(Moment.id == touchpoint.moment_id)
            )
            await webhooks_service.enqueue(
                session,
                event=EventType.rating_negative,
                payloads=[_negative_rating(external_id, moment_key, new.scale.value, new.value)],
            )
            bad = followups_service.BadExperience(external_id, FollowUpReason.negative_rating)
            await followups_service.open_for(session, [bad], targets=follow_up_targets)
    outcome = "unchanged" if unchanged else "recorded"
    metrics.count_on_commit(session, metrics.LATE_RATINGS.labels(outcome))
    return await get_touchpoint(session, external_id=external_id)


async def describe_answer(
    session: AsyncSession,
    *,
    touchpoint: Touchpoint,
    factors: Sequence[str],
    lost_minutes: int | None,
) -> None:
    """Give the current answer its factors and lost time, as a client adds them after
    answering (the survey page). The answer itself stays: no history entry, no new
    notification. `factors` must already be offered for the answer's sentiment."""
    picked = list(factors) or None
    if (touchpoint.factors, touchpoint.lost_minutes) == (picked, lost_minutes):
        return
    before = facts_of(touchpoint)
    touchpoint.factors = picked
    touchpoint.lost_minutes = lost_minutes
    await session.flush()
    await rollups.record(session, (), rollup_details.replaced(before, facts_of(touchpoint)))


def _history_entry(touchpoint: Touchpoint, *, replaced_at: datetime) -> RatingHistory:
    assert touchpoint.rating_scale is not None
    assert touchpoint.rating_value is not None
    assert touchpoint.score is not None
    assert touchpoint.sentiment is not None
    assert touchpoint.rated_at is not None
    return RatingHistory(
        touchpoint_id=touchpoint.id,
        scale=touchpoint.rating_scale,
        value=touchpoint.rating_value,
        score=touchpoint.score,
        sentiment=touchpoint.sentiment,
        rated_at=touchpoint.rated_at,
        factors=touchpoint.factors,
        lost_minutes=touchpoint.lost_minutes,
        replaced_at=replaced_at,
    )
